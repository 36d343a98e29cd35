package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"capbox/agent/config"
	"capbox/agent/fleet"
	"capbox/agent/fleet/fleettest"
	"capbox/agent/fleet/wire"
	"capbox/board"
)

// brokers are the two brokers every scenario runs against: they differ on
// refused publishes (mochi disconnects, mosquitto drops silently).
var brokers = []struct {
	name  string
	start func(t *testing.T, pki *testPKI) *env
}{
	{"mochi", startMochiWith},
	{"mosquitto", startMosquitto},
}

func forBrokers(t *testing.T, f func(t *testing.T, start func(*testPKI) *env)) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, func(p *testPKI) *env { return b.start(t, p) })
		})
	}
}

// TestMain doubles as the box process of the kill -9 scenario.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("CAPBOX_FLEET_HELPER"); cfg != "" {
		os.Exit(helperBox(cfg))
	}
	os.Exit(m.Run())
}

type helperCfg struct {
	Fleet    config.Fleet `json:"fleet"`
	ID       string       `json:"id"`
	StateDir string       `json:"state_dir"`
}

// helperBox runs one link with a fake box until killed.
func helperBox(raw string) int {
	var h helperCfg
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := fleet.New(h.Fleet, h.ID, newBox(), slog.New(slog.DiscardHandler), fleet.WithStateDir(h.StateDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := l.Run(ctx); err != nil {
		return 1
	}
	return 0
}

// boxTopics are what a box publishes (the rest are the fleet's).
func fromBox(topic string) bool {
	return !strings.Contains(topic, "/cmd/req/") && !strings.HasSuffix(topic, "/config/desired") && !strings.HasSuffix(topic, "/ota/job")
}

var allSecrets = func() []string {
	s := []string{streamKey, srtPassphrase, rtspPassword, fleetPassword}
	for _, id := range boxIDs {
		s = append(s, boxPassword(id))
	}
	return s
}()

// assertNoSecrets greps everything the boxes published and their logs.
func assertNoSecrets(t *testing.T, o *observer, runs ...*running) {
	t.Helper()
	n := 0
	for _, m := range o.all() {
		if !fromBox(m.topic) {
			continue
		}
		n++
		for _, s := range allSecrets {
			if bytes.Contains(m.payload, []byte(s)) {
				t.Errorf("secret %.6s... published on %s: %s", s, m.topic, m.payload)
			}
		}
	}
	for _, r := range runs {
		logs := r.logs.String()
		for _, s := range allSecrets {
			if strings.Contains(logs, s) {
				t.Errorf("secret %.6s... in the link's log", s)
			}
		}
	}
	if n == 0 {
		t.Error("nothing published to grep")
	}
}

func decodeJSON[T any](t *testing.T, m obsMsg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.payload, &v); err != nil {
		t.Fatalf("%s: %v: %s", m.topic, err, m.payload)
	}
	return v
}

func TestLifecycle(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		r := e.startLink("box-a", nil, "", nil)

		birth := decodeStatus(t, o.waitFor(0, 10*time.Second, "birth", statusIs("box-a", true, 1)))
		if birth.State != wire.StatusReady || birth.Agent != "0.3.0-test" || birth.Seq != 1 || birth.TS == 0 {
			t.Errorf("birth = %+v", birth)
		}
		meta := decodeJSON[wire.Meta](t, o.waitFor(0, 5*time.Second, "meta", topicIs("capbox/box-a/meta")))
		if meta.Outputs[0].URL != "rtmp://ingest.example.org/live/***" || !strings.Contains(meta.Outputs[1].URL, "passphrase=***") {
			t.Errorf("meta outputs not redacted: %+v", meta.Outputs)
		}
		if len(meta.Commands) != len(wire.Commands) || meta.TelemetryIntervalS != 1 || meta.Sess != 1 || meta.Seq < 2 {
			t.Errorf("meta = %+v", meta)
		}
		st := decodeJSON[wire.State](t, o.waitFor(0, 5*time.Second, "state", topicIs("capbox/box-a/state")))
		if st.Mood != wire.MoodHappy || st.Outputs["primary"] != wire.OutputUp || st.Capture.Format != "1080p60" {
			t.Errorf("state = %+v", st)
		}
		tel := decodeJSON[wire.Telemetry](t, o.waitFor(0, 5*time.Second, "telemetry", topicIs("capbox/box-a/telemetry")))
		if tel.Sys.TempsC["cpu-thermal"] != 55.5 || tel.Sess != 1 || tel.IntervalS != 1 {
			t.Errorf("telemetry = %+v", tel)
		}

		// Ten changes in a burst: at most one state a second, the last wins.
		from := o.mark()
		for i := range 10 {
			r.box.SetState(func(s *wire.State) { s.Outputs["primary"] = fmt.Sprint("step-", i) })
			time.Sleep(20 * time.Millisecond)
		}
		last := o.waitFor(from, 5*time.Second, "final state", func(m obsMsg) bool {
			return m.topic == "capbox/box-a/state" && bytes.Contains(m.payload, []byte("step-9"))
		})
		var states []obsMsg
		for _, m := range o.all()[from:] {
			if m.topic == "capbox/box-a/state" {
				states = append(states, m)
			}
		}
		if len(states) > 3 {
			t.Errorf("%d state messages for a 200 ms burst, want <= 3 (1/s)", len(states))
		}
		for i := 1; i < len(states); i++ {
			if gap := states[i].at.Sub(states[i-1].at); gap < 900*time.Millisecond {
				t.Errorf("states %s apart, want >= 1s", gap)
			}
		}
		_ = last

		// An event goes out on evt/{type}, stamped with the session.
		r.box.Emit(wire.Event{Type: wire.EvtSignalLost, Part: wire.PartCapture})
		ev := decodeJSON[wire.Event](t, o.waitFor(0, 5*time.Second, "event", topicIs("capbox/box-a/evt/signal_lost")))
		if ev.Sess != 1 || ev.Type != wire.EvtSignalLost || ev.TS == 0 {
			t.Errorf("event = %+v", ev)
		}

		// Graceful stop: offline with a reason; the next run is session 2.
		from = o.mark()
		r.stop()
		off := decodeStatus(t, o.waitFor(from, 5*time.Second, "graceful offline", statusIs("box-a", false, 1)))
		if off.State != wire.StatusDisconnected || off.Reason != wire.ReasonShutdown {
			t.Errorf("offline = %+v", off)
		}
		r2 := e.startLink("box-a", nil, r.stateDir, nil)
		o.waitFor(from, 10*time.Second, "birth of session 2", statusIs("box-a", true, 2))
		assertNoSecrets(t, o, r, r2)
	})
}

func commandBody(id string, args any, exp int64) string {
	m := map[string]any{"v": 1, "id": id}
	if args != nil {
		m["args"] = args
	}
	if exp != 0 {
		m["exp"] = exp
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestCommands(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		r := e.startLink("box-b", nil, "", nil)
		o.waitFor(0, 10*time.Second, "birth", statusIs("box-b", true, 0))

		for _, c := range wire.Commands {
			var args any
			switch c.Name {
			case wire.CmdRestartOutput, wire.CmdStartOutput, wire.CmdStopOutput:
				args = map[string]string{"name": "primary"}
			case wire.CmdSetLogLevel:
				args = map[string]string{"level": "debug"}
			}
			res := o.command("box-b", c.Name, commandBody("rt-"+c.Name, args, time.Now().Add(time.Minute).UnixMilli()))
			if res.Status != wire.ResOK {
				t.Errorf("%s: %+v", c.Name, res)
				continue
			}
			switch c.Name {
			case wire.CmdSnapshot:
				var s wire.SnapshotResult
				if err := json.Unmarshal(res.Result, &s); err != nil {
					t.Fatal(err)
				}
				img, err := jpeg.Decode(bytes.NewReader(s.JPEG))
				if err != nil || img.Bounds().Dx() != 64 || s.Bytes != len(s.JPEG) {
					t.Errorf("snapshot: %v %v", err, s.Bytes)
				}
			case wire.CmdDetect:
				var d board.Detection
				if err := json.Unmarshal(res.Result, &d); err != nil || d.Board.ID != "x86" {
					t.Errorf("detect result %s: %v", res.Result, err)
				}
			case wire.CmdPing:
				if !bytes.Contains(res.Result, []byte(`"pong":true`)) {
					t.Errorf("ping result %s", res.Result)
				}
			case wire.CmdSetLogLevel:
				if args := r.box.LastArgs(); args.Level != "debug" {
					t.Errorf("set_log_level args %+v", args)
				}
			}
		}
		var boxCmds []string
		for _, c := range wire.Commands {
			if c.Box {
				boxCmds = append(boxCmds, c.Name)
			}
		}
		if got := r.box.Calls(); !slices.Equal(got, boxCmds) {
			t.Errorf("box saw %v, want %v", got, boxCmds)
		}

		// Duplicate: the first answer again, the box runs it once.
		before := len(r.box.Calls())
		body := commandBody("dup-1", map[string]string{"name": "backup"}, 0)
		first := o.command("box-b", wire.CmdRestartOutput, body)
		dup := o.command("box-b", wire.CmdRestartOutput, body)
		if first.Status != wire.ResOK || dup.Status != wire.ResDuplicate || dup.FirstStatus != wire.ResOK || !dup.Succeeded() {
			t.Errorf("first %+v, dup %+v", first, dup)
		}
		if n := len(r.box.Calls()) - before; n != 1 {
			t.Errorf("box ran a duplicated command %d times", n)
		}

		before = len(r.box.Calls())
		cases := []struct {
			name, body, status, code string
		}{
			{"expired", commandBody("exp-1", nil, time.Now().Add(-time.Second).UnixMilli()), wire.ResExpired, wire.CodeExpired},
			{"unknown output", commandBody("out-1", map[string]string{"name": "nope"}, 0), wire.ResRejected, wire.CodeNoOutput},
			{"missing arg", commandBody("arg-1", nil, 0), wire.ResError, wire.CodeBadArgs},
			{"arg wrong type", commandBody("arg-2", map[string]int{"name": 5}, 0), wire.ResError, wire.CodeBadArgs},
			{"extra arg", commandBody("arg-3", map[string]string{"name": "primary", "force": "yes"}, 0), wire.ResError, wire.CodeBadArgs},
			{"bad name pattern", commandBody("arg-4", map[string]string{"name": "../../etc"}, 0), wire.ResError, wire.CodeBadArgs},
			{"schema v2", `{"v":2,"id":"v-2"}`, wire.ResError, wire.CodeVersion},
			{"v wrong type", `{"v":"1","id":"wt-1"}`, wire.ResError, wire.CodeBadRequest},
			{"unknown key", `{"v":1,"id":"uk-1","argz":{}}`, wire.ResError, wire.CodeBadRequest},
		}
		for _, c := range cases {
			var id struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal([]byte(c.body), &id)
			name := wire.CmdRestartOutput
			res := o.command("box-b", name, c.body)
			if res.Status != c.status || res.Code != c.code {
				t.Errorf("%s: got %s/%s (%s), want %s/%s", c.name, res.Status, res.Code, res.Msg, c.status, c.code)
			}
		}
		if n := len(r.box.Calls()) - before; n != 1 { // only "unknown output" reaches the box
			t.Errorf("box was called %d times by refused requests, want 1", n)
		}

		// Unknown command name.
		if res := o.command("box-b", "format_disk", commandBody("u-1", nil, 0)); res.Status != wire.ResUnsupported {
			t.Errorf("unknown command: %+v", res)
		}

		// Payloads that cannot be addressed by id still get an answer.
		before = len(r.box.Calls())
		deep := `{"v":1,"id":"deep-1","args":` + strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40) + "}"
		raw := []struct {
			name, body, code string
		}{
			{"too large", `{"v":1,"id":"big-1","args":{"name":"` + strings.Repeat("x", 17<<10) + `"}}`, wire.CodeTooLarge},
			{"invalid utf-8", "{\"v\":1,\"id\":\"utf-1\",\"args\":{\"name\":\"\xff\xfe\"}}", wire.CodeBadRequest},
			{"deep nesting", deep, wire.CodeBadRequest},
			{"not json", "restart everything", wire.CodeBadRequest},
			{"id wrong type", `{"v":1,"id":5}`, wire.CodeBadRequest},
		}
		for _, c := range raw {
			from := o.mark()
			o.publish("capbox/box-b/cmd/req/restart_output", []byte(c.body), false)
			m := o.waitFor(from, 5*time.Second, c.name+" answer", topicIs("capbox/box-b/cmd/res/restart_output"))
			res := decodeJSON[wire.CmdResponse](t, m)
			if res.Status != wire.ResError || res.Code != c.code || res.ID != "" {
				t.Errorf("%s: %+v", c.name, res)
			}
		}
		if n := len(r.box.Calls()) - before; n != 0 {
			t.Errorf("malformed requests reached the box %d times", n)
		}
		assertNoSecrets(t, o, r)
	})
}

func TestLongCommandAccepted(t *testing.T) {
	e := startMochi(t)
	o := e.observe()
	box := newBox()
	box.OnCommand(func(ctx context.Context, name string, _ wire.Args) (fleet.Result, error) {
		select {
		case <-time.After(1500 * time.Millisecond):
			return fleet.Result{JPEG: fleettest.JPEG(64, 36)}, nil
		case <-ctx.Done():
			return fleet.Result{}, ctx.Err()
		}
	})
	e.startLink("box-a", box, "", nil)
	o.waitFor(0, 10*time.Second, "birth", statusIs("box-a", true, 0))
	from := o.mark()
	res := o.command("box-a", wire.CmdSnapshot, commandBody("slow-1", nil, 0))
	if res.Status != wire.ResOK {
		t.Fatalf("%+v", res)
	}
	var statuses []string
	for _, m := range o.all()[from:] {
		if m.topic == "capbox/box-a/cmd/res/snapshot" {
			statuses = append(statuses, decodeJSON[wire.CmdResponse](t, m).Status)
		}
	}
	if !slices.Equal(statuses, []string{wire.ResAccepted, wire.ResOK}) {
		t.Errorf("answers %v, want accepted then ok", statuses)
	}
}

// desired builds a config/desired payload.
func desired(version int64, doc string) []byte {
	return []byte(fmt.Sprintf(`{"v":1,"version":%d,"config":%s}`, version, doc))
}

const goodDoc = `{"encode":{"bitrate_kbps":6000},"outputs":[{"name":"primary","url":"rtmp://ingest.example.org/live","key":"` + streamKey + `"},` +
	`{"name":"backup","url":"srt://ingest.example.org:9000?passphrase=` + srtPassphrase + `"}]}`

func TestConfigDesired(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		box := newBox()
		box.OnApply(func(_ int64, doc json.RawMessage) []config.FieldError {
			if bytes.Contains(doc, []byte(`"video":"/dev/video9"`)) {
				return []config.FieldError{{Path: "capture.video", Msg: "device busy"}}
			}
			return nil
		})
		r := e.startLink("box-c", box, "", nil)
		o.waitFor(0, 10*time.Second, "birth", statusIs("box-c", true, 0))

		reported := func(from int, version int64) wire.ConfigReported {
			t.Helper()
			m := o.waitFor(from, 10*time.Second, fmt.Sprint("reported for ", version), func(m obsMsg) bool {
				if m.topic != "capbox/box-c/config/reported" {
					return false
				}
				var r wire.ConfigReported
				return json.Unmarshal(m.payload, &r) == nil && r.DesiredVersion == version
			})
			return decodeJSON[wire.ConfigReported](t, m)
		}
		set := func(version int64, doc string) wire.ConfigReported {
			t.Helper()
			from := o.mark()
			o.publish("capbox/box-c/config/desired", desired(version, doc), true)
			return reported(from, version)
		}
		persisted := func() fleet.Applied {
			t.Helper()
			a, ok, err := fleet.LoadApplied(r.stateDir)
			if err != nil || !ok {
				t.Fatalf("applied config: ok=%v err=%v", ok, err)
			}
			return a
		}

		if rep := set(1, goodDoc); rep.Status != wire.ConfigApplied || rep.AppliedVersion != 1 || rep.EffectiveSHA256 != "sha-1" {
			t.Fatalf("v1: %+v", rep)
		}
		if a := persisted(); a.Version != 1 || !jsonEqual(a.Config, []byte(goodDoc)) {
			t.Errorf("persisted %d %s", a.Version, a.Config)
		}

		// Invalid: every problem by path; the old config keeps running.
		bad := `{"encode":{"bitrate_kbps":1},"record":{"format":"avi"}}`
		from := o.mark()
		rep := set(2, bad)
		if rep.Status != wire.ConfigRejected || rep.AppliedVersion != 1 || !hasPath(rep.Errors, "encode.bitrate_kbps") || !hasPath(rep.Errors, "record.format") {
			t.Errorf("v2: %+v", rep)
		}
		o.waitFor(from, 5*time.Second, "config_rejected event", topicIs("capbox/box-c/evt/config_rejected"))

		// Valid for the parser, refused by the box.
		if rep := set(3, `{"capture":{"video":"/dev/video9"}}`); rep.Status != wire.ConfigRejected || !hasPath(rep.Errors, "capture.video") || rep.AppliedVersion != 1 {
			t.Errorf("v3: %+v", rep)
		}
		// The device id cannot be changed remotely.
		if rep := set(4, `{"device":{"id":"someone-else"}}`); rep.Status != wire.ConfigRejected || !hasPath(rep.Errors, "device.id") {
			t.Errorf("v4: %+v", rep)
		}
		// Malformed document.
		from = o.mark()
		o.publish("capbox/box-c/config/desired", []byte(`{"v":1,"version":"six","config":{}}`), true)
		if rep := reported(from, 0); rep.Status != wire.ConfigRejected || rep.AppliedVersion != 1 {
			t.Errorf("malformed: %+v", rep)
		}
		if a := persisted(); a.Version != 1 {
			t.Errorf("a rejected config was persisted: %d", a.Version)
		}
		if got := box.Applies(); !slices.Equal(got, []int64{1}) {
			t.Errorf("box applied %v", got)
		}

		// Out of order: 6 applies, then 5 is stale.
		if rep := set(6, `{"encode":{"bitrate_kbps":3000}}`); rep.Status != wire.ConfigApplied || rep.AppliedVersion != 6 {
			t.Errorf("v6: %+v", rep)
		}
		if rep := set(5, goodDoc); rep.Status != wire.ConfigRejected || rep.AppliedVersion != 6 || !hasPath(rep.Errors, "version") {
			t.Errorf("v5 after v6: %+v", rep)
		}
		if rep := set(7, goodDoc); rep.Status != wire.ConfigApplied {
			t.Errorf("v7: %+v", rep)
		}

		// Restart with a box that runs the file config: the persisted v7 is
		// applied again, and the retained desired v7 is then a no-op.
		r.stop()
		box2 := newBox()
		from = o.mark()
		r2 := e.startLink("box-c", box2, r.stateDir, nil)
		o.waitFor(from, 10*time.Second, "birth after restart", statusIs("box-c", true, 2))
		rep = reported(from, 7)
		if rep.Status != wire.ConfigApplied || rep.AppliedVersion != 7 {
			t.Errorf("after restart: %+v", rep)
		}
		time.Sleep(500 * time.Millisecond)
		if got := box2.Applies(); !slices.Equal(got, []int64{7}) {
			t.Errorf("after restart the box applied %v, want [7] once", got)
		}
		assertNoSecrets(t, o, r, r2)
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func hasPath(errs []wire.FieldError, path string) bool {
	for _, e := range errs {
		if e.Path == path {
			return true
		}
	}
	return false
}

// TestKill9Will: a box process killed with SIGKILL leaves its will.
func TestKill9Will(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		h, _ := json.Marshal(helperCfg{Fleet: e.fleetCfg("box-k"), ID: "box-k", StateDir: t.TempDir()})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CAPBOX_FLEET_HELPER="+string(h))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		o.waitFor(0, 10*time.Second, "helper birth", statusIs("box-k", true, 1))
		from := o.mark()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		will := decodeStatus(t, o.waitFor(from, 10*time.Second, "will", statusIs("box-k", false, 1)))
		if will.State != wire.StatusLost || will.Seq != 0 || will.Order().Seq != 1<<63-1 {
			t.Errorf("will = %+v", will)
		}
	})
}

// TestCutConnection: a cut TCP connection publishes the will, and the box
// comes back with the next session.
func TestCutConnection(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		p := newProxy(t, e.addr)
		r := e.startLink("box-a", nil, "", func(f *config.Fleet) { f.Broker = "mqtt://" + p.addr() })
		o.waitFor(0, 10*time.Second, "birth", statusIs("box-a", true, 1))
		from := o.mark()
		p.cut()
		o.waitFor(from, 10*time.Second, "will after the cut", statusIs("box-a", false, 1))
		o.waitFor(from, 10*time.Second, "birth of session 2", statusIs("box-a", true, 2))
		if calls := r.box.Calls(); len(calls) != 0 {
			t.Errorf("losing the broker touched the pipeline: %v", calls)
		}
	})
}

// TestStaleWillSelfHeal: a retained offline status from another session
// is overwritten by a new birth; one of the current session makes the box
// reconnect.
func TestStaleWillSelfHeal(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		e.startLink("box-a", nil, "", nil)
		o.waitFor(0, 10*time.Second, "birth", statusIs("box-a", true, 1))

		from := o.mark()
		o.publish("capbox/box-a/status", []byte(`{"v":1,"online":false,"state":"lost","sess":0}`), true)
		o.waitFor(from, 5*time.Second, "rebirth", statusIs("box-a", true, 1))
		// The retained status a newcomer gets is the birth.
		o2 := e.observe("capbox/box-a/status")
		m := o2.waitFor(0, 5*time.Second, "retained status", topicIs("capbox/box-a/status"))
		if s := decodeStatus(t, m); !s.Online || s.Sess != 1 {
			t.Errorf("retained status = %+v", s)
		}

		from = o.mark()
		o.publish("capbox/box-a/status", []byte(`{"v":1,"online":false,"state":"lost","sess":1}`), true)
		o.waitFor(from, 10*time.Second, "reconnect after its own will", statusIs("box-a", true, 2))
	})
}

// TestBrokerRestart: every box reconnects with jitter, republishes, and
// delivers what happened while the broker was away; the pipeline is never
// touched.
func TestBrokerRestart(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		e := start(nil)
		o := e.observe()
		ids := boxIDs[4:12]
		var runs []*running
		for _, id := range ids {
			runs = append(runs, e.startLink(id, nil, "", nil))
		}
		for _, id := range ids {
			o.waitFor(0, 10*time.Second, id+" birth", statusIs(id, true, 1))
		}
		e.stop()
		time.Sleep(300 * time.Millisecond)
		runs[0].box.Emit(wire.Event{Type: wire.EvtSignalLost, Msg: "while offline"})
		runs[0].box.SetState(func(s *wire.State) { s.Mode = wire.ModeNoSignal })
		time.Sleep(200 * time.Millisecond)
		from := o.mark()
		e.restart()
		var births []time.Time
		for _, id := range ids {
			m := o.waitFor(from, 15*time.Second, id+" rebirth", statusIs(id, true, 2))
			births = append(births, m.at)
		}
		ev := decodeJSON[wire.Event](t, o.waitFor(from, 5*time.Second, "queued event", topicIs("capbox/"+ids[0]+"/evt/signal_lost")))
		if ev.Sess != 2 || ev.Msg != "while offline" {
			t.Errorf("queued event = %+v", ev)
		}
		st := decodeJSON[wire.State](t, o.waitFor(from, 5*time.Second, "state", topicIs("capbox/"+ids[0]+"/state")))
		if st.Mode != wire.ModeNoSignal {
			t.Errorf("state after reconnect = %+v", st)
		}
		slices.SortFunc(births, func(a, b time.Time) int { return a.Compare(b) })
		if spread := births[len(births)-1].Sub(births[0]); spread < 100*time.Millisecond {
			t.Errorf("%d boxes reconnected within %s: no jitter", len(ids), spread)
		}
		for _, r := range runs {
			if calls := r.box.Calls(); len(calls) != 0 {
				t.Errorf("broker restart touched the pipeline: %v", calls)
			}
		}
	})
}

// TestACLRefusal: a box that tries topics its ACL does not grant (a
// username of another box, a wrong prefix) is refused: mochi refuses or
// disconnects it, mosquitto drops silently; neither loops.
func TestACLRefusal(t *testing.T) {
	cases := []struct {
		name, id string
		mod      func(e *env) func(*config.Fleet)
	}{
		{"another box's username", "box-b", func(e *env) func(*config.Fleet) {
			return func(f *config.Fleet) {
				good := e.fleetCfg("box-a")
				f.Username, f.PasswordFile = "box-a", good.PasswordFile
			}
		}},
		{"wrong prefix", "box-c", func(*env) func(*config.Fleet) {
			return func(f *config.Fleet) { f.Prefix = "elsewhere" }
		}},
	}
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := start(nil)
				o := e.observe("capbox/#", "elsewhere/#")
				r := e.startLink(c.id, nil, "", c.mod(e))
				time.Sleep(6 * time.Second)
				for _, m := range o.all() {
					t.Errorf("refused box published %s", m.topic)
				}
				if e.mochi != nil {
					// Delays 1-2 s, 1-4 s, 1-8 s: at most 4 attempts in 6 s.
					if n := e.mochi.Connects(); n > 4 {
						t.Errorf("%d connections in 6 s", n)
					}
					if e.mochi.Refusals() < 1 {
						t.Error("mochi refused nothing")
					}
				} else if n := e.mosquittoConnects(c.id); n != 1 {
					t.Errorf("mosquitto saw %d connections from %s, want 1 (no loop)", n, c.id)
				}
				if strings.Count(r.logs.String(), "fleet connected") > 1 {
					t.Errorf("the box reconnected in a loop:\n%s", r.logs)
				}
			})
		}
	})
}

// TestMutualTLS: the right certificate works; a certificate whose CN is
// not the device id, and one from an unknown CA, are refused.
func TestMutualTLS(t *testing.T) {
	forBrokers(t, func(t *testing.T, start func(*testPKI) *env) {
		pki := newPKI(t)
		e := start(pki)
		o := e.observe()
		e.startLink("box-a", nil, "", nil)
		o.waitFor(0, 10*time.Second, "birth over mutual TLS", statusIs("box-a", true, 1))

		wrong := e.startLink("box-b", nil, "", func(f *config.Fleet) { f.Cert, f.Key = pki.clientFiles(t, "box-k") })
		untrusted := e.startLink("box-c", nil, "", func(f *config.Fleet) { f.Cert, f.Key = pki.issue(t, "box-c", false, true) })
		time.Sleep(4 * time.Second)
		for _, m := range o.all() {
			if fromBox(m.topic) && (strings.HasPrefix(m.topic, "capbox/box-b/") || strings.HasPrefix(m.topic, "capbox/box-c/") ||
				strings.HasPrefix(m.topic, "capbox/box-k/")) {
				t.Errorf("refused box published %s", m.topic)
			}
		}
		if e.mochi != nil && e.mochi.Refusals() < 1 {
			t.Error("mochi refused no connection")
		}
		if !strings.Contains(wrong.logs.String(), "CN differs") {
			t.Error("the box did not warn about its certificate's CN")
		}
		if !strings.Contains(untrusted.logs.String(), "unreachable") {
			t.Error("the untrusted box did not report the broker unreachable")
		}
	})
}

// TestLeakyBoxScrubbed: a box that puts secrets where it should not (an
// error text, an event) still publishes none: the link scrubs them.
func TestLeakyBoxScrubbed(t *testing.T) {
	e := startMochi(t)
	o := e.observe()
	box := newBox()
	box.OnCommand(func(context.Context, string, wire.Args) (fleet.Result, error) {
		return fleet.Result{}, fmt.Errorf("ingest refused rtmp://ingest.example.org/live/%s", streamKey)
	})
	r := e.startLink("box-a", box, "", nil)
	o.waitFor(0, 10*time.Second, "birth", statusIs("box-a", true, 1))
	res := o.command("box-a", wire.CmdRestartPipeline, commandBody("leak-1", nil, 0))
	if res.Status != wire.ResError || !strings.Contains(res.Msg, "live/***") {
		t.Errorf("leaky error answered %+v", res)
	}
	box.Emit(wire.Event{Type: wire.EvtOutputDown, Output: "backup", Msg: "srt passphrase " + srtPassphrase + " refused"})
	o.waitFor(0, 5*time.Second, "event", topicIs("capbox/box-a/evt/output_down"))
	// A desired config carries new secrets: they join the scrub list.
	from := o.mark()
	o.publish("capbox/box-a/config/desired", desired(1, `{"outputs":[{"name":"cam","url":"rtsp://u:`+rtspPassword+`@10.0.0.1/x"}]}`), true)
	o.waitFor(from, 5*time.Second, "reported", topicIs("capbox/box-a/config/reported"))
	box.Emit(wire.Event{Type: wire.EvtOutputDown, Msg: "rtsp auth " + rtspPassword})
	o.waitFor(from, 5*time.Second, "event", topicIs("capbox/box-a/evt/output_down"))
	assertNoSecrets(t, o, r)
}

// TestNoLeaks: a link that ran, lost its broker and stopped leaves no
// goroutine behind, and its mood follows the connection.
func TestNoLeaks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := startMochi(t)
	r := e.startLink("box-a", nil, "", nil)
	waitMood(t, r.link, wire.MoodHappy)
	e.stop()
	waitMood(t, r.link, wire.MoodHungry)
	e.restart()
	waitMood(t, r.link, wire.MoodHappy)
	r.stop()
	if m := r.link.Mood(); m != wire.MoodSleeping {
		t.Errorf("mood after Run = %s", m)
	}
	e.stop()
}

func waitMood(t *testing.T, l *fleet.Link, want wire.Mood) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Mood() != want {
		if time.Now().After(deadline) {
			t.Fatalf("mood %s, want %s", l.Mood(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
