package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/jpeg"
	"testing"
	"time"
	"unicode/utf8"

	"capbox/agent/fleet/wire"
)

// The inbound parsers must never panic, must refuse what PROTOCOL.md
// refuses, and must only hand out ids and arguments that passed their
// checks. Seeds: testdata/fuzz/<Name>.

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"a","args":{"name":"primary"},"exp":1700000000000}`,
		`{"v":1,"id":"x-1"}`, `{"v":2,"id":"x"}`, `{"v":"1","id":"x"}`, `{"id":5}`, `[]`, `null`, "",
		`{"v":1,"id":"a","args":{"a":{"b":{"c":[[[[1]]]]}}}}`, "{\"v\":1,\"id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := wire.DecodeRequest(b)
		if req.ID != "" && (len(req.ID) > 64 || !utf8.ValidString(req.ID)) {
			t.Fatalf("unchecked id %q", req.ID)
		}
		if err != nil {
			return
		}
		if len(b) > wire.MaxPayload || !utf8.Valid(b) || req.V != wire.SchemaVersion || req.ID == "" {
			t.Fatalf("accepted %q", b)
		}
		for _, c := range append(wire.Commands, wire.Watch) {
			a, err := wire.DecodeArgs(c, req.Args)
			if err == nil && (len(a.Name) > 32 || len(a.Level) > 5 || len(a.What) > 7 || len(a.Interval) > 8 || len(a.Expiry) > 8) {
				t.Fatalf("unchecked args %+v", a)
			}
			if err != nil && !errors.Is(err, wire.ErrBadArgs) {
				t.Fatalf("args error not ErrBadArgs: %v", err)
			}
		}
	})
}

func FuzzDecodeDesired(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"version":3,"config":{"encode":{"bitrate_kbps":6000}}}`,
		`{"v":1,"version":0,"config":{}}`, `{"v":1,"version":1,"config":[]}`, `{"v":1,"version":1.5,"config":{}}`,
		`{"v":1,"version":9223372036854775807,"config":{}}`, `{"v":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := wire.DecodeDesired(b)
		if err != nil {
			if d.Version != 0 || d.Config != nil {
				t.Fatalf("partial result on error: %+v", d)
			}
			return
		}
		if d.Version < 1 || !json.Valid(d.Config) || d.Config[0] != '{' {
			t.Fatalf("accepted %q", b)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"online":false,"state":"lost","sess":12}`,
		`{"v":1,"online":true,"state":"ready","sess":12,"seq":1,"boot_id":"x","agent":"0.3.0","ts":1}`,
		`{"v":1,"online":"yes"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := wire.DecodeStatus(b)
		if err == nil && s.V != wire.SchemaVersion {
			t.Fatalf("accepted v=%d", s.V)
		}
		_ = s.Order()
	})
}

func FuzzCheckPayload(f *testing.F) {
	f.Add([]byte(`{"a":"\"[{"}`))
	f.Add([]byte(`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if wire.CheckPayload(b) == nil {
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("checked payload does not decode: %v", err)
			}
		}
	})
}

func FuzzDecodeWatch(f *testing.F) {
	for _, s := range []string{
		`{"what":"preview","interval":"3s","expiry":"15s"}`, `{"what":"meter","interval":"200ms","expiry":"2m"}`,
		`{"what":"meter","interval":"0ms","expiry":"0s"}`, `{"what":"preview","interval":"999999m","expiry":"1s"}`,
		`{"what":"preview"}`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := wire.DecodeWatch(b)
		if err != nil {
			if !errors.Is(err, wire.ErrBadArgs) || r != (wire.WatchRequest{}) {
				t.Fatalf("error %v with %+v", err, r)
			}
			return
		}
		if r.Expiry < wire.MinWatchExpiry || r.Expiry > wire.MaxWatchExpiry || r.Interval < 100*time.Millisecond ||
			r.Interval > time.Minute || r.Expiry < r.Interval || (r.What == wire.WatchPreview && r.Interval < time.Second) {
			t.Fatalf("accepted %+v from %q", r, b)
		}
		var l wire.Leases
		now := time.Unix(1_800_000_000, 0)
		res := l.Renew(r, now)
		if res.IntervalMS != r.Interval.Milliseconds() || res.ExpiresInMS != r.Expiry.Milliseconds() {
			t.Fatalf("lease %+v for %+v", res, r)
		}
	})
}

func FuzzDecodeMeter(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"ts":1,"sess":1,"seq":1,"channels":[{"peak_dbfs":-20,"rms_dbfs":-23},{"peak_dbfs":-120,"rms_dbfs":-120}]}`,
		`{"v":1,"channels":[{"peak_dbfs":1e400,"rms_dbfs":-1}]}`, `{"v":1,"channels":null}`, `{"v":1,"channels":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.DecodeMeter(b)
		if err != nil {
			return
		}
		if m.V != wire.SchemaVersion || len(m.Channels) < 1 || len(m.Channels) > wire.MaxMeterChannels {
			t.Fatalf("accepted %q", b)
		}
		for _, c := range m.Channels {
			if !(c.PeakDBFS >= wire.MeterFloorDBFS && c.PeakDBFS <= 0 && c.RMSDBFS >= wire.MeterFloorDBFS && c.RMSDBFS <= 0) {
				t.Fatalf("level out of range accepted: %+v", c)
			}
		}
	})
}

func FuzzCheckPreview(f *testing.F) {
	f.Add(smallJPEG(f, 32, 18))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9})
	f.Add([]byte{0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0xff, 0xff, 0xff, 0xff, 0x03, 0xff, 0xd9})
	f.Fuzz(func(t *testing.T, b []byte) {
		if wire.CheckPreview(b) != nil {
			return
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || len(b) > wire.MaxPreviewJPEG || cfg.Width > wire.MaxPreviewSide || cfg.Height > wire.MaxPreviewSide {
			t.Fatalf("accepted %d bytes, %+v %v", len(b), cfg, err)
		}
	})
}
