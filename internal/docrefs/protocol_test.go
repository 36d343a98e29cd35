package docrefs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
)

// protocolDoc reads docs/PROTOCOL.md.
func protocolDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProtocolNamesEverything: every word of the protocol that
// agent/fleet/wire (and the agent's thermal part) defines is named in
// docs/PROTOCOL.md, as `code`.
func TestProtocolNamesEverything(t *testing.T) {
	doc := protocolDoc(t)
	words := []string{
		wire.TopicStatus, wire.TopicMeta, wire.TopicState, wire.TopicTelemetry,
		wire.TopicConfigDesired, wire.TopicConfigReported, wire.TopicOTAJob, wire.TopicOTAStatus,
		wire.StatusInit, wire.StatusReady, wire.StatusAlert, wire.StatusDisconnected, wire.StatusLost,
		wire.ReasonShutdown, wire.ReasonReboot, wire.ReasonOTA,
		wire.PartCapture, wire.PartEncoder, wire.PartRecorder, wire.PartFleet, health.PartThermal,
		wire.ModeIdle, wire.ModeStarting, wire.ModeStreaming, wire.ModeDegraded, wire.ModeNoSignal, wire.ModeError,
		wire.OutputUp, wire.OutputConnecting, wire.OutputDown, wire.OutputDisabled,
		wire.EvtSignalLost, wire.EvtSignalLocked, wire.EvtOutputDown, wire.EvtOutputUp, wire.EvtEncoderFallback,
		wire.EvtConfigRejected, wire.EvtConfigApplied, wire.EvtThermalThrottle,
		health.EvtThermalWarning, health.EvtThermalOK,
		wire.ResAccepted, wire.ResOK, wire.ResError, wire.ResRejected, wire.ResExpired, wire.ResDuplicate, wire.ResUnsupported,
		wire.CodeBadRequest, wire.CodeTooLarge, wire.CodeBadArgs, wire.CodeVersion, wire.CodeBusy, wire.CodeFailed,
		wire.CodeTimeout, wire.CodeUnsupported, wire.CodeExpired, wire.CodeShutdown, wire.CodeNoOutput,
		wire.CodeNoSignal, wire.CodeNotRunning, wire.CodeUnavailable, wire.CodeInternal, wire.CodeStale,
		wire.ConfigApplied, wire.ConfigRejected,
		wire.DefaultPrefix,
		wire.TopicPreview, wire.TopicMeter, wire.WatchPreview, wire.WatchMeter,
	}
	for _, m := range []wire.Mood{wire.MoodSleeping, wire.MoodHappy, wire.MoodWaking, wire.MoodHungry, wire.MoodSad, wire.MoodLost} {
		words = append(words, string(m))
		// The moods table gives each its rank.
		row := fmt.Sprintf("| `%s` | %d |", m, wire.MoodRank(m))
		if !strings.Contains(doc, row) {
			t.Errorf("PROTOCOL.md has no moods row %q", row)
		}
	}
	for _, c := range append(wire.Commands, wire.Watch) {
		words = append(words, c.Name)
		for _, a := range c.Args {
			words = append(words, a.Key)
			words = append(words, a.Allowed...)
		}
		// The command table gives each its timeout.
		row := regexp.MustCompile("(?m)^\\| `" + c.Name + "` \\|[^\\n]*\\| " + seconds(c.Timeout) + " \\|")
		if !row.MatchString(doc) {
			t.Errorf("PROTOCOL.md's command table has no row for %s with its timeout %s", c.Name, seconds(c.Timeout))
		}
	}
	for _, w := range words {
		if !strings.Contains(doc, "`"+w+"`") {
			t.Errorf("PROTOCOL.md never names `%s`", w)
		}
	}
	for _, prefix := range []string{wire.TopicEvtPrefix, wire.TopicCmdReqPrefix, wire.TopicCmdResPrefix, wire.OutputPart("")} {
		if !strings.Contains(doc, "`"+prefix) {
			t.Errorf("PROTOCOL.md never names `%s...`", prefix)
		}
	}
	for _, limit := range []string{
		fmt.Sprintf("%d KiB", wire.MaxPayload>>10),
		fmt.Sprintf("%d bytes (%d KiB as base64)", wire.MaxSnapshotJPEG, wire.MaxSnapshotB64>>10),
		fmt.Sprintf("`v` | schema major: `%d`", wire.SchemaVersion),
		fmt.Sprintf("at most %d KiB and %d pixels a side", wire.MaxPreviewJPEG>>10, wire.MaxPreviewSide),
		fmt.Sprintf("1 to %d channels, levels %d to 0 dBFS", wire.MaxMeterChannels, wire.MeterFloorDBFS),
		fmt.Sprintf("`expiry` is %s to %s", minutes(wire.MinWatchExpiry), minutes(wire.MaxWatchExpiry)),
	} {
		if !strings.Contains(doc, limit) {
			t.Errorf("PROTOCOL.md does not say %q", limit)
		}
	}
}

func seconds(d time.Duration) string { return fmt.Sprintf("%d s", int(d/time.Second)) }

// minutes writes a whole number of seconds or minutes as PROTOCOL.md does.
func minutes(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return seconds(d)
}

// TestProtocolACL: the ACL block is what `capboxctl acl` prints.
func TestProtocolACL(t *testing.T) {
	doc := protocolDoc(t)
	acl := wire.MosquittoACL(wire.DefaultPrefix, "fleet")
	_, body, _ := strings.Cut(acl, "\n") // the comment line
	if !strings.Contains(doc, "```\n"+body+"```\n") {
		t.Errorf("PROTOCOL.md's ACL block is not what capboxctl acl prints:\n%s", body)
	}
}

// example is one JSON block marked <!-- example: KIND [CODE|rejected] -->.
type example struct {
	line       int
	kind, want string
	body       []byte
}

var exampleMark = regexp.MustCompile(`^<!-- example: (\S+)(?: (\S+))? -->$`)

func examples(doc string) ([]example, error) {
	var out []example
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		m := exampleMark.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "```json" {
			return nil, fmt.Errorf("line %d: an example mark not followed by a ```json block", i+1)
		}
		end := i + 2
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("line %d: unterminated example", i+1)
		}
		out = append(out, example{line: i + 1, kind: m[1], want: m[2], body: []byte(strings.Join(lines[i+2:end], "\n"))})
		i = end
	}
	return out, nil
}

// strict decodes one JSON object into v: unknown keys and trailing data
// are errors, and the object must be one the box could send (16 KiB).
func strict(b []byte, v any) error {
	if err := wire.CheckPayload(compact(b)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// header checks the v every box message carries.
func header(h wire.Header) error {
	if h.V != wire.SchemaVersion || h.Sess < 1 || h.Seq < 1 || h.TS <= 0 {
		return fmt.Errorf("header %+v: want v %d and positive sess, seq, ts", h, wire.SchemaVersion)
	}
	return nil
}

// checkExample decodes an example as its kind and says what is wrong.
func checkExample(e example) error {
	switch e.kind {
	case "status":
		var s wire.Status
		if err := strict(e.body, &s); err != nil {
			return err
		}
		if _, err := wire.DecodeStatus(compact(e.body)); err != nil {
			return err
		}
	case "meta":
		var m wire.Meta
		if err := strict(e.body, &m); err != nil {
			return err
		}
		return header(m.Header)
	case "state":
		var s wire.State
		if err := strict(e.body, &s); err != nil {
			return err
		}
		if s.Mood != wire.WorstMood(s.Moods) {
			return fmt.Errorf("mood %s is not the worst of %v", s.Mood, s.Moods)
		}
		return header(s.Header)
	case "telemetry":
		var tel wire.Telemetry
		if err := strict(e.body, &tel); err != nil {
			return err
		}
		return header(tel.Header)
	case "event":
		var ev wire.Event
		if err := strict(e.body, &ev); err != nil {
			return err
		}
		return header(ev.Header)
	case "cmd/req":
		_, err := wire.DecodeRequest(compact(e.body))
		switch {
		case e.want == "" && err != nil:
			return err
		case e.want != "" && err == nil:
			return fmt.Errorf("decoded, want %s", e.want)
		case e.want != "" && wire.CodeFor(err) != e.want:
			return fmt.Errorf("refused with %s (%v), want %s", wire.CodeFor(err), err, e.want)
		}
	case "watch":
		req, err := wire.DecodeRequest(compact(e.body))
		if err != nil {
			return err
		}
		_, err = wire.DecodeWatch(req.Args)
		return err
	case "meter":
		var m wire.Meter
		if err := strict(e.body, &m); err != nil {
			return err
		}
		if _, err := wire.DecodeMeter(compact(e.body)); err != nil {
			return err
		}
		return header(m.Header)
	case "cmd/res":
		var r wire.CmdResponse
		if err := strict(e.body, &r); err != nil {
			return err
		}
		return header(r.Header)
	case "config/desired":
		d, err := wire.DecodeDesired(compact(e.body))
		if err != nil {
			return err
		}
		_, err = config.Parse(d.Config)
		switch {
		case e.want == "" && err != nil:
			return fmt.Errorf("the box's parser refuses it: %w", err)
		case e.want == "rejected" && err == nil:
			return fmt.Errorf("the box's parser accepts it, want rejected")
		}
	case "config/reported":
		var r wire.ConfigReported
		if err := strict(e.body, &r); err != nil {
			return err
		}
		return header(r.Header)
	default:
		return fmt.Errorf("unknown example kind %q", e.kind)
	}
	return nil
}

// TestProtocolExamples: every marked example decodes as its kind (or is
// refused as it says), and every kind has one.
func TestProtocolExamples(t *testing.T) {
	exs, err := examples(protocolDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range exs {
		seen[e.kind] = true
		if err := checkExample(e); err != nil {
			t.Errorf("PROTOCOL.md:%d: %s example: %v", e.line, e.kind, err)
		}
	}
	for _, k := range []string{"status", "meta", "state", "telemetry", "event", "cmd/req", "cmd/res", "config/desired", "config/reported", "watch", "meter"} {
		if !seen[k] {
			t.Errorf("PROTOCOL.md has no %s example", k)
		}
	}
}

// TestExampleCheckCatchesDrift: the example check refuses what the code
// would not produce or accept.
func TestExampleCheckCatchesDrift(t *testing.T) {
	for _, e := range []example{
		{kind: "state", body: []byte(`{"v":1,"ts":1,"sess":1,"seq":1,"mode":"idle","mood":"happy","moods":{},"capture":{"signal":"unknown"},"outputs":{},"recording":false,"alerts":[],"config_version":0,"colour":"red"}`)},
		{kind: "state", body: []byte(`{"v":1,"ts":1,"sess":1,"seq":1,"mode":"idle","mood":"happy","moods":{"capture":"sad"},"capture":{"signal":"unknown"},"outputs":{},"recording":false,"alerts":[],"config_version":0}`)},
		{kind: "cmd/res", body: []byte(`{"v":2,"ts":1,"sess":1,"seq":1,"id":"x","status":"ok"}`)},
		{kind: "cmd/req", body: []byte(`{"v":1,"id":"a b"}`)},
		{kind: "cmd/req", want: wire.CodeVersion, body: []byte(`{"v":1,"id":"ok"}`)},
		{kind: "cmd/req", want: wire.CodeVersion, body: []byte(`{"v":1,"id":"ok","args":[1]}`)},
		{kind: "config/desired", body: []byte(`{"v":1,"version":1,"config":{"encode":{"bitrate":5}}}`)},
		{kind: "config/desired", want: "rejected", body: []byte(`{"v":1,"version":1,"config":{}}`)},
		{kind: "telemetry", body: []byte(`{"v":1,"ts":1,"sess":1,"seq":1,"uptime_s":"5"}`)},
		{kind: "snapshot", body: []byte(`{}`)},
		{kind: "watch", body: []byte(`{"v":1,"id":"w","args":{"what":"preview","interval":"100ms","expiry":"15s"}}`)},
		{kind: "meter", body: []byte(`{"v":1,"ts":1,"sess":1,"seq":1,"channels":[{"peak_dbfs":-1,"rms_dbfs":-130}]}`)},
	} {
		if err := checkExample(e); err == nil {
			t.Errorf("%s example %s (want %q) passed", e.kind, e.body, e.want)
		}
	}
	if exs, err := examples("<!-- example: state -->\n```\n{}\n```\n"); err == nil {
		t.Errorf("an example without a json block was taken: %+v", exs)
	}
}
