package fleet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/broker"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
)

// Secrets used across the scenarios; a grep of everything a box publishes
// must never find them.
const (
	streamKey     = "sk-live-9f8e7d6c5b4a"
	srtPassphrase = "passphrase-0123456789"
	rtspPassword  = "rtsp-pw-abcdefgh"
	fleetPassword = "fleet-operator-pw-1"
)

func boxPassword(id string) string { return "pw-" + id + "-0123456789" }

// newBox is the scenarios' box: fleettest's, with output URLs that carry
// secrets the link must redact.
func newBox() *fleettest.Box {
	b := fleettest.New()
	b.SetMeta(func(m *wire.Meta) {
		m.Outputs = []wire.OutputInfo{
			{Name: "primary", Proto: "rtmp", URL: "rtmp://ingest.example.org/live/" + streamKey, Enabled: true},
			{Name: "backup", Proto: "srt", URL: "srt://ingest.example.org:9000?passphrase=" + srtPassphrase, Enabled: true},
		}
	})
	return b
}

// env is one broker with its credentials.
type env struct {
	t       *testing.T
	addr    string // host:port
	pwFile  string
	dir     string
	tls     *testPKI
	secure  bool
	restart func()
	stop    func()
	mochi   *broker.Broker
	mosqLog string
}

func (e *env) url() string {
	if e.secure {
		return "mqtts://" + e.addr
	}
	return "mqtt://" + e.addr
}

// writePasswords writes a mosquitto-format password file for the fleet
// account and the given boxes, hashed by this package (mosquitto reads it
// too: the same file serves both brokers).
func writePasswords(t testing.TB, dir string, ids ...string) string {
	t.Helper()
	path := filepath.Join(dir, "passwd")
	if err := broker.SetPassword(path, "fleet", fleetPassword); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := broker.SetPassword(path, id, boxPassword(id)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

var boxIDs = func() []string {
	ids := []string{"box-a", "box-b", "box-c", "box-k"}
	for i := range 12 {
		ids = append(ids, fmt.Sprintf("room-%02d", i))
	}
	return ids
}()

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startMochi runs the embedded broker on a free loopback port.
func startMochi(t *testing.T) *env { return startMochiWith(t, nil) }

// startMochiWith serves mutual TLS when pki is set.
func startMochiWith(t *testing.T, pki *testPKI) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, pwFile: writePasswords(t, dir, boxIDs...), tls: pki, secure: pki != nil}
	var cancel context.CancelFunc
	var done chan struct{}
	listen := "127.0.0.1:0"
	start := func() {
		b, err := broker.New(broker.Config{Listen: listen, PasswordFile: e.pwFile, FleetUsers: []string{"fleet"},
			Logger: quietLogger(), TLS: e.tlsServerConfig()})
		if err != nil {
			t.Fatal(err)
		}
		e.mochi, e.addr, listen = b, b.Addr(), b.Addr()
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		done = make(chan struct{})
		go func() {
			defer close(done)
			if err := b.Run(ctx); err != nil {
				t.Log(err)
			}
		}()
	}
	e.stop = func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
	}
	e.restart = func() { e.stop(); start() }
	start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) tlsServerConfig() *tls.Config {
	if e.tls == nil {
		return nil
	}
	return e.tls.serverConfig()
}

// fleetCfg is a box's fleet section for this broker.
func (e *env) fleetCfg(id string) config.Fleet {
	f := config.Default().Fleet
	f.Broker = e.url()
	f.Username = id
	f.PasswordFile = filepath.Join(e.dir, "box-"+id+".pw")
	f.TelemetryInterval = config.Duration(time.Second)
	if err := os.WriteFile(f.PasswordFile, []byte(boxPassword(id)+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if e.secure {
		f.CA = e.tls.caFile
		f.Cert, f.Key = e.tls.clientFiles(e.t, id)
	}
	return f
}

// running is one link under test.
type running struct {
	link     *fleet.Link
	box      *fleettest.Box
	stateDir string
	cancel   context.CancelFunc
	done     chan struct{}
	logs     *syncBuffer
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLink runs a link for id with a fake box; its log goes to a buffer
// (and stderr with -v) so tests can grep it for secrets.
func (e *env) startLink(id string, box *fleettest.Box, stateDir string, mod func(*config.Fleet), opts ...fleet.Option) *running {
	e.t.Helper()
	if box == nil {
		box = newBox()
	}
	if stateDir == "" {
		stateDir = e.t.TempDir()
	}
	cfg := e.fleetCfg(id)
	if mod != nil {
		mod(&cfg)
	}
	logs := &syncBuffer{}
	var w io.Writer = logs
	if testing.Verbose() {
		w = io.MultiWriter(logs, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts = append([]fleet.Option{fleet.WithStateDir(stateDir), fleet.WithSecrets(streamKey, srtPassphrase)}, opts...)
	l, err := fleet.New(cfg, id, box, logger, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{link: l, box: box, stateDir: stateDir, cancel: cancel, done: make(chan struct{}), logs: logs}
	go func() {
		defer close(r.done)
		if err := l.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	e.t.Cleanup(r.stop)
	return r
}

// obsMsg is one message the observer saw.
type obsMsg struct {
	topic    string
	payload  []byte
	retained bool
	at       time.Time
}

// observer is the fleet side: a paho client with the fleet account,
// subscribed to everything under the prefix, recording all it sees.
type observer struct {
	t      *testing.T
	c      paho.Client
	mu     sync.Mutex
	msgs   []obsMsg
	notify chan struct{}
}

func (e *env) observe(filters ...string) *observer {
	e.t.Helper()
	if len(filters) == 0 {
		filters = []string{"capbox/#"}
	}
	o := &observer{t: e.t, notify: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker(strings.Replace(strings.Replace(e.url(), "mqtts://", "ssl://", 1), "mqtt://", "tcp://", 1)).
		SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).SetUsername("fleet").SetPassword(fleetPassword).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(true)
	if e.secure {
		opts.SetTLSConfig(e.tls.clientTLS(e.t, "fleet"))
	}
	opts.SetOnConnectHandler(func(c paho.Client) {
		subs := map[string]byte{}
		for _, f := range filters {
			subs[f] = 1
		}
		c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) {
			o.mu.Lock()
			o.msgs = append(o.msgs, obsMsg{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...), retained: m.Retained(), at: time.Now()})
			o.mu.Unlock()
			select {
			case o.notify <- struct{}{}:
			default:
			}
		}).Wait()
	})
	o.c = paho.NewClient(opts)
	if tok := o.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		e.t.Fatalf("observer connect: %v", tok.Error())
	}
	e.t.Cleanup(func() { o.c.Disconnect(0) })
	return o
}

func (o *observer) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.msgs)
}

func (o *observer) all() []obsMsg {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]obsMsg(nil), o.msgs...)
}

// waitFor returns the first message from index from on that satisfies fn.
func (o *observer) waitFor(from int, timeout time.Duration, what string, fn func(m obsMsg) bool) obsMsg {
	o.t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		for i := from; i < len(o.msgs); i++ {
			if fn(o.msgs[i]) {
				m := o.msgs[i]
				o.mu.Unlock()
				return m
			}
		}
		from = len(o.msgs)
		o.mu.Unlock()
		select {
		case <-o.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			o.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func (o *observer) publish(topic string, payload []byte, retained bool) {
	o.t.Helper()
	tok := o.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		o.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func topicIs(topic string) func(obsMsg) bool {
	return func(m obsMsg) bool { return m.topic == topic }
}

func statusIs(id string, online bool, sess int64) func(obsMsg) bool {
	return func(m obsMsg) bool {
		if m.topic != "capbox/"+id+"/status" {
			return false
		}
		s, err := wire.DecodeStatus(m.payload)
		return err == nil && s.Online == online && (sess == 0 || s.Sess == sess)
	}
}

func decodeStatus(t *testing.T, m obsMsg) wire.Status {
	t.Helper()
	s, err := wire.DecodeStatus(m.payload)
	if err != nil {
		t.Fatalf("status %s: %v", m.payload, err)
	}
	return s
}

// command sends a request and waits for the final response.
func (o *observer) command(id, name, body string) wire.CmdResponse {
	o.t.Helper()
	var req struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &req)
	from := o.mark()
	o.publish("capbox/"+id+"/cmd/req/"+name, []byte(body), false)
	m := o.waitFor(from, 10*time.Second, "response to "+name+" "+req.ID, func(m obsMsg) bool {
		if m.topic != "capbox/"+id+"/cmd/res/"+name {
			return false
		}
		var r wire.CmdResponse
		return json.Unmarshal(m.payload, &r) == nil && r.ID == req.ID && r.Final()
	})
	var r wire.CmdResponse
	if err := json.Unmarshal(m.payload, &r); err != nil {
		o.t.Fatal(err)
	}
	return r
}

// freePort reserves a loopback port number for a broker started later.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
