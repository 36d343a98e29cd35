package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"capbox/agent/config"
	"capbox/internal/backoff"
	"capbox/pipelines"

	"capbox/agent/fleet/wire"
)

// Timing of the link.
const (
	// stateMinInterval: state is sent on change, at most once a second.
	stateMinInterval = time.Second
	// acceptedAfter: a command still running after this is answered
	// "accepted" first, so the operator knows it arrived.
	acceptedAfter = time.Second
	// stableSession: a session that lasted this long resets the backoff; a
	// broker that drops the box right after connecting (an ACL refusing its
	// birth, a duplicate device id) sees the delays grow instead of a loop.
	stableSession = 10 * time.Second
	// birthEchoTimeout: a box that never sees its own birth come back is
	// refused by the broker's ACL (mosquitto drops silently); say so once.
	birthEchoTimeout = 10 * time.Second
	// offlineTimeout bounds the graceful offline publish at shutdown.
	offlineTimeout = 2 * time.Second
	// maxRunning bounds the box commands running at once.
	maxRunning = 4
	// maxInbound bounds requests waiting for the loop; more are dropped.
	maxInbound = 64
	// maxMsgLen bounds the msg text of a response.
	maxMsgLen = 512
	// reconnectMin and reconnectMax bound the reconnect delays (PROTOCOL.md:
	// 1 s .. 60 s, jittered): full jitter, because paho's own reconnect has
	// none and a fleet that lost its broker would come back in lockstep.
	reconnectMin = time.Second
	reconnectMax = 60 * time.Second
)

// Link is the box's side of the fleet protocol: one MQTT session at a time
// with its own jittered reconnect. It never touches the pipeline except
// through Box, so losing the broker never affects streaming or recording.
type Link struct {
	cfg      config.Fleet
	id       string
	topics   wire.Topics
	box      Box
	log      *slog.Logger
	target   wire.BrokerTarget
	stateDir string
	interval time.Duration
	dial     dialFunc
	scrub    scrubber
	reason   atomic.Pointer[string]
	mood     atomic.Value // string: the link's own mood

	inbound chan inMsg
	acks    chan ackMsg
	cmdDone chan cmdResult
	cfgDone chan cfgResult
	evq     *eventQueue
	quit    chan struct{}
	cmdWG   sync.WaitGroup
	dropped atomic.Int64

	// Owned by the Run loop.
	sess, seq      int64
	savedSess      int64
	conn           conn
	connAt         time.Time
	inflight       int
	out            outbox
	dd             *dedup
	running        int
	applied        Applied
	reported       *wire.ConfigReported
	applying       int64
	pendingDesired *wire.ConfigDesired
	lastState      []byte
	lastStateAt    time.Time
	stateTimer     *time.Timer
	birthState     string
	birthSeen      bool
	certWarned     bool
}

// Option changes a Link.
type Option func(*Link)

// WithStateDir sets where the session number and the applied config are
// kept (default DefaultStateDir()).
func WithStateDir(dir string) Option { return func(l *Link) { l.stateDir = dir } }

// WithSecrets adds values the link must never send (the running config's
// stream keys and passphrases: ConfigSecrets). It scrubs them from every
// payload as a last line of defence.
func WithSecrets(secrets ...string) Option { return func(l *Link) { l.scrub.add(secrets...) } }

// withDialer replaces paho (tests).
func withDialer(d dialFunc) Option { return func(l *Link) { l.dial = d } }

type inMsg struct {
	topic   string
	payload []byte
	// retained: delivered because we subscribed (a snapshot from before
	// this session's birth), not forwarded live.
	retained bool
}

type ackMsg struct {
	m   *outMsg
	c   conn
	err error
}

type cmdResult struct {
	name, id string
	accepted bool
	res      Result
	err      error
}

type cfgResult struct {
	d    wire.ConfigDesired
	sha  string
	errs []config.FieldError
}

// New checks the fleet config and builds the link for device id (already
// resolved from "auto" by the caller). It does not connect: Run does.
func New(cfg config.Fleet, deviceID string, box Box, logger *slog.Logger, opts ...Option) (*Link, error) {
	if !wire.DeviceIDPattern.MatchString(deviceID) {
		return nil, fmt.Errorf("fleet: device id %q: want [a-z0-9][a-z0-9-]{0,62}", deviceID)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if !wire.ValidPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("fleet: prefix %q: want one topic level without wildcards", cfg.Prefix)
	}
	t, err := parseBroker(cfg)
	if err != nil {
		return nil, err
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, fmt.Errorf("%w: cert and key go together", ErrCredentials)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Link{
		cfg: cfg, id: deviceID, topics: wire.Topics{Prefix: cfg.Prefix, ID: deviceID},
		box: box, log: logger.With("component", "fleet"), target: t,
		stateDir: DefaultStateDir(), interval: cfg.TelemetryInterval.D(), dial: dialPaho,
		inbound: make(chan inMsg, maxInbound), acks: make(chan ackMsg),
		cmdDone: make(chan cmdResult), cfgDone: make(chan cfgResult),
		evq: newEventQueue(), quit: make(chan struct{}), dd: newDedup(),
	}
	if l.interval <= 0 {
		l.interval = 10 * time.Second
	}
	l.scrub.add(cfg.Password)
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Mood is the link's own mood for State.Moods[wire.PartFleet]: waking until
// the first connect, happy while connected, hungry while the broker is
// away, sleeping once Run has returned. Safe from any goroutine.
func (l *Link) Mood() wire.Mood {
	if m, ok := l.mood.Load().(string); ok {
		return wire.Mood(m)
	}
	return wire.MoodWaking
}

// SetStopReason sets the reason the graceful offline status gives when Run's
// context ends (ReasonShutdown by default; a reboot command sets
// ReasonReboot; an update sets ReasonOTA).
func (l *Link) SetStopReason(reason string) { l.reason.Store(&reason) }

// Run keeps the box connected until ctx ends, then publishes the graceful
// offline status and returns nil.
func (l *Link) Run(ctx context.Context) error {
	l.log.Info("fleet link starting", "broker", l.target.URL, "device", l.id, "prefix", l.cfg.Prefix)
	if s, err := loadSess(l.stateDir); err != nil {
		l.log.Warn("session number lost, counting from 0", "err", err)
	} else {
		l.sess = s
	}
	l.loadApplied(ctx)

	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	go l.drainEvents(evCtx)

	telemetry := time.NewTicker(l.interval)
	defer telemetry.Stop()
	l.stateTimer = time.NewTimer(time.Hour)
	l.stateTimer.Stop()
	birthCheck := time.NewTimer(time.Hour)
	birthCheck.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	bo := backoff.NewFullJitter(reconnectMin, reconnectMax)

	connectNow := true
	for {
		if connectNow && l.conn == nil {
			connectNow = false
			if err := l.connect(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				d := bo.Next()
				l.mood.Store(string(wire.MoodHungry))
				l.log.Warn("fleet broker unreachable", "err", err, "retry_in", d.Round(time.Millisecond))
				retry.Reset(d)
			} else {
				birthCheck.Reset(birthEchoTimeout)
			}
		}
		if err := l.pump(); err != nil {
			l.log.Warn("fleet publish failed", "err", err)
		}
		var lost <-chan struct{}
		if l.conn != nil {
			lost = l.conn.Done()
		}
		select {
		case <-ctx.Done():
		case <-retry.C:
			connectNow = true
		case <-lost:
			err := l.conn.Err()
			up := time.Since(l.connAt)
			l.onLost()
			birthCheck.Stop()
			if up >= stableSession {
				bo.Reset()
			}
			d := bo.Next()
			l.log.Warn("fleet connection lost", "err", err, "up", up.Round(time.Second), "retry_in", d.Round(time.Millisecond))
			retry.Reset(d)
		case m := <-l.inbound:
			l.handleInbound(ctx, m)
		case <-l.evq.notify:
			l.takeEvents()
		case <-l.box.StateChanged():
			l.publishState(false)
		case <-l.stateTimer.C:
			l.publishState(false)
		case <-telemetry.C:
			l.publishTelemetry()
		case a := <-l.acks:
			l.onAck(a)
		case r := <-l.cmdDone:
			l.onCmdDone(r)
		case r := <-l.cfgDone:
			l.onCfgDone(ctx, r)
		case <-birthCheck.C:
			if l.conn != nil && !l.birthSeen {
				l.log.Warn("the broker did not deliver this box's own status back: its ACL probably refuses this box's topics",
					"username", l.username(), "topics", l.topics.Base()+"#")
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	l.shutdown()
	return nil
}

func (l *Link) username() string {
	if l.cfg.Username != "" {
		return l.cfg.Username
	}
	return l.id
}

// connect opens a new session: bump and persist sess, dial with the will,
// publish the birth, then subscribe (birth first, so the retained status a
// subscription delivers is our own, not the previous session's will), then
// queue the retained documents.
func (l *Link) connect(ctx context.Context) error {
	// The attempt's session number is on disk before the will can name it;
	// failed attempts reuse it (no gaps, no flash writes while the broker
	// is away).
	next := l.sess + 1
	if l.savedSess != next {
		if err := saveSess(l.stateDir, next); err != nil {
			l.log.Warn("session number not persisted", "err", err)
		} else {
			l.savedSess = next
		}
	}
	will, _ := json.Marshal(wire.Status{V: wire.SchemaVersion, Online: false, State: wire.StatusLost, Sess: next})
	pw, err := readPassword(l.cfg)
	if err != nil {
		return err
	}
	l.scrub.add(pw)
	p := dialParams{
		broker: l.target.URL, clientID: l.id, username: l.username(), password: pw,
		willTopic: l.topics.T(wire.TopicStatus), will: will, onMessage: l.onMessage,
	}
	if l.cfg.Username != "" && l.cfg.Username != l.id && !l.certWarned {
		l.log.Warn("fleet username differs from the device id: the broker ACL (%u) will refuse this box's topics",
			"username", l.cfg.Username, "device", l.id)
		l.certWarned = true
	}
	if l.target.Secure {
		tc, leaf, err := wire.ClientTLS(l.cfg.CA, l.cfg.Cert, l.cfg.Key, l.target.Host)
		if err != nil {
			return err
		}
		if leaf != nil && leaf.Subject.CommonName != l.id && !l.certWarned {
			l.log.Warn("client certificate CN differs from the device id: the broker will refuse this box",
				"cn", leaf.Subject.CommonName, "device", l.id)
			l.certWarned = true
		}
		p.tls = tc
	}
	c, err := l.dial(ctx, p)
	if err != nil {
		return err
	}
	l.sess, l.seq = next, 0
	// Subscribe before the birth (as Sparkplug does): a fleet tool that
	// answers the birth with a command must find the box listening.
	subs := map[string]byte{
		l.topics.T(wire.TopicCmdReqPrefix + "+"): 1,
		l.topics.T(wire.TopicConfigDesired):      1,
		l.topics.T(wire.TopicOTAJob):             1,
		l.topics.T(wire.TopicStatus):             1,
	}
	if err := c.Subscribe(ctx, subs); errors.Is(err, ErrSubscriptionDenied) {
		// Reconnecting would not change the ACL: stay, publish, and say so.
		l.log.Error("the broker refused this box's subscriptions: commands and config will not arrive",
			"err", err, "username", l.username())
	} else if err != nil {
		c.Close(0)
		return err
	}
	meta := l.meta()
	birth := l.birth(meta)
	topic, payload, err := l.encode(&outMsg{suffix: wire.TopicStatus, body: birth})
	if err != nil {
		c.Close(0)
		return err
	}
	if err := wait(ctx, c.Publish(topic, 1, true, payload), c.Done()); err != nil {
		c.Close(0)
		return fmt.Errorf("fleet: birth not acknowledged: %w", err)
	}
	l.conn, l.connAt, l.birthSeen, l.inflight = c, time.Now(), false, 0
	l.mood.Store(string(wire.MoodHappy))
	l.log.Info("fleet connected", "broker", l.target.URL, "sess", l.sess)
	l.out.push(&outMsg{suffix: wire.TopicMeta, qos: 1, retained: true, latest: true, body: &meta})
	l.publishState(true)
	if l.reported != nil {
		r := *l.reported
		r.Header = wire.Header{}
		l.out.push(&outMsg{suffix: wire.TopicConfigReported, qos: 1, retained: true, latest: true, body: &r})
	}
	return nil
}

func (l *Link) onLost() {
	if l.conn != nil {
		l.conn.Close(0)
	}
	l.conn, l.inflight = nil, 0
	l.mood.Store(string(wire.MoodHungry))
}

// onMessage runs on paho's goroutines: it only enqueues, never blocks.
func (l *Link) onMessage(topic string, payload []byte, retained bool) {
	select {
	case l.inbound <- inMsg{topic: topic, payload: payload, retained: retained}:
	default:
		if n := l.dropped.Add(1); n == 1 || n%100 == 0 {
			l.log.Warn("fleet inbound queue full, message dropped", "topic", topic, "dropped", n)
		}
	}
}

// encode stamps, marshals, scrubs and checks one message.
func (l *Link) encode(m *outMsg) (string, []byte, error) {
	topic := l.topics.T(m.suffix)
	if err := l.topics.CheckOutgoing(topic); err != nil {
		return "", nil, err
	}
	l.seq++
	m.body.Stamp(l.sess, l.seq, time.Now().UnixMilli())
	b, err := json.Marshal(m.body)
	if err != nil {
		return "", nil, fmt.Errorf("fleet: encode %s: %w", m.suffix, err)
	}
	if s, hit := l.scrub.scrub(b); hit {
		l.log.Warn("a secret was scrubbed from an outgoing message", "topic", topic)
		if !json.Valid(s) {
			return "", nil, fmt.Errorf("fleet: %s withheld: it carried a secret", m.suffix)
		}
		b = s
	}
	if len(b) > wire.MaxPayload {
		return "", nil, fmt.Errorf("fleet: %s is %d bytes, over the %d byte limit", m.suffix, len(b), wire.MaxPayload)
	}
	return topic, b, nil
}

// pump sends queued messages while connected, up to maxInflight awaiting
// their acknowledgement; unacknowledged ones are requeued on a loss.
func (l *Link) pump() error {
	var errs []error
	for l.conn != nil && l.inflight < maxInflight {
		m := l.out.pop()
		if m == nil {
			break
		}
		topic, b, err := l.encode(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := l.conn
		tok := c.Publish(topic, m.qos, m.retained, b)
		l.inflight++
		go func() {
			var err error
			select {
			case <-tok.Done():
				err = tok.Error()
			case <-c.Done():
				err = ErrConnectionLost
			}
			select {
			case l.acks <- ackMsg{m: m, c: c, err: err}:
			case <-l.quit:
			}
		}()
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func (l *Link) onAck(a ackMsg) {
	if a.c == l.conn && l.inflight > 0 {
		l.inflight--
	}
	if a.err != nil && a.m.qos > 0 {
		l.out.requeue(a.m)
	}
}

// sendNow publishes outside the queue (telemetry, QoS 0: lost while
// offline by design).
func (l *Link) sendNow(m *outMsg) error {
	if l.conn == nil {
		return nil
	}
	topic, b, err := l.encode(m)
	if err != nil {
		return err
	}
	l.conn.Publish(topic, m.qos, m.retained, b)
	return nil
}

// meta is the box's Meta with redacted URLs and the link's additions.
func (l *Link) meta() wire.Meta {
	m := l.box.Meta()
	m.Header = wire.Header{}
	for i := range m.Outputs {
		m.Outputs[i].URL = pipelines.RedactURL(m.Outputs[i].URL)
	}
	if m.BootID == "" {
		m.BootID = bootID()
	}
	m.Commands = l.commandList(m.Commands)
	m.TelemetryIntervalS = int(l.interval / time.Second)
	return m
}

// commandList is every command this box answers, in table order.
func (l *Link) commandList(boxCmds []string) []string {
	var out []string
	for _, c := range wire.Commands {
		if !c.Box || len(boxCmds) == 0 || contains(boxCmds, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (l *Link) birth(meta wire.Meta) *wire.Status {
	st := l.box.State()
	l.birthState = statusStateOf(st)
	return &wire.Status{Online: true, State: l.birthState, BootID: meta.BootID, Agent: meta.Agent}
}

// statusStateOf is the status-level summary: init until the box has a mode,
// alert on alerts or a sad/lost/error box, else ready.
func statusStateOf(st wire.State) string {
	mood := st.Mood
	if mood == "" {
		mood = wire.WorstMood(st.Moods)
	}
	switch {
	case st.Mode == "":
		return wire.StatusInit
	case len(st.Alerts) > 0 || st.Mode == wire.ModeError || mood == wire.MoodSad || mood == wire.MoodLost:
		return wire.StatusAlert
	}
	return wire.StatusReady
}

// publishState queues the state when it changed, at most once a second
// (force: on connect and rebirth). A change of the status-level summary
// republishes the birth.
func (l *Link) publishState(force bool) {
	st := l.box.State()
	st.Header = wire.Header{}
	if st.Mood == "" {
		st.Mood = wire.WorstMood(st.Moods)
	}
	body, err := json.Marshal(st)
	if err != nil {
		l.log.Error("state not encodable", "err", err)
		return
	}
	now := time.Now()
	if !force {
		if bytes.Equal(body, l.lastState) {
			return
		}
		if wait := stateMinInterval - now.Sub(l.lastStateAt); wait > 0 {
			l.stateTimer.Reset(wait)
			return
		}
	}
	l.lastState, l.lastStateAt = body, now
	l.out.push(&outMsg{suffix: wire.TopicState, qos: 1, retained: true, latest: true, body: &st})
	if s := statusStateOf(st); l.conn != nil && s != l.birthState {
		b := l.birth(l.meta())
		l.out.push(&outMsg{suffix: wire.TopicStatus, qos: 1, retained: true, latest: true, body: b})
	}
}

func (l *Link) publishTelemetry() {
	if l.conn == nil {
		return
	}
	t := l.box.Telemetry()
	t.Header = wire.Header{}
	t.IntervalS = int(l.interval / time.Second)
	// Retained so that `capboxctl ls` shows temperature and last-seen at
	// once instead of waiting a whole interval; QoS 0, never queued.
	if err := l.sendNow(&outMsg{suffix: wire.TopicTelemetry, qos: 0, retained: true, body: &t}); err != nil {
		l.log.Warn("telemetry not sent", "err", err)
	}
}

// rebirth republishes every retained document.
func (l *Link) rebirth() {
	meta := l.meta()
	l.out.push(&outMsg{suffix: wire.TopicStatus, qos: 1, retained: true, latest: true, body: l.birth(meta)})
	l.out.push(&outMsg{suffix: wire.TopicMeta, qos: 1, retained: true, latest: true, body: &meta})
	l.publishState(true)
	if l.reported != nil {
		r := *l.reported
		r.Header = wire.Header{}
		l.out.push(&outMsg{suffix: wire.TopicConfigReported, qos: 1, retained: true, latest: true, body: &r})
	}
}

func (l *Link) handleInbound(ctx context.Context, m inMsg) {
	suffix, ok := strings.CutPrefix(m.topic, l.topics.Base())
	if !ok {
		return
	}
	switch {
	case suffix == wire.TopicStatus:
		l.onOwnStatus(m.payload, m.retained)
	case suffix == wire.TopicConfigDesired:
		l.onDesired(ctx, m.payload)
	case strings.HasPrefix(suffix, wire.TopicCmdReqPrefix):
		l.onCommand(ctx, strings.TrimPrefix(suffix, wire.TopicCmdReqPrefix), m.payload)
	case suffix == wire.TopicOTAJob:
		l.log.Debug("ota/job ignored: updates are not part of protocol version 1 here")
	}
}

// onOwnStatus heals a retained status that says this box is offline while
// it is connected: a stale will (another session, e.g. from the cluster
// node that held the old connection) is overwritten with the birth; our own
// session's will means the broker dropped us, so reconnect. The retained
// snapshot delivered on subscribing predates our birth and is ignored.
func (l *Link) onOwnStatus(payload []byte, retained bool) {
	if l.conn == nil || retained {
		return
	}
	var s wire.Status
	var err error
	if len(payload) > 0 {
		s, err = wire.DecodeStatus(payload)
	}
	switch {
	case err == nil && s.Online && s.Sess == l.sess:
		l.birthSeen = true
		return
	case err == nil && s.Online:
		return // an older session's birth still travelling; ours follows
	case err == nil && s.Sess == l.sess:
		l.log.Warn("the broker published this session's will while connected: reconnecting", "sess", l.sess)
		l.conn.Close(0)
		return
	}
	l.log.Info("retained status says offline: publishing the birth again", "their_sess", s.Sess, "sess", l.sess)
	l.out.push(&outMsg{suffix: wire.TopicStatus, qos: 1, retained: true, latest: true, body: l.birth(l.meta())})
}

func (l *Link) respond(name string, res wire.CmdResponse) {
	if len(res.Msg) > maxMsgLen {
		res.Msg = res.Msg[:maxMsgLen]
	}
	if !wire.ValidName(name) {
		return
	}
	l.out.push(&outMsg{suffix: wire.TopicCmdResPrefix + name, qos: 1, body: &res})
}

func (l *Link) onCommand(ctx context.Context, name string, payload []byte) {
	if !wire.ValidName(name) {
		l.log.Debug("request with an invalid command name ignored")
		return
	}
	req, err := wire.DecodeRequest(payload)
	if err != nil {
		l.log.Info("bad command request", "cmd", name, "id", req.ID, "err", err)
		l.respond(name, wire.CmdResponse{ID: req.ID, Status: wire.ResError, Code: wire.CodeFor(err), Msg: err.Error()})
		return
	}
	if r := l.dd.seen(name, req.ID); r != nil {
		res := wire.CmdResponse{ID: req.ID, Status: wire.ResDuplicate}
		if r.pending {
			res.Msg = "the first request with this id is still running"
		} else {
			res.FirstStatus, res.Code, res.Msg, res.Result = r.res.Status, r.res.Code, r.res.Msg, r.res.Result
		}
		l.respond(name, res)
		return
	}
	final := func(res wire.CmdResponse) {
		res.ID = req.ID
		l.dd.done(name, req.ID, res)
		l.respond(name, res)
	}
	if req.Exp > 0 && time.Now().UnixMilli() > req.Exp {
		final(wire.CmdResponse{Status: wire.ResExpired, Code: wire.CodeExpired, Msg: "request expired before it arrived"})
		return
	}
	spec, ok := wire.LookupCommand(name)
	if !ok || (spec.Box && !contains(l.meta().Commands, name)) {
		final(wire.CmdResponse{Status: wire.ResUnsupported, Code: wire.CodeUnsupported, Msg: fmt.Sprintf("this box has no command %q", name)})
		return
	}
	args, err := wire.DecodeArgs(spec, req.Args)
	if err != nil {
		final(wire.CmdResponse{Status: wire.ResError, Code: wire.CodeBadArgs, Msg: err.Error()})
		return
	}
	l.log.Info("fleet command", "cmd", name, "id", req.ID)
	switch name {
	case wire.CmdPing:
		res, _ := json.Marshal(map[string]any{"pong": true, "sess": l.sess, "ts": time.Now().UnixMilli()})
		final(wire.CmdResponse{Status: wire.ResOK, Result: res})
		return
	case wire.CmdRebirth:
		l.rebirth()
		final(wire.CmdResponse{Status: wire.ResOK})
		return
	}
	if l.running >= maxRunning {
		l.dd.forget(name, req.ID) // busy is no answer to remember: a resend may run
		l.respond(name, wire.CmdResponse{ID: req.ID, Status: wire.ResRejected, Code: wire.CodeBusy,
			Msg: fmt.Sprintf("%d commands already running", l.running)})
		return
	}
	l.running++
	l.cmdWG.Add(1)
	go l.runCommand(ctx, spec, req.ID, args)
}

// runCommand runs one box command off the loop, answering "accepted" when
// it takes longer than acceptedAfter.
func (l *Link) runCommand(ctx context.Context, spec wire.CommandSpec, id string, args wire.Args) {
	defer l.cmdWG.Done()
	cctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	type out struct {
		r   Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		r, err := l.box.Command(cctx, spec.Name, args)
		ch <- out{r, err}
	}()
	acc := time.NewTimer(acceptedAfter)
	defer acc.Stop()
	var o out
	select {
	case o = <-ch:
	case <-acc.C:
		l.post(cmdResult{name: spec.Name, id: id, accepted: true})
		o = <-ch
	}
	if o.err == nil && cctx.Err() != nil {
		o.err = cctx.Err()
	}
	l.post(cmdResult{name: spec.Name, id: id, res: o.r, err: o.err})
}

func (l *Link) post(r cmdResult) {
	select {
	case l.cmdDone <- r:
	case <-l.quit:
	}
}

func (l *Link) onCmdDone(r cmdResult) {
	if r.accepted {
		l.respond(r.name, wire.CmdResponse{ID: r.id, Status: wire.ResAccepted})
		return
	}
	l.running--
	res := l.commandResponse(r)
	res.ID = r.id
	l.dd.done(r.name, r.id, res)
	l.respond(r.name, res)
	l.log.Info("fleet command done", "cmd", r.name, "id", r.id, "status", res.Status, "code", res.Code)
	if res.Status != wire.ResOK {
		return
	}
	switch r.name {
	case wire.CmdDetect:
		meta := l.meta()
		l.out.push(&outMsg{suffix: wire.TopicMeta, qos: 1, retained: true, latest: true, body: &meta})
	case wire.CmdReboot:
		l.SetStopReason(wire.ReasonReboot)
	}
}

// commandResponse turns a box result or error into the answer.
func (l *Link) commandResponse(r cmdResult) wire.CmdResponse {
	if r.err != nil {
		var ce *CommandError
		switch {
		case errors.As(r.err, &ce):
			st := ce.Status
			if st == "" {
				st = wire.ResError
			}
			return wire.CmdResponse{Status: st, Code: ce.Code, Msg: ce.Msg}
		case errors.Is(r.err, ErrUnsupported):
			return wire.CmdResponse{Status: wire.ResUnsupported, Code: wire.CodeUnsupported, Msg: r.err.Error()}
		case errors.Is(r.err, context.DeadlineExceeded):
			return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeTimeout, Msg: "the box did not finish in time"}
		case errors.Is(r.err, context.Canceled):
			return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeShutdown, Msg: "the agent is stopping"}
		}
		return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeFailed, Msg: r.err.Error()}
	}
	var result any
	switch {
	case r.res.JPEG != nil:
		if len(r.res.JPEG) > wire.MaxSnapshotJPEG {
			return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeTooLarge,
				Msg: fmt.Sprintf("snapshot is %d bytes, over %d", len(r.res.JPEG), wire.MaxSnapshotJPEG)}
		}
		result = wire.SnapshotResult{JPEG: r.res.JPEG, Bytes: len(r.res.JPEG)}
	case r.res.Data != nil:
		result = r.res.Data
	default:
		return wire.CmdResponse{Status: wire.ResOK}
	}
	b, err := json.Marshal(result)
	if err != nil {
		return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeInternal, Msg: "result not encodable"}
	}
	if len(b) > wire.MaxPayload-1024 {
		return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeTooLarge, Msg: fmt.Sprintf("result is %d bytes, over the payload limit", len(b))}
	}
	return wire.CmdResponse{Status: wire.ResOK, Result: b}
}

// shutdown publishes the graceful offline status, closes the connection and
// waits (bounded) for running commands, which see ctx cancelled.
func (l *Link) shutdown() {
	close(l.quit)
	reason := wire.ReasonShutdown
	if r := l.reason.Load(); r != nil {
		reason = *r
	}
	if l.conn != nil {
		st := &wire.Status{Online: false, State: wire.StatusDisconnected, Reason: reason, BootID: bootID()}
		topic, b, err := l.encode(&outMsg{suffix: wire.TopicStatus, body: st})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), offlineTimeout)
			err = wait(ctx, l.conn.Publish(topic, 1, true, b), l.conn.Done())
			cancel()
		}
		if err != nil {
			l.log.Warn("graceful offline status not confirmed", "err", err)
		}
		l.conn.Close(250 * time.Millisecond)
		l.conn = nil
	}
	done := make(chan struct{})
	go func() { l.cmdWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.log.Warn("fleet commands still running at shutdown")
	}
	l.mood.Store(string(wire.MoodSleeping))
	l.log.Info("fleet link stopped", "reason", reason)
}
