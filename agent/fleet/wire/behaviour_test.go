package wire_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/internal/redact"
)

// The box's mood is its worst part's, whatever the order the parts come in;
// the ranking goes from sleeping (best) to lost (worst).
func TestWorstMoodIsTheWorstPart(t *testing.T) {
	ranked := []wire.Mood{wire.MoodSleeping, wire.MoodHappy, wire.MoodWaking, wire.MoodHungry, wire.MoodSad, wire.MoodLost}
	for i := 1; i < len(ranked); i++ {
		if wire.MoodRank(ranked[i-1]) >= wire.MoodRank(ranked[i]) {
			t.Errorf("%s ranks %d, not better than %s (%d)", ranked[i-1], wire.MoodRank(ranked[i-1]), ranked[i], wire.MoodRank(ranked[i]))
		}
	}
	if wire.MoodRank("grumpy") != wire.MoodRank(wire.MoodHungry) {
		t.Errorf("an unknown mood ranks %d, want as bad as hungry", wire.MoodRank("grumpy"))
	}
	if got := wire.WorstMood(nil); got != wire.MoodHappy {
		t.Errorf("no parts: %s, want happy", got)
	}
	for _, worst := range ranked {
		for _, other := range ranked {
			if wire.MoodRank(other) > wire.MoodRank(worst) {
				continue
			}
			// Maps iterate in random order: a few rounds see both first.
			for range 8 {
				ms := map[string]wire.Mood{"capture": other, "encoder": worst, "output:a": other, "recorder": other}
				if got := wire.WorstMood(ms); got != worst {
					t.Fatalf("WorstMood(%v) = %s, want %s", ms, got, worst)
				}
			}
		}
	}
	if got := wire.WorstMood(map[string]wire.Mood{"output:a": wire.MoodSleeping}); got != wire.MoodSleeping {
		t.Errorf("one sleeping part: %s, want sleeping", got)
	}
}

func TestParseBrokerURL(t *testing.T) {
	cases := []struct {
		raw      string
		insecure bool
		url      string
		secure   bool
		err      error
	}{
		{"mqtts://fleet.example.org", false, "ssl://fleet.example.org:8883", true, nil},
		{"mqtts://fleet.example.org:9883", false, "ssl://fleet.example.org:9883", true, nil},
		{"SSL://fleet.example.org", false, "ssl://fleet.example.org:8883", true, nil},
		{"tls://[::1]:8884", false, "ssl://[::1]:8884", true, nil},
		{"mqtt://127.0.0.1", false, "tcp://127.0.0.1:1883", false, nil},
		{"tcp://localhost:1884", false, "tcp://localhost:1884", false, nil},
		{"mqtt://[::1]", false, "tcp://[::1]:1883", false, nil},
		{"mqtt://fleet.example.org", true, "tcp://fleet.example.org:1883", false, nil},
		{"mqtt://fleet.example.org", false, "", false, wire.ErrInsecureBroker},
		{"mqtt://10.0.0.1:1883", false, "", false, wire.ErrInsecureBroker},
		{"", false, "", false, wire.ErrNoBroker},
		{"mqtts://user:pw@fleet.example.org", false, "", false, wire.ErrBrokerURL},
		{"mqtts://", false, "", false, wire.ErrBrokerURL},
		{"http://fleet.example.org", false, "", false, wire.ErrBrokerURL},
		{"::", false, "", false, wire.ErrBrokerURL},
	}
	for _, c := range cases {
		got, err := wire.ParseBrokerURL(c.raw, c.insecure)
		if !errors.Is(err, c.err) {
			t.Errorf("%q: error %v, want %v", c.raw, err, c.err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("%q: the error shows the password: %v", c.raw, err)
			}
			continue
		}
		if got.URL != c.url || got.Secure != c.secure {
			t.Errorf("%q: %+v, want %s secure=%v", c.raw, got, c.url, c.secure)
		}
	}
}

// A box publishes only under its own base, only its own topics, and never a
// wildcard.
func TestCheckOutgoing(t *testing.T) {
	tp := wire.Topics{Prefix: "capbox", ID: "room-1"}
	if got := tp.T(wire.TopicState); got != "capbox/room-1/state" {
		t.Fatalf("T(state) = %s", got)
	}
	ok := []string{"status", "meta", "state", "telemetry", "config/reported", "ota/status", "evt/signal_lost", "cmd/res/ping"}
	for _, s := range ok {
		if err := tp.CheckOutgoing(tp.T(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	bad := []string{
		"capbox/room-2/state", "capbox/room-1/cmd/req/ping", "capbox/room-1/config/desired",
		"capbox/room-1/evt/#", "capbox/room-1/evt/+", "capbox/room-1/evt/Bad Name", "capbox/room-1/evt/",
		"capbox/room-1/state/x", "capbox/room-1/stat", "other/room-1/state", "capbox/room-1/ota/job",
		"capbox/room-1/cmd/res/", "capbox/room-1/state\x00",
	}
	for _, topic := range bad {
		if err := tp.CheckOutgoing(topic); !errors.Is(err, wire.ErrForeignTopic) {
			t.Errorf("%q allowed (%v)", topic, err)
		}
	}
}

func TestParseBoxTopic(t *testing.T) {
	cases := []struct {
		topic, id, suffix string
		ok                bool
	}{
		{"capbox/room-1/state", "room-1", "state", true},
		{"capbox/room-1/cmd/res/ping", "room-1", "cmd/res/ping", true},
		{"capbox/room-1/", "", "", false},
		{"capbox/room-1", "", "", false},
		{"capbox/Room 1/state", "", "", false},
		{"other/room-1/state", "", "", false},
		{"capboxx/room-1/state", "", "", false},
	}
	for _, c := range cases {
		id, suffix, ok := wire.ParseBoxTopic("capbox", c.topic)
		if id != c.id || suffix != c.suffix || ok != c.ok {
			t.Errorf("%q: (%q, %q, %v), want (%q, %q, %v)", c.topic, id, suffix, ok, c.id, c.suffix, c.ok)
		}
	}
}

func TestTopicMatches(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"capbox/+/state", "capbox/room-1/state", true},
		{"capbox/+/state", "capbox/room-1/meta", false},
		{"capbox/+/state", "capbox/room-1/state/x", false},
		{"capbox/+/state", "capbox/room-1", false},
		{"capbox/#", "capbox/room-1/evt/x", true},
		{"capbox/#", "other/room-1", false},
		{"capbox/room-1/state", "capbox/room-1/state", true},
		{"#", "$SYS/broker/load", false},
		{"+/broker/load", "$SYS/broker/load", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"#", "capbox/room-1/state", true},
	}
	for _, c := range cases {
		if got := wire.TopicMatches(c.filter, c.topic); got != c.want {
			t.Errorf("TopicMatches(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

// A config shown to the fleet keeps its shape and loses every secret.
func TestRedactDoc(t *testing.T) {
	doc := `{"outputs":[{"name":"yt","url":"rtmp://a.example/live2/sekrit1","key":"sekrit2"},"odd",
		{"name":"srt","url":"srt://h:9000?passphrase=sekrit3&latency=200"}],
		"fleet":{"broker":"mqtts://f","password":"sekrit4"},"encode":{"bitrate_kbps":4000}}`
	got, err := wire.RedactDoc(json.RawMessage(doc))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "sekrit") {
		t.Errorf("a secret is left: %s", got)
	}
	var back struct {
		Outputs []any          `json:"outputs"`
		Fleet   map[string]any `json:"fleet"`
		Encode  map[string]any `json:"encode"`
	}
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Outputs) != 3 || back.Fleet["password"] != redact.Redacted || back.Fleet["broker"] != "mqtts://f" ||
		back.Encode["bitrate_kbps"] != 4000.0 || !strings.Contains(string(got), "latency=200") {
		t.Errorf("redacted document lost its shape: %s", got)
	}
	if _, err := wire.RedactDoc(json.RawMessage(`[1,2]`)); err == nil {
		t.Error("a document that is no object was redacted")
	}
}

func TestDocFromYAML(t *testing.T) {
	got, err := wire.DocFromYAML([]byte("encode:\n  bitrate_kbps: 3000\noutputs:\n  - {name: a, url: \"srt://h:1\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"encode":{"bitrate_kbps":3000},"outputs":[{"name":"a","url":"srt://h:1"}]}` {
		t.Errorf("YAML as JSON: %s", got)
	}
	if got, err := wire.DocFromYAML(nil); err != nil || string(got) != "{}" {
		t.Errorf("an empty file: %s, %v", got, err)
	}
	if _, err := wire.DocFromYAML([]byte("- a\n- b\n")); err == nil || !strings.Contains(err.Error(), "not a mapping") {
		t.Errorf("a list: %v", err)
	}
	if _, err := wire.DocFromYAML([]byte("a: [\n")); err == nil {
		t.Error("broken YAML accepted")
	}
	// The limit leaves room for the envelope around the document.
	fits := "text: " + strings.Repeat("x", wire.MaxPayload-256-len(`{"text":""}`)) + "\n"
	if _, err := wire.DocFromYAML([]byte(fits)); err != nil {
		t.Errorf("a document at the limit: %v", err)
	}
	over := "text: " + strings.Repeat("x", wire.MaxPayload-256-len(`{"text":""}`)+1) + "\n"
	if _, err := wire.DocFromYAML([]byte(over)); !errors.Is(err, wire.ErrDocTooLarge) {
		t.Errorf("a document over the limit: %v", err)
	}
}

// Nesting is counted outside strings only, and up to 32 levels pass.
func TestCheckPayloadDepth(t *testing.T) {
	nest := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}` }
	if err := wire.CheckPayload([]byte(nest(32))); err != nil {
		t.Errorf("32 levels: %v", err)
	}
	if err := wire.CheckPayload([]byte(nest(33))); !errors.Is(err, wire.ErrTooDeep) {
		t.Errorf("33 levels: %v", err)
	}
	inString := `{"a":"` + strings.Repeat("[{", 40) + `\"` + strings.Repeat("[", 40) + `"}`
	if err := wire.CheckPayload([]byte(inString)); err != nil {
		t.Errorf("brackets inside a string: %v", err)
	}
	// Closing brackets bring the depth down: many shallow siblings pass.
	siblings := `{"a":[` + strings.TrimSuffix(strings.Repeat(`[[[]]],`, 40), ",") + `]}`
	if err := wire.CheckPayload([]byte(siblings)); err != nil {
		t.Errorf("shallow siblings: %v", err)
	}
	if err := wire.CheckPayload([]byte(strings.Repeat(" ", wire.MaxPayload) + "{}")); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("over 16 KiB: %v", err)
	}
	if err := wire.CheckPayload([]byte(" {}")); err != nil {
		t.Errorf("leading space: %v", err)
	}
	if err := wire.CheckPayload([]byte("[]")); !errors.Is(err, wire.ErrNotJSON) {
		t.Errorf("an array: %v", err)
	}
}

func TestCodeFor(t *testing.T) {
	cases := map[error]string{
		wire.ErrTooLarge: wire.CodeTooLarge, wire.ErrVersion: wire.CodeVersion, wire.ErrBadArgs: wire.CodeBadArgs,
		wire.ErrNotJSON: wire.CodeBadRequest, wire.ErrTooDeep: wire.CodeBadRequest,
	}
	for err, code := range cases {
		if got := wire.CodeFor(errors.Join(errors.New("context"), err)); got != code {
			t.Errorf("CodeFor(%v) = %s, want %s", err, got, code)
		}
	}
}

// Messages order by session, then by sequence, never by arrival; a will
// (offline, no seq) comes after all else of its session.
func TestHeaderOrder(t *testing.T) {
	a, b, c := wire.Header{Sess: 1, Seq: 9}, wire.Header{Sess: 2, Seq: 1}, wire.Header{Sess: 2, Seq: 2}
	if !a.Before(b) || !b.Before(c) || b.Before(a) || c.Before(b) || b.Before(b) {
		t.Error("Header.Before")
	}
	will := wire.Status{Sess: 2, Online: false}
	if !c.Before(will.Order()) {
		t.Error("a will sorts before its session's messages")
	}
	var h wire.Header
	h.Stamp(3, 4, 1000)
	if h.V != wire.SchemaVersion || h.Sess != 3 || h.Seq != 4 || h.TS != 1000 {
		t.Errorf("stamped %+v", h)
	}
	h.Stamp(3, 5, 2000)
	if h.TS != 1000 || h.Seq != 5 {
		t.Errorf("a second stamp changed the creation time or kept the seq: %+v", h)
	}
	var s wire.Status
	s.Stamp(3, 4, 1000)
	s.Stamp(3, 6, 2000)
	if s.V != wire.SchemaVersion || s.Sess != 3 || s.Seq != 6 || s.TS != 1000 {
		t.Errorf("stamped status %+v", s)
	}
}

func TestResponseOutcome(t *testing.T) {
	cases := []struct {
		r                wire.CmdResponse
		final, succeeded bool
	}{
		{wire.CmdResponse{Status: wire.ResAccepted}, false, false},
		{wire.CmdResponse{Status: wire.ResOK}, true, true},
		{wire.CmdResponse{Status: wire.ResDuplicate, FirstStatus: wire.ResOK}, true, true},
		{wire.CmdResponse{Status: wire.ResDuplicate, FirstStatus: wire.ResError}, true, false},
		{wire.CmdResponse{Status: wire.ResError}, true, false},
	}
	for _, c := range cases {
		if c.r.Final() != c.final || c.r.Succeeded() != c.succeeded {
			t.Errorf("%+v: final %v succeeded %v", c.r, c.r.Final(), c.r.Succeeded())
		}
	}
}

func TestFieldErrorText(t *testing.T) {
	cases := map[wire.FieldError]string{
		{Msg: "bad"}: "bad",
		{Path: "encode.bitrate_kbps", Msg: "too low"}: "encode.bitrate_kbps: too low",
		{Path: "outputs[0].url", Line: 7, Msg: "bad"}: "line 7: outputs[0].url: bad",
	}
	for e, want := range cases {
		if got := e.Error(); got != want {
			t.Errorf("%+v: %q, want %q", e, got, want)
		}
	}
}

// How long capboxctl waits for each command's answer.
func TestCommandTimeouts(t *testing.T) {
	want := map[string]time.Duration{
		wire.CmdPing: time.Second, wire.CmdRebirth: 5 * time.Second, wire.CmdRestartPipeline: time.Minute,
		wire.CmdRestartOutput: 30 * time.Second, wire.CmdStartOutput: 30 * time.Second, wire.CmdStopOutput: 30 * time.Second,
		wire.CmdStartRecording: 30 * time.Second, wire.CmdStopRecording: 30 * time.Second, wire.CmdSnapshot: 15 * time.Second,
		wire.CmdSetLogLevel: 5 * time.Second, wire.CmdDetect: time.Minute, wire.CmdReboot: 30 * time.Second,
	}
	if len(wire.Commands) != len(want) {
		t.Errorf("%d commands, want %d", len(wire.Commands), len(want))
	}
	for name, d := range want {
		c, ok := wire.LookupCommand(name)
		if !ok || c.Timeout != d {
			t.Errorf("%s: timeout %s (found %v), want %s", name, c.Timeout, ok, d)
		}
	}
	if _, ok := wire.LookupCommand("format_disk"); ok {
		t.Error("an unknown command was found")
	}
}

// An unknown argument is named in the error only when it is short and
// printable: the answer never echoes garbage back to the fleet.
func TestUnknownArgumentNamedOnlyWhenPrintable(t *testing.T) {
	ping, _ := wire.LookupCommand(wire.CmdPing)
	cases := []struct {
		key   string
		named bool
	}{
		{strings.Repeat("k", 32), true},
		{strings.Repeat("k", 33), false},
		{"with space", true},
		{"grüße", true},
		{"tab\there", false},
		{"nul\x1fkey", false},
		{"del\x7fkey", false},
	}
	for _, c := range cases {
		raw, _ := json.Marshal(map[string]string{c.key: "v"})
		_, err := wire.DecodeArgs(ping, raw)
		if !errors.Is(err, wire.ErrBadArgs) {
			t.Errorf("%q: %v", c.key, err)
			continue
		}
		if named := strings.Contains(err.Error(), c.key); named != c.named {
			t.Errorf("%q: named %v in %q, want %v", c.key, named, err, c.named)
		}
	}
}

// An output command takes one output name, as the config writes names.
func TestOutputCommandArgs(t *testing.T) {
	spec, _ := wire.LookupCommand(wire.CmdRestartOutput)
	for _, name := range []string{"live", "yt-2", "a_b", strings.Repeat("n", 32)} {
		raw, _ := json.Marshal(map[string]string{"name": name})
		if a, err := wire.DecodeArgs(spec, raw); err != nil || a.Name != name {
			t.Errorf("%q: %+v, %v", name, a, err)
		}
	}
	for _, name := range []string{"", "Live", "-x", "a b", strings.Repeat("n", 33)} {
		raw, _ := json.Marshal(map[string]string{"name": name})
		if _, err := wire.DecodeArgs(spec, raw); !errors.Is(err, wire.ErrBadArgs) {
			t.Errorf("%q accepted (%v)", name, err)
		}
	}
	if _, err := wire.DecodeArgs(spec, json.RawMessage(`null`)); !errors.Is(err, wire.ErrBadArgs) {
		t.Errorf("no name: %v", err)
	}
}

// A payload of exactly 16 KiB is checked on its content; a byte more is too
// large. A field of the wrong type is named, its value never shown.
func TestPayloadLimitAndFieldErrors(t *testing.T) {
	at := []byte("{}" + strings.Repeat(" ", wire.MaxPayload-2))
	if err := wire.CheckPayload(at); err != nil {
		t.Errorf("%d bytes: %v", len(at), err)
	}
	if err := wire.CheckPayload(append(at, ' ')); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("%d bytes: %v", len(at)+1, err)
	}
	_, err := wire.DecodeRequest([]byte(`{"v":1,"id":"r1","exp":"sekrit-soon"}`))
	if !errors.Is(err, wire.ErrBadField) || !strings.Contains(err.Error(), "exp: want int64") || strings.Contains(err.Error(), "sekrit") {
		t.Errorf("a string for exp: %v", err)
	}
}

// A request that fails to decode is still answered under its id when one
// can be read: up to the size and depth limits, and only a valid id.
func TestFailedRequestKeepsItsID(t *testing.T) {
	pad := func(body string, size int) []byte { return []byte(body + strings.Repeat(" ", size-len(body))) }
	bad := `{"v":1,"id":"r-7","colour":"red"}`
	if req, err := wire.DecodeRequest(pad(bad, wire.MaxPayload)); err == nil || req.ID != "r-7" {
		t.Errorf("at 16 KiB: id %q, %v", req.ID, err)
	}
	if req, err := wire.DecodeRequest(pad(bad, wire.MaxPayload+1)); !errors.Is(err, wire.ErrTooLarge) || req.ID != "" {
		t.Errorf("over 16 KiB: id %q, %v", req.ID, err)
	}
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	if req, err := wire.DecodeRequest([]byte(`{"v":1,"id":"r-8","x":` + nest(31) + `}`)); err == nil || req.ID != "r-8" {
		t.Errorf("32 levels: id %q, %v", req.ID, err)
	}
	if req, err := wire.DecodeRequest([]byte(`{"v":1,"id":"r-9","x":` + nest(32) + `}`)); !errors.Is(err, wire.ErrTooDeep) || req.ID != "" {
		t.Errorf("33 levels: id %q, %v", req.ID, err)
	}
	if req, _ := wire.DecodeRequest([]byte(`{"v":1,"id":"bad id!","x":1}`)); req.ID != "" {
		t.Errorf("an invalid id was kept: %q", req.ID)
	}
}

func TestDecodeDesired(t *testing.T) {
	d, err := wire.DecodeDesired([]byte(`{"v":1,"version":1,"config":{"log":{"level":"debug"}}}`))
	if err != nil || d.Version != 1 || string(d.Config) != `{"log":{"level":"debug"}}` {
		t.Errorf("%+v, %v", d, err)
	}
	cases := map[string]error{
		`{"v":2,"version":1,"config":{}}`:       wire.ErrVersion,
		`{"v":1,"version":0,"config":{}}`:       wire.ErrBadField,
		`{"v":1,"version":-3,"config":{}}`:      wire.ErrBadField,
		`{"v":1,"version":1,"config":[]}`:       wire.ErrBadField,
		`{"v":1,"version":1}`:                   wire.ErrBadField,
		`{"v":1,"version":1,"config":{},"x":1}`: wire.ErrBadField,
	}
	for body, want := range cases {
		if _, err := wire.DecodeDesired([]byte(body)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", body, err, want)
		}
	}
}

// The hottest sensor, and none without sensors.
func TestMaxTemp(t *testing.T) {
	for range 8 {
		if c, ok := (wire.SysHealth{TempsC: map[string]float64{"cpu": 40, "gpu": 71.5, "ssd": 55, "board": -5}}).MaxTempC(); !ok || c != 71.5 {
			t.Fatalf("max %v %v", c, ok)
		}
	}
	if c, ok := (wire.SysHealth{TempsC: map[string]float64{"cold": -12}}).MaxTempC(); !ok || c != -12 {
		t.Errorf("one sensor below zero: %v %v", c, ok)
	}
	if _, ok := (wire.SysHealth{}).MaxTempC(); ok {
		t.Error("no sensors, yet a temperature")
	}
}

// selfSigned writes a self-signed certificate and its key as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "room-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// The fleet client's TLS: the CA file (else the system roots) and an
// optional client certificate; every unusable file is ErrCredentials,
// named, and no key bytes in the error.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	tc, leaf, err := wire.ClientTLS(cert, cert, key, "fleet.example.org")
	if err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || leaf == nil || leaf.Subject.CommonName != "room-1" ||
		tc.ServerName != "fleet.example.org" || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("ca and client cert: %+v %v %v", tc, leaf, err)
	}
	if tc, leaf, err := wire.ClientTLS("", "", "", "f"); err != nil || tc.RootCAs != nil || leaf != nil || len(tc.Certificates) != 0 {
		t.Errorf("system roots, no client cert: %v", err)
	}
	notPEM := filepath.Join(dir, "ca.txt")
	_ = os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	keyBytes, _ := os.ReadFile(key)
	for name, args := range map[string][3]string{
		"missing ca":   {filepath.Join(dir, "absent.pem"), "", ""},
		"ca not PEM":   {notPEM, "", ""},
		"cert only":    {"", cert, ""},
		"key only":     {"", "", key},
		"key for cert": {"", key, key},
	} {
		_, _, err := wire.ClientTLS(args[0], args[1], args[2], "f")
		if !errors.Is(err, wire.ErrCredentials) || strings.Contains(err.Error(), string(keyBytes[40:80])) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestOutputPart(t *testing.T) {
	if got := wire.OutputPart("live"); got != "output:live" {
		t.Errorf("OutputPart: %s", got)
	}
}
