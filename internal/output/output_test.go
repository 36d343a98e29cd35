package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	passphrase = "pass-0123456789"
	streamKey  = "sk-live-9f8e7d6c"
	rtspPW     = "rtsp-pw-abcdef"
)

func TestParse(t *testing.T) {
	cases := []struct {
		url, key, keyFile string
		want              Spec
	}{
		{url: "srt://ingest.example.org:9000?streamid=room1&latency=200&passphrase=" + passphrase + "&pbkeylen=32",
			want: Spec{Proto: ProtoSRT, Host: "ingest.example.org", Port: 9000, StreamID: "room1", Latency: 200 * time.Millisecond,
				Passphrase: SecretRef{Value: passphrase}, PBKeyLen: 32, URL: "srt://ingest.example.org:9000?latency=200&passphrase=***&pbkeylen=32&streamid=room1"}},
		{url: "srt://:8890?mode=listener&passphrase_file=/etc/capbox/srt.key",
			want: Spec{Proto: ProtoSRT, Port: 8890, Listener: true, Passphrase: SecretRef{File: "/etc/capbox/srt.key"},
				URL: "srt://:8890?mode=listener&passphrase_file=/etc/capbox/srt.key"}},
		{url: "rtmp://a.rtmp.youtube.com/live2/" + streamKey,
			want: Spec{Proto: ProtoRTMP, Host: "a.rtmp.youtube.com", Port: 1935, Application: "live2", StreamKey: SecretRef{Value: streamKey},
				URL: "rtmp://a.rtmp.youtube.com/live2/***"}},
		{url: "rtmps://live.example.org/app", keyFile: "/etc/capbox/yt.key",
			want: Spec{Proto: ProtoRTMPS, Host: "live.example.org", Port: 443, Application: "app", StreamKey: SecretRef{File: "/etc/capbox/yt.key"},
				URL: "rtmps://live.example.org/app"}},
		{url: "rtsp://cam:" + rtspPW + "@10.0.0.1/stream",
			want: Spec{Proto: ProtoRTSP, Host: "10.0.0.1", Port: 554, Path: "stream", User: "cam", Password: SecretRef{Value: rtspPW},
				URL: "rtsp://cam:***@10.0.0.1/stream"}},
	}
	for _, c := range cases {
		got, err := Parse("out", c.url, c.key, c.keyFile)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		c.want.Name, c.want.Enabled = "out", true
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.url, got, c.want)
		}
		// However it is printed or encoded, a spec shows no secret.
		text, _ := json.Marshal(got)
		for _, shown := range []string{fmt.Sprint(got), fmt.Sprintf("%+v", got), fmt.Sprintf("%#v", got), string(text)} {
			for _, secret := range []string{passphrase, streamKey, rtspPW} {
				if strings.Contains(shown, secret) {
					t.Errorf("%s: the secret shows in %s", c.url, shown)
				}
			}
		}
	}
}

func TestParseRefusals(t *testing.T) {
	cases := []struct{ url, key, keyFile, why string }{
		{"ftp://x/y", "", "", "unknown scheme"},
		{"ingest.example.org:9000", "", "", "unknown scheme"},
		{"/just/a/path", "", "", "no scheme"},
		{"file:///data/x.ts", "", "", "not an output"},
		{"srt://host", "", "", "needs a port"},
		{"srt://:9000", "", "", "caller needs a host"},
		{"srt://h:9000?mode=rendezvous", "", "", "srt mode"},
		{"srt://h:9000?passphrase=short", "", "", "10..79 bytes"},
		{"srt://h:9000?passphrase=" + passphrase + "&passphrase_file=/k", "", "", "both set"},
		{"srt://h:9000?latency=5", "", "", "latency"},
		{"srt://h:9000?pbkeylen=8", "", "", "pbkeylen"},
		{"srt://h:9000?foo=1", "", "", "unknown srt parameter"},
		{"srt://h:99999", "", "", "port"},
		{"rtmp://host/app", "", "", "no stream key"},
		{"rtmp://host/", "k", "", "application path"},
		{"rtmp://u:p@host/app/k", "", "", "no query or credentials"},
		{"rtmp://host/app", "k", "/k", "both set"},
		{"srt://h:9000", "k", "", "rtmp and rtmps only"},
		{"rtsp:///x", "", "", "needs a host"},
		{"rtsp://h/x?a=1", "", "", "takes no query"},
	}
	for _, c := range cases {
		_, err := Parse("out", c.url, c.key, c.keyFile)
		if !errors.Is(err, ErrURL) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: %v, want ErrURL saying %q", c.url, err, c.why)
		}
	}
}

// FuzzParse: any URL is parsed or refused with ErrURL, never a panic; a
// parsed spec has a known protocol and a usable port, and prints its
// secrets as ***.
func FuzzParse(f *testing.F) {
	f.Add("srt://h:9000?passphrase=" + passphrase)
	f.Add("rtmp://h/app/key")
	f.Add("rtsp://u:p@h:99/x")
	f.Add("srt://[::1]:1?mode=listener")
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := Parse("out", raw, "", "")
		if err != nil {
			if !errors.Is(err, ErrURL) {
				t.Fatalf("%q: %v is not ErrURL", raw, err)
			}
			return
		}
		switch o.Proto {
		case ProtoSRT, ProtoRTMP, ProtoRTMPS, ProtoRTSP:
		default:
			t.Fatalf("%q: protocol %q", raw, o.Proto)
		}
		if o.Port < 1 || o.Port > 65535 {
			t.Fatalf("%q: port %d", raw, o.Port)
		}
		for _, s := range []Secret{o.Passphrase.Value, o.StreamKey.Value, o.Password.Value} {
			if b, _ := s.MarshalText(); s.String() != "***" || string(b) != "***" {
				t.Fatalf("%q: a secret prints as %q", raw, s.String())
			}
		}
	})
}
