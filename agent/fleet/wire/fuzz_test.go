package wire_test

import (
	"encoding/json"
	"errors"
	"testing"
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
		for _, c := range wire.Commands {
			a, err := wire.DecodeArgs(c, req.Args)
			if err == nil && (len(a.Name) > 32 || len(a.Level) > 5) {
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
