// Package web is the fleet dashboard of `capboxctl web` (FLEET.md "The
// dashboard: capboxctl web"): a grid of every room with its preview, audio meters, mood,
// signal, outputs, recording, temperature, version and last-seen time, the
// alerts on top, and a page per room with its outputs, events, config
// report, the version 1 commands and a config editor. Pages are rendered
// on the server; a little plain JavaScript takes the live updates the
// server pushes (Server-Sent Events) and tells it which rooms are on
// screen, for which it holds watch leases (PROTOCOL.md "Version 1.1:
// previews and meters on demand"). Everything it serves is embedded.
package web

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/internal/loop"
)

// Broker is the dashboard's MQTT session with the fleet account. The
// messages it receives go to Server.Deliver.
type Broker interface {
	// Publish sends without waiting for the broker.
	Publish(topic string, qos byte, retained bool, payload []byte)
}

// Subscriptions are the filters the dashboard needs and their QoS: the
// box documents at QoS 0 (a broker owes a QoS 0 subscriber its retained
// documents without queueing them against its limit), command answers at
// QoS 1.
func Subscriptions(prefix string) map[string]byte {
	subs := map[string]byte{prefix + "/+/" + wire.TopicCmdResPrefix + "+": 1}
	for _, s := range []string{wire.TopicStatus, wire.TopicMeta, wire.TopicState, wire.TopicTelemetry, wire.TopicConfigReported,
		wire.TopicConfigDesired, wire.TopicEvtPrefix + "+", wire.TopicPreview, wire.TopicMeter} {
		subs[prefix+"/+/"+s] = 0
	}
	return subs
}

// Options configure a Server.
type Options struct {
	Prefix string
	Broker Broker
	// Listener is bound already; with TLS set it serves HTTPS.
	Listener net.Listener
	TLS      *tls.Config
	// Users are the logins; nil means none, allowed on a loopback
	// listener only.
	Users Users
	// ReadOnly names the users who see everything and change nothing.
	ReadOnly []string
	// Lease is how long a watch lease holds (renewed every third of it);
	// PreviewInterval and MeterInterval are what the leases ask for.
	Lease, PreviewInterval, MeterInterval time.Duration
	Logger                                *slog.Logger
}

// ErrInsecureListener is a listener other than loopback without TLS and
// logins.
var ErrInsecureListener = errors.New("a listener that is not on loopback needs TLS and logins (--tls-cert, --tls-key, --users)")

// Timing of the dashboard.
const (
	// flushEvery batches what changed into one push to each browser.
	flushEvery = 250 * time.Millisecond
	// tickEvery judges staleness and alerts and renews leases.
	tickEvery = time.Second
	// watchRequestLife: a watch request older than this is not acted on.
	watchRequestLife = 5 * time.Second
	// maxWatchPerClient bounds the rooms one browser may have watched.
	maxWatchPerClient = 100
	// clientQueue is how many pushes a slow browser may lag; past it the
	// browser is dropped (its EventSource reconnects and reloads).
	clientQueue = 64
)

// Server is the dashboard. Make it with New, run it with Run.
type Server struct {
	opt   Options
	log   *slog.Logger
	loop  *loop.Loop
	guard *guard
	tmpl  *template.Template
	reqID string // this dashboard's request id prefix
	http  *http.Server

	// Owned by Run's loop.
	boxes      map[string]*box
	clients    map[int]*client
	nextClient int
	reqN       int64
	pending    map[string]*pendingCmd
	dirtyTiles map[string]bool
	dirtyRooms map[string]bool
	// seen are the boxes heard from since the last flush: last-seen times
	// travel apart from the tiles, which would otherwise change with
	// every message.
	seen   map[string]bool
	alerts string
}

// client is one browser page's push stream.
type client struct {
	id      int
	sess    *session
	room    string // "" for the grid
	watch   map[string]bool
	out     chan event
	preview map[string]int
	meterAt map[string]time.Time
	// seenAll: the client has had every box's last-seen time once.
	seenAll bool
	gone    bool
}

type event struct {
	name string
	data []byte
}

type pendingCmd struct {
	box, cmd string
	sent     time.Time
	timeout  time.Duration
}

// New checks the options and prepares the server.
func New(opt Options) (*Server, error) {
	if opt.Listener == nil || opt.Broker == nil {
		return nil, errors.New("web: a listener and a broker are required")
	}
	if !IsLoopback(opt.Listener.Addr().String()) && (opt.TLS == nil || opt.Users == nil) {
		return nil, ErrInsecureListener
	}
	if opt.Prefix == "" {
		opt.Prefix = wire.DefaultPrefix
	}
	if opt.Lease <= 0 {
		opt.Lease = 15 * time.Second
	}
	if opt.PreviewInterval <= 0 {
		opt.PreviewInterval = 3 * time.Second
	}
	if opt.MeterInterval <= 0 {
		opt.MeterInterval = 200 * time.Millisecond
	}
	for _, c := range []struct {
		what     string
		interval time.Duration
	}{{wire.WatchPreview, opt.PreviewInterval}, {wire.WatchMeter, opt.MeterInterval}} {
		if _, err := wire.DecodeWatch(wire.WatchArgs(c.what, c.interval, opt.Lease)); err != nil {
			return nil, fmt.Errorf("web: %s every %s on %s leases: %w", c.what, c.interval, opt.Lease, err)
		}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	idb := make([]byte, 4)
	_, _ = rand.Read(idb)
	s := &Server{opt: opt, log: opt.Logger, loop: loop.New(4096), tmpl: tmpl, reqID: "web-" + hex.EncodeToString(idb),
		guard: newGuard(opt.Users, opt.ReadOnly, opt.TLS != nil),
		boxes: map[string]*box{}, clients: map[int]*client{}, pending: map[string]*pendingCmd{},
		dirtyTiles: map[string]bool{}, dirtyRooms: map[string]bool{}, seen: map[string]bool{}}
	if opt.Users == nil {
		s.guard.users = nil
	}
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(opt.Logger.Handler(), slog.LevelDebug)}
	return s, nil
}

// URL is where the dashboard serves.
func (s *Server) URL() string {
	scheme := "http"
	if s.opt.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.opt.Listener.Addr().String()
}

// Deliver hands the server one message from the broker. It blocks while
// the server is busy (the broker session then holds back), and drops the
// message once the server has stopped.
func (s *Server) Deliver(topic string, payload []byte, retained bool) {
	id, suffix, ok := wire.ParseBoxTopic(s.opt.Prefix, topic)
	if !ok {
		return
	}
	now := time.Now()
	s.loop.Post(func() { s.onMessage(id, suffix, payload, retained, now) })
}

// Run serves until ctx ends. A cancelled context is not an error.
func (s *Server) Run(ctx context.Context) error {
	serveErr := make(chan error, 1)
	go func() {
		ln := s.opt.Listener
		if s.opt.TLS != nil {
			ln = tls.NewListener(ln, s.opt.TLS)
		}
		serveErr <- s.http.Serve(ln)
	}()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-serveErr:
			break loop
		case f := <-s.loop.C():
			f()
		case <-flush.C:
			s.flush()
		case now := <-tick.C:
			s.tick(now)
		}
	}
	s.loop.Stop()
	s.loop.Drain()
	for _, c := range s.clients {
		s.drop(c)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.http.Shutdown(sctx)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}

func (s *Server) boxFor(id string) *box {
	b := s.boxes[id]
	if b == nil {
		b = &box{id: id, renewAt: map[string]time.Time{}}
		s.boxes[id] = b
	}
	return b
}

func (s *Server) onMessage(id, suffix string, payload []byte, retained bool, now time.Time) {
	if strings.HasPrefix(suffix, wire.TopicCmdResPrefix) {
		if b := s.boxes[id]; b != nil {
			s.onAnswer(b, strings.TrimPrefix(suffix, wire.TopicCmdResPrefix), payload)
		}
		return
	}
	b := s.boxFor(id)
	before := b.seenAt
	defer func() {
		if b.seenAt != before {
			s.seen[id] = true
		}
	}()
	switch {
	case b.apply(suffix, payload, retained, now):
		s.dirtyRooms[id] = true
		if b.trackAlerts(now) {
			s.renderAlerts(now)
		}
		s.markTile(b, now)
	case suffix == wire.TopicPreview && b.previewN == 1,
		suffix == wire.TopicMeter && b.meter != nil && len(b.meter.Channels) != b.tileKey.Channels:
		// The first preview, or meters of another shape: the tile changes.
		s.markTile(b, now)
	}
}

// markTile marks b's tile for rendering when what it shows changed.
func (s *Server) markTile(b *box, now time.Time) {
	if k := tileOf(b, now).key(); k != b.tileKey {
		b.tileKey = k
		s.dirtyTiles[b.id] = true
	}
}

// onAnswer takes a command answer for one of this dashboard's requests.
func (s *Server) onAnswer(b *box, name string, payload []byte) {
	if wire.CheckPayload(payload) != nil {
		return
	}
	var r wire.CmdResponse
	if json.Unmarshal(payload, &r) != nil || !strings.HasPrefix(r.ID, s.reqID+"-") {
		return
	}
	if name == wire.CmdWatch {
		if r.Status == wire.ResUnsupported && b.status != nil {
			b.noWatchSess = b.status.Sess
		}
		return
	}
	p := s.pending[r.ID]
	if p == nil {
		return
	}
	for i := range b.answers {
		a := &b.answers[i]
		if a.ID != r.ID {
			continue
		}
		a.Status, a.Code, a.Msg, a.Done = r.Status, r.Code, r.Msg, r.Final()
		if r.Status == wire.ResDuplicate && r.FirstStatus != "" {
			a.Status += " (first: " + r.FirstStatus + ")"
		}
		if name == wire.CmdSnapshot && r.Succeeded() {
			var snap wire.SnapshotResult
			if json.Unmarshal(r.Result, &snap) == nil && wire.CheckPreview(snap.JPEG) == nil {
				b.snapshot, b.snapshotN = snap.JPEG, b.snapshotN+1
				a.Snapshot = b.snapshotN
			}
		}
	}
	if r.Final() {
		delete(s.pending, r.ID)
	}
	s.dirtyRooms[b.id] = true
}

func (s *Server) newRequestID() string {
	s.reqN++
	return fmt.Sprintf("%s-%d", s.reqID, s.reqN)
}

// tick judges staleness and alerts, renews leases and times out
// commands.
func (s *Server) tick(now time.Time) {
	changed := false
	for id, b := range s.boxes {
		if b.trackAlerts(now) {
			s.dirtyRooms[id], changed = true, true
			s.markTile(b, now)
		}
		for k := range b.since {
			if g := graceOf[k]; g > 0 && now.Sub(b.since[k]) >= g && now.Sub(b.since[k]) < g+tickEvery {
				changed = true
			}
		}
	}
	if changed {
		s.renderAlerts(now)
	}
	s.renewLeases(now)
	for id, p := range s.pending {
		if now.Sub(p.sent) <= p.timeout {
			continue
		}
		delete(s.pending, id)
		if b := s.boxes[p.box]; b != nil {
			for i := range b.answers {
				if b.answers[i].ID == id && !b.answers[i].Done {
					b.answers[i].Status, b.answers[i].Msg, b.answers[i].Done = "no answer", fmt.Sprintf("no answer within %s (offline?)", p.timeout), true
				}
			}
			s.dirtyRooms[p.box] = true
		}
	}
}

// watched is every room some browser shows.
func (s *Server) watched() map[string]bool {
	w := map[string]bool{}
	for _, c := range s.clients {
		for id := range c.watch {
			w[id] = true
		}
	}
	return w
}

// renewLeases asks each room on a screen for previews and meters, every
// third of a lease; rooms no longer shown are simply not renewed, and
// their boxes stop by themselves.
func (s *Server) renewLeases(now time.Time) {
	w := s.watched()
	for id, b := range s.boxes {
		if !w[id] {
			clear(b.renewAt)
			continue
		}
		if !b.watchable() {
			continue
		}
		for _, k := range []struct {
			what     string
			interval time.Duration
		}{{wire.WatchPreview, s.opt.PreviewInterval}, {wire.WatchMeter, s.opt.MeterInterval}} {
			if now.Before(b.renewAt[k.what]) {
				continue
			}
			b.renewAt[k.what] = now.Add(s.opt.Lease / 3)
			req, _ := json.Marshal(wire.CmdRequest{V: wire.SchemaVersion, ID: s.newRequestID(),
				Args: wire.WatchArgs(k.what, k.interval, s.opt.Lease), Exp: now.Add(watchRequestLife).UnixMilli()})
			s.opt.Broker.Publish(s.topic(id, wire.TopicCmdReqPrefix+wire.CmdWatch), 1, false, req)
		}
	}
}

func (s *Server) topic(id, suffix string) string { return s.opt.Prefix + "/" + id + "/" + suffix }

// flush pushes what changed since the last flush to every browser.
func (s *Server) flush() {
	type tileHTML struct {
		ID   string `json:"id"`
		HTML string `json:"html"`
	}
	var tiles []tileHTML
	grid := false
	roomWatched := map[string]bool{}
	for _, c := range s.clients {
		if c.room == "" {
			grid = true
		} else {
			roomWatched[c.room] = true
		}
	}
	now := time.Now()
	if grid {
		ids := make([]string, 0, len(s.dirtyTiles))
		for id := range s.dirtyTiles {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			b := s.boxes[id]
			if b == nil || !b.known() {
				continue
			}
			h := s.renderTile(b, now)
			if h != b.tile {
				b.tile = h
				tiles = append(tiles, tileHTML{ID: id, HTML: h})
			}
		}
	} else {
		// Nobody looks at the grid: a changed tile is rendered when a page
		// asks.
		for id := range s.dirtyTiles {
			if b := s.boxes[id]; b != nil {
				b.tile = ""
			}
		}
	}
	clear(s.dirtyTiles)
	rooms := map[string][]byte{}
	for id := range s.dirtyRooms {
		if b := s.boxes[id]; b != nil && roomWatched[id] {
			rooms[id] = mustJSON(s.renderLive(b, now))
		}
	}
	clear(s.dirtyRooms)
	var tilesJSON, seenJSON, allSeenJSON []byte
	if len(tiles) > 0 {
		tilesJSON = mustJSON(tiles)
	}
	if grid {
		seen := map[string]int64{}
		for id := range s.seen {
			if b := s.boxes[id]; b != nil && b.known() {
				seen[id] = b.seenAt.UnixMilli()
			}
		}
		if len(seen) > 0 {
			seenJSON = mustJSON(seen)
		}
	}
	clear(s.seen)
	for _, c := range s.clients {
		if c.room == "" && tilesJSON != nil {
			s.push(c, "tiles", tilesJSON)
		}
		if c.room == "" && !c.seenAll {
			if allSeenJSON == nil {
				all := map[string]int64{}
				for id, b := range s.boxes {
					if b.known() && !b.seenAt.IsZero() {
						all[id] = b.seenAt.UnixMilli()
					}
				}
				allSeenJSON = mustJSON(all)
			}
			c.seenAll = true
			s.push(c, "seen", allSeenJSON)
		} else if c.room == "" && seenJSON != nil {
			s.push(c, "seen", seenJSON)
		}
		if c.room != "" && rooms[c.room] != nil {
			s.push(c, "room", rooms[c.room])
		}
		meters := map[string][][2]float64{}
		previews := map[string]int{}
		for id := range c.watch {
			b := s.boxes[id]
			if b == nil {
				continue
			}
			if b.meter != nil && b.meterAt.After(c.meterAt[id]) {
				c.meterAt[id] = b.meterAt
				var ch [][2]float64
				for _, m := range b.meter.Channels {
					ch = append(ch, [2]float64{m.PeakDBFS, m.RMSDBFS})
				}
				meters[id] = ch
			}
			if b.previewN != c.preview[id] {
				c.preview[id] = b.previewN
				previews[id] = b.previewN
			}
		}
		if len(meters) > 0 {
			s.push(c, "meters", mustJSON(meters))
		}
		if len(previews) > 0 {
			s.push(c, "previews", mustJSON(previews))
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// push queues one event for a browser; a browser that lags too far is
// dropped (it reconnects and starts over).
func (s *Server) push(c *client, name string, data []byte) {
	select {
	case c.out <- event{name: name, data: data}:
	default:
		s.log.Info("dropping a browser that does not keep up", "client", c.id)
		s.drop(c)
	}
}

func (s *Server) drop(c *client) {
	if !c.gone {
		c.gone = true
		close(c.out)
	}
	delete(s.clients, c.id)
}

// renderAlerts rebuilds the list on top of the grid; it is pushed when it
// changed.
func (s *Server) renderAlerts(now time.Time) {
	h := s.alertsHTML(now)
	if h == s.alerts {
		return
	}
	s.alerts = h
	data := mustJSON(h)
	for _, c := range s.clients {
		if c.room == "" {
			s.push(c, "alerts", data)
		}
	}
}
