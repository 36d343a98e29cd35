package redact

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl": "rtmp://a.rtmp.youtube.com/live2/***",
		"rtmps://x.example.org:443/app/key?x=1":          "rtmps://x.example.org:443/app/***?x=1",
		"rtmp://host/app":                                "rtmp://host/app",
		"RTMP://HOST/App/Key":                            "rtmp://HOST/App/***",
		"srt://ingest.example.org:9000?streamid=room1&passphrase=passphrase-01234567": "srt://ingest.example.org:9000?passphrase=***&streamid=room1",
		"srt://h:1?passphrase=a%20b&latency=200":                                      "srt://h:1?latency=200&passphrase=***",
		"srt://:8890?mode=listener":                                                   "srt://:8890?mode=listener",
		"rtsp://user:rtsp-pw-abcdefgh@10.0.0.1:8554/cam":                              "rtsp://user:***@10.0.0.1:8554/cam",
		"rtsp://user@10.0.0.1/cam":                                                    "rtsp://user@10.0.0.1/cam",
		"::bad":                                                                       "***",
		"":                                                                            "",
		"file:///x":                                                                   "file:///x",
	} {
		if got := URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestURLSecrets(t *testing.T) {
	for raw, want := range map[string][]string{
		"rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl":        {"abcd-efgh-ijkl"},
		"rtmps://h/app/k%20ey":                                  {"k ey", "k%20ey"},
		"rtmp://host/app":                                       nil,
		"srt://h:1?streamid=room1&passphrase=p%26ss-0123456789": {"p&ss-0123456789", "p%26ss-0123456789"},
		"rtsp://user:pw%40x@10.0.0.1/cam":                       {"pw@x", "pw%40x"},
		"rtsp://user@10.0.0.1/cam":                              nil,
		"srt://:8890?mode=listener":                             nil,
		"::bad":                                                 nil,
	} {
		got := URLSecrets(raw)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("URLSecrets(%q) = %q, lacks %q", raw, got, w)
			}
		}
		if len(want) == 0 && len(got) > 0 {
			t.Errorf("URLSecrets(%q) = %q, want none", raw, got)
		}
		// What URLSecrets names, URL hides.
		if red := URL(raw); len(want) > 0 && strings.Contains(red, want[0]) {
			t.Errorf("URL(%q) = %q still shows %q", raw, red, want[0])
		}
	}
}

// FuzzURL: URL never fails; after it, every place URLSecrets would read a
// secret from holds ***.
func FuzzURL(f *testing.F) {
	f.Add("rtmp://h/app/key")
	f.Add("srt://h:1?passphrase=0123456789abc")
	f.Add("rtsp://u:p@h/x")
	f.Add("rtmps://u:p@h:1/a/b/c?passphrase=x&passphrase=y")
	f.Fuzz(func(t *testing.T, raw string) {
		red := URL(raw)
		for _, s := range URLSecrets(red) {
			if u, err := url.PathUnescape(s); err != nil || u != Redacted {
				t.Errorf("URL(%q) = %q still holds the secret %q", raw, red, s)
			}
		}
	})
}
