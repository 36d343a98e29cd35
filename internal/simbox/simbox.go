// Package simbox is a simulated capture box for the dashboard's tests and
// benchmarks: one MQTT session that speaks the fleet protocol
// (PROTOCOL.md), version 1.1 included. It sends a birth, a will, meta,
// state and telemetry like a box streaming 1080p60 with a 1 kHz tone to two
// outputs and a recording; it answers every version 1 command, takes
// desired configs through agent/config's own parser, and, while a viewer
// holds a watch lease, publishes a preview (colour bars and a clock) and audio meters. Test hooks pull the signal, mute the audio,
// take an output down and heat the SoC.
//
// It stands in for a room, not for the agent: a repeated request id is run
// again rather than answered from memory, and nothing waits while it is
// offline.
package simbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
	"capbox/internal/loop"
	"capbox/internal/redact"
)

// Options describe one simulated box.
type Options struct {
	// ID is the device id, also its MQTT username and client id.
	ID string
	// Prefix is the topic prefix (default capbox).
	Prefix string
	// Broker is the broker's URL (mqtt:// on loopback).
	Broker string
	// Password is the box's MQTT password.
	Password string
	// TelemetryInterval defaults to 10 s, as on a box.
	TelemetryInterval time.Duration
	// Outputs are the output names (default primary and youtube).
	Outputs []string
	// TempC is the SoC's temperature (default 50 °C plus a little per box).
	TempC float64
	// Index varies the picture among the boxes.
	Index  int
	Logger *slog.Logger
}

// Box is one simulated box. Make it with New, run it with Run.
type Box struct {
	opt    Options
	topics wire.Topics
	log    *slog.Logger
	loop   *loop.Loop

	// Owned by Run's loop.
	client     paho.Client
	sess, seq  int64
	started    time.Time
	signal     bool
	muted      bool
	mutedSince time.Time
	outputs    map[string]string
	urls       map[string]string
	recording  bool
	tempC      float64
	version    int64
	reported   *wire.ConfigReported
	leases     wire.Leases
	next       map[string]time.Time
	due        *time.Timer
	lastState  []byte
	retry      *time.Timer
	connecting bool
}

// New makes a box; it connects when Run starts.
func New(opt Options) *Box {
	if opt.Prefix == "" {
		opt.Prefix = wire.DefaultPrefix
	}
	if opt.TelemetryInterval <= 0 {
		opt.TelemetryInterval = 10 * time.Second
	}
	if len(opt.Outputs) == 0 {
		opt.Outputs = []string{"primary", "youtube"}
	}
	if opt.TempC == 0 {
		opt.TempC = 48 + float64(len(opt.ID)%7)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Box{opt: opt, topics: wire.Topics{Prefix: opt.Prefix, ID: opt.ID}, log: opt.Logger.With("box", opt.ID),
		loop: loop.New(256), signal: true, recording: true, tempC: opt.TempC,
		outputs: map[string]string{}, urls: map[string]string{}, next: map[string]time.Time{}}
	for _, o := range opt.Outputs {
		b.outputs[o] = wire.OutputUp
		b.urls[o] = "srt://ingest.example.org:9000?streamid=" + opt.ID + "-" + o
	}
	return b
}

// SetSignal plugs (true) or pulls (false) the input's signal.
func (b *Box) SetSignal(locked bool) {
	b.loop.Post(func() {
		if b.signal == locked {
			return
		}
		b.signal = locked
		ev := wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture, Msg: "no_signal"}
		if locked {
			ev = wire.Event{Type: wire.EvtSignalLocked, Part: wire.PartCapture, Msg: "1080p60"}
		}
		b.event(ev)
		b.sendState()
	})
}

// SetMuted silences the audio (true) or plays the tone again.
func (b *Box) SetMuted(muted bool) {
	b.loop.Post(func() {
		if b.muted == muted {
			return
		}
		b.muted, b.mutedSince = muted, time.Now()
		b.sendState()
	})
}

// SetOutput sets an output's state (up, connecting, down, disabled).
func (b *Box) SetOutput(name, state string) {
	b.loop.Post(func() {
		if _, ok := b.outputs[name]; !ok || b.outputs[name] == state {
			return
		}
		b.outputs[name] = state
		switch state {
		case wire.OutputDown:
			b.event(wire.Event{Type: wire.EvtOutputDown, Part: wire.OutputPart(name), Output: name, Msg: "Connection refused"})
		case wire.OutputUp:
			b.event(wire.Event{Type: wire.EvtOutputUp, Part: wire.OutputPart(name), Output: name})
		}
		b.sendState()
	})
}

// SetTempC sets the SoC's temperature; the next telemetry carries it.
func (b *Box) SetTempC(c float64) {
	b.loop.Post(func() { b.tempC = c; b.sendTelemetry() })
}

// Run connects (and reconnects) until ctx ends, then leaves the fleet with
// a graceful offline status. A cancelled context is not an error.
func (b *Box) Run(ctx context.Context) error {
	b.started = time.Now()
	b.due = time.NewTimer(time.Hour)
	b.due.Stop()
	b.retry = time.NewTimer(time.Hour)
	b.retry.Stop()
	tel := time.NewTicker(b.opt.TelemetryInterval)
	defer tel.Stop()
	b.dial(ctx)
	for {
		select {
		case <-ctx.Done():
			b.loop.Stop()
			b.loop.Drain()
			b.leave(wire.ReasonShutdown)
			return nil
		case f := <-b.loop.C():
			f()
		case <-tel.C:
			b.sendTelemetry()
		case <-b.due.C:
			b.publishDue(time.Now())
		case <-b.retry.C:
			b.dial(ctx)
		}
	}
}

// dial starts one connection attempt off the loop; its result is posted.
func (b *Box) dial(ctx context.Context) {
	if b.connecting {
		return
	}
	b.connecting = true
	b.sess++
	sess := b.sess
	will, _ := json.Marshal(wire.Status{V: wire.SchemaVersion, Online: false, State: wire.StatusLost, Sess: sess})
	target, err := wire.ParseBrokerURL(b.opt.Broker, false)
	if err != nil {
		b.log.Error("simulated box: bad broker url", "err", err)
		return
	}
	o := paho.NewClientOptions().AddBroker(target.URL).SetClientID(b.opt.ID).SetUsername(b.opt.ID).SetPassword(b.opt.Password).
		SetCleanSession(true).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(30*time.Second).SetConnectTimeout(10*time.Second).SetOrderMatters(false).
		SetWill(b.topics.T(wire.TopicStatus), string(will), 1, true)
	var c paho.Client
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		topic, payload := m.Topic(), m.Payload()
		b.loop.Post(func() { _ = b.route(topic, payload) })
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		b.loop.Post(func() {
			if b.client == c {
				b.log.Info("simulated box lost its broker", "err", err)
				b.client = nil
				b.retry.Reset(time.Second)
			}
		})
	})
	c = paho.NewClient(o)
	go func() {
		tok := c.Connect()
		ok := tok.WaitTimeout(15*time.Second) && tok.Error() == nil
		if ok {
			sub := c.SubscribeMultiple(map[string]byte{b.topics.T(wire.TopicCmdReqPrefix + "+"): 1, b.topics.T(wire.TopicConfigDesired): 1}, nil)
			ok = sub.WaitTimeout(15*time.Second) && sub.Error() == nil
		}
		if !ok || ctx.Err() != nil {
			c.Disconnect(0)
		}
		posted := b.loop.Post(func() {
			b.connecting = false
			if !ok {
				b.retry.Reset(time.Second)
				return
			}
			b.client, b.seq = c, 0
			b.birth()
		})
		if !posted && ok {
			c.Disconnect(0)
		}
	}()
}

// birth is what a box sends on every connect.
func (b *Box) birth() {
	st := wire.Status{Online: true, State: wire.StatusReady, BootID: "sim-" + b.opt.ID, Agent: "0.4.0-sim"}
	b.stampStatus(&st)
	b.publish(wire.TopicStatus, 1, true, &st)
	b.sendMeta()
	b.lastState = nil
	b.sendState()
	b.sendTelemetry()
	if b.reported != nil {
		b.stamp(&b.reported.Header)
		b.publish(wire.TopicConfigReported, 1, true, b.reported)
	}
}

// leave says goodbye (reason shutdown or reboot) and disconnects.
func (b *Box) leave(reason string) {
	if b.client == nil {
		return
	}
	st := wire.Status{Online: false, State: wire.StatusDisconnected, Reason: reason, BootID: "sim-" + b.opt.ID}
	b.stampStatus(&st)
	body, _ := json.Marshal(&st)
	tok := b.client.Publish(b.topics.T(wire.TopicStatus), 1, true, body)
	tok.WaitTimeout(2 * time.Second)
	b.client.Disconnect(100)
	b.client = nil
}

func (b *Box) stamp(h *wire.Header) {
	b.seq++
	h.TS = 0
	h.Stamp(b.sess, b.seq, time.Now().UnixMilli())
}

func (b *Box) stampStatus(s *wire.Status) {
	b.seq++
	s.Stamp(b.sess, b.seq, time.Now().UnixMilli())
}

// publish sends body (JSON, or raw bytes) without waiting: a simulated
// box that is offline drops what it would send.
func (b *Box) publish(suffix string, qos byte, retained bool, body any) {
	if b.client == nil {
		return
	}
	var payload []byte
	switch v := body.(type) {
	case []byte:
		payload = v
	default:
		payload, _ = json.Marshal(v)
	}
	b.client.Publish(b.topics.T(suffix), qos, retained, payload)
}

func (b *Box) sendMeta() {
	m := wire.Meta{Agent: "0.4.0-sim", Versions: map[string]string{"gstreamer": "1.22.0", "kernel": "6.6.51-v8+"},
		BootID:             "sim-" + b.opt.ID,
		Detection:          json.RawMessage(`{"board":{"id":"rpi4","family":"rpi","model":"Raspberry Pi 4 Model B Rev 1.4"},"chosen":{"video_input":"/dev/video0","encoder":"v4l2h264enc","zero_copy":true}}`),
		TelemetryIntervalS: int(b.opt.TelemetryInterval / time.Second)}
	for _, c := range wire.Commands {
		m.Commands = append(m.Commands, c.Name)
	}
	m.Commands = append(m.Commands, wire.CmdWatch)
	for _, name := range b.outputNames() {
		proto, _, _ := strings.Cut(b.urls[name], "://")
		m.Outputs = append(m.Outputs, wire.OutputInfo{Name: name, Proto: proto, URL: redact.URL(b.urls[name]),
			Enabled: b.outputs[name] != wire.OutputDisabled})
	}
	b.stamp(&m.Header)
	b.publish(wire.TopicMeta, 1, true, &m)
}

func (b *Box) outputNames() []string {
	names := make([]string, 0, len(b.outputs))
	for n := range b.outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// silent: the audio has been muted for 10 s (PROTOCOL.md "telemetry").
func (b *Box) silent() bool { return b.muted && time.Since(b.mutedSince) >= 10*time.Second }

func (b *Box) state() wire.State {
	s := wire.State{Mode: wire.ModeStreaming, Moods: map[string]wire.Mood{wire.PartCapture: wire.MoodHappy, wire.PartEncoder: wire.MoodHappy},
		Capture: wire.CaptureState{Signal: "locked", Format: "1080p60"}, Outputs: map[string]string{},
		Recording: b.recording, Alerts: []string{}, ConfigVersion: b.version}
	if b.recording {
		s.Moods[wire.PartRecorder] = wire.MoodHappy
	} else {
		s.Moods[wire.PartRecorder] = wire.MoodSleeping
	}
	for name, st := range b.outputs {
		s.Outputs[name] = st
		mood := wire.MoodHappy
		switch st {
		case wire.OutputDown:
			mood = wire.MoodSad
			s.Alerts = append(s.Alerts, wire.OutputPart(name)+" failed, retrying")
		case wire.OutputConnecting:
			mood = wire.MoodWaking
		case wire.OutputDisabled:
			mood = wire.MoodSleeping
		}
		s.Moods[wire.OutputPart(name)] = mood
	}
	if !b.signal {
		s.Mode, s.Capture = wire.ModeNoSignal, wire.CaptureState{Signal: "no_signal"}
		s.Moods[wire.PartCapture] = wire.MoodHungry
		s.Alerts = append(s.Alerts, "no signal")
	} else if wire.MoodRank(wire.WorstMood(s.Moods)) >= wire.MoodRank(wire.MoodHungry) {
		s.Mode = wire.ModeDegraded
	}
	if b.silent() {
		s.Alerts = append(s.Alerts, "audio silent")
	}
	sort.Strings(s.Alerts)
	s.Mood = wire.WorstMood(s.Moods)
	return s
}

// sendState publishes the state when it changed.
func (b *Box) sendState() {
	s := b.state()
	body, _ := json.Marshal(s)
	if string(body) == string(b.lastState) {
		return
	}
	b.lastState = body
	b.stamp(&s.Header)
	b.publish(wire.TopicState, 1, true, &s)
}

func (b *Box) event(e wire.Event) {
	b.stamp(&e.Header)
	b.publish(wire.TopicEvtPrefix+e.Type, 1, false, &e)
}

func (b *Box) level() (peak, rms float64) {
	if b.muted {
		return wire.MeterFloorDBFS, wire.MeterFloorDBFS
	}
	// A tone at -20 dBFS with a little movement, as a room's sound has.
	wobble := 1.5 * math.Sin(float64(time.Now().UnixMilli())/700)
	return math.Round((-20+wobble)*10) / 10, math.Round((-23+wobble)*10) / 10
}

func (b *Box) sendTelemetry() {
	// A silence that just reached 10 s changes the state's alerts.
	b.sendState()
	up := time.Since(b.started)
	s := up.Seconds()
	peak, rms := b.level()
	t := wire.Telemetry{UptimeS: int64(s), IntervalS: int(b.opt.TelemetryInterval / time.Second),
		Sys: wire.SysHealth{CPUPct: 23.5, Load1: 0.8, MemTotalMB: 3884, MemAvailMB: 3100,
			Disks:    []wire.Disk{{Mount: "/data", TotalMB: 29800, FreeMB: 21000}},
			TempsC:   map[string]float64{"cpu-thermal": b.tempC},
			Throttle: wire.Throttle{Now: []string{}, SinceBoot: []string{}}, ClockSynced: true},
		Net: []wire.NetIf{{If: "eth0", Oper: "up", Carrier: true, SpeedMbps: 1000, Addrs: []string{"10.20.30.101/24"},
			RxBytes: uint64(2000 * s), TxBytes: uint64(1_040_000 * s)}},
		Capture: &wire.CaptureHealth{Device: "/dev/video0", Signal: b.signal, Width: 1920, Height: 1080, FPS: 60, Frames: uint64(60 * s)},
		Audio:   &wire.AudioHealth{Device: "hw:CARD=tc358743,DEV=0", PeakDBFS: peak, RMSDBFS: rms, Silent: b.silent()},
		Encoder: &wire.EncoderHealth{Element: "v4l2h264enc", Hardware: true, ZeroCopy: true, BitrateKbps: 4000, Frames: uint64(60 * s)},
		Recording: &wire.RecordingHealth{Path: "/data/recordings", Segments: int(up/(5*time.Minute)) + 1,
			Bytes: uint64(520_000 * s), FreeMB: 21000},
		ConfigVersion: b.version}
	for _, name := range b.outputNames() {
		st := b.outputs[name]
		o := wire.OutputHealth{Name: name, Proto: "srt", State: st}
		if st == wire.OutputUp {
			o.Bytes, o.BitrateKbps, o.RTTMs, o.LossPct = uint64(520_000*s), 4160, 12.4, 0.02
		}
		t.Outputs = append(t.Outputs, o)
	}
	b.stamp(&t.Header)
	b.publish(wire.TopicTelemetry, 0, true, &t)
}

// publishDue sends what the leases ask for now and sets the timer for
// the next one.
func (b *Box) publishDue(now time.Time) {
	var next time.Time
	for _, what := range b.leases.Kinds(now) {
		iv, _, _ := b.leases.Active(what, now)
		if at := b.next[what]; !now.Before(at) {
			b.sendWatched(what, now)
			b.next[what] = now.Add(iv)
		}
		if at := b.next[what]; next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if !next.IsZero() {
		b.due.Reset(time.Until(next))
	}
}

func (b *Box) sendWatched(what string, now time.Time) {
	switch what {
	case wire.WatchPreview:
		b.publish(wire.TopicPreview, 0, false, previewJPEG(b.opt.Index, now, b.signal))
	case wire.WatchMeter:
		peak, rms := b.level()
		m := wire.Meter{Channels: []wire.MeterChannel{{PeakDBFS: peak, RMSDBFS: rms}, {PeakDBFS: peak, RMSDBFS: rms}}}
		b.stamp(&m.Header)
		b.publish(wire.TopicMeter, 0, false, &m)
	}
}

func (b *Box) respond(name string, res wire.CmdResponse) {
	b.stamp(&res.Header)
	b.publish(wire.TopicCmdResPrefix+name, 1, false, &res)
}

func (b *Box) onCommand(name string, payload []byte) {
	req, err := wire.DecodeRequest(payload)
	if err != nil {
		b.respond(name, wire.CmdResponse{ID: req.ID, Status: wire.ResError, Code: wire.CodeFor(err), Msg: err.Error()})
		return
	}
	answer := func(status, code, msg string, result any) {
		res := wire.CmdResponse{ID: req.ID, Status: status, Code: code, Msg: msg}
		if result != nil {
			res.Result, _ = json.Marshal(result)
		}
		b.respond(name, res)
	}
	if req.Exp > 0 && time.Now().UnixMilli() > req.Exp {
		answer(wire.ResExpired, wire.CodeExpired, "request expired before it arrived", nil)
		return
	}
	if name == wire.CmdWatch {
		w, err := wire.DecodeWatch(req.Args)
		if err != nil {
			answer(wire.ResError, wire.CodeBadArgs, err.Error(), nil)
			return
		}
		now := time.Now()
		if _, _, held := b.leases.Active(w.What, now); !held {
			b.next[w.What] = now // the first one right away
		}
		answer(wire.ResOK, "", "", b.leases.Renew(w, now))
		b.publishDue(now)
		return
	}
	spec, ok := wire.LookupCommand(name)
	if !ok {
		answer(wire.ResUnsupported, wire.CodeUnsupported, fmt.Sprintf("this box has no command %q", name), nil)
		return
	}
	args, err := wire.DecodeArgs(spec, req.Args)
	if err != nil {
		answer(wire.ResError, wire.CodeBadArgs, err.Error(), nil)
		return
	}
	switch name {
	case wire.CmdPing:
		answer(wire.ResOK, "", "", map[string]any{"pong": true, "sess": b.sess, "ts": time.Now().UnixMilli()})
	case wire.CmdRebirth:
		b.birth()
		answer(wire.ResOK, "", "", nil)
	case wire.CmdRestartOutput, wire.CmdStartOutput, wire.CmdStopOutput:
		if _, ok := b.outputs[args.Name]; !ok {
			answer(wire.ResRejected, wire.CodeNoOutput, fmt.Sprintf("no output named %q", args.Name), nil)
			return
		}
		state := wire.OutputUp
		if name == wire.CmdStopOutput {
			state = wire.OutputDisabled
		}
		b.outputs[args.Name] = state
		b.sendState()
		answer(wire.ResOK, "", "", nil)
	case wire.CmdStartRecording, wire.CmdStopRecording:
		b.recording = name == wire.CmdStartRecording
		b.sendState()
		answer(wire.ResOK, "", "", nil)
	case wire.CmdSnapshot:
		jpg := previewJPEG(b.opt.Index, time.Now(), b.signal)
		if len(jpg) > wire.MaxSnapshotJPEG {
			answer(wire.ResError, wire.CodeTooLarge, "snapshot over the limit", nil)
			return
		}
		answer(wire.ResOK, "", "", wire.SnapshotResult{JPEG: jpg, Bytes: len(jpg)})
	case wire.CmdDetect:
		answer(wire.ResOK, "", "", json.RawMessage(`{"board":{"id":"rpi4"}}`))
		b.sendMeta()
	case wire.CmdReboot:
		answer(wire.ResOK, "", "", nil)
		b.leave(wire.ReasonReboot)
		b.leases = wire.Leases{}
		b.retry.Reset(time.Second)
	default: // set_log_level, restart_pipeline
		answer(wire.ResOK, "", "", nil)
	}
}

// onDesired takes a desired config the way the agent does: the checked
// envelope, the version rule, agent/config's parser and the device id.
func (b *Box) onDesired(payload []byte) {
	if len(payload) == 0 {
		return
	}
	rep := wire.ConfigReported{AppliedVersion: b.version, Status: wire.ConfigRejected}
	d, err := wire.DecodeDesired(payload)
	switch {
	case err != nil:
		rep.Errors = []wire.FieldError{{Msg: err.Error()}}
	case d.Version == b.version:
		return
	case d.Version < b.version:
		rep.DesiredVersion = d.Version
		rep.Errors = []wire.FieldError{{Path: "version", Msg: fmt.Sprintf("version %d is older than the applied %d", d.Version, b.version)}}
	default:
		rep.DesiredVersion = d.Version
		cfg, err := config.Parse(d.Config)
		for _, fe := range config.AsErrors(err) {
			rep.Errors = append(rep.Errors, wire.FieldError{Path: fe.Path, Line: fe.Line, Msg: fe.Msg})
		}
		if err == nil && cfg.Device.ID != b.opt.ID {
			rep.Errors = append(rep.Errors, wire.FieldError{Path: "device.id", Msg: fmt.Sprintf("the box runs as %q: a desired config cannot change it", b.opt.ID)})
		}
		if len(rep.Errors) == 0 {
			sum := sha256.Sum256(d.Config)
			rep.Status, rep.AppliedVersion, rep.EffectiveSHA256 = wire.ConfigApplied, d.Version, hex.EncodeToString(sum[:])
			b.version = d.Version
			b.outputs, b.urls = map[string]string{}, map[string]string{}
			for _, o := range cfg.Outputs {
				b.outputs[o.Name], b.urls[o.Name] = wire.OutputUp, o.URL
				if !o.IsEnabled() {
					b.outputs[o.Name] = wire.OutputDisabled
				}
			}
		}
	}
	if rep.Status == wire.ConfigApplied {
		b.event(wire.Event{Type: wire.EvtConfigApplied, Data: map[string]any{"version": rep.AppliedVersion}})
		b.sendMeta()
		b.sendState()
	} else {
		b.event(wire.Event{Type: wire.EvtConfigRejected, Msg: fmt.Sprintf("%d problems", len(rep.Errors)), Data: map[string]any{"version": rep.DesiredVersion}})
	}
	b.reported = &rep
	b.stamp(&rep.Header)
	b.publish(wire.TopicConfigReported, 1, true, &rep)
}

var errNotMine = errors.New("not this box's topic")

// route sends a received message to its handler.
func (b *Box) route(topic string, payload []byte) error {
	rest, ok := strings.CutPrefix(topic, b.topics.Base())
	if !ok {
		return errNotMine
	}
	switch {
	case rest == wire.TopicConfigDesired:
		b.onDesired(payload)
	case strings.HasPrefix(rest, wire.TopicCmdReqPrefix):
		name := strings.TrimPrefix(rest, wire.TopicCmdReqPrefix)
		if wire.ValidName(name) {
			b.onCommand(name, payload)
		}
	}
	return nil
}
