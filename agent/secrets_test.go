package agent

import (
	"slices"
	"testing"

	"capbox/agent/config"
)

func TestConfigSecrets(t *testing.T) {
	const (
		streamKey     = "sk-live-9f8e7d6c5b4a"
		srtPassphrase = "passphrase-0123456789"
		rtspPassword  = "rtsp-pw-abcdefgh"
		fleetPassword = "fleet-operator-pw-1"
	)
	doc := `{"encode":{"bitrate_kbps":6000},"outputs":[{"name":"primary","url":"rtmp://ingest.example.org/live","key":"` + streamKey + `"},` +
		`{"name":"backup","url":"srt://ingest.example.org:9000?passphrase=` + srtPassphrase + `"},` +
		`{"name":"cam","url":"rtsp://u:` + rtspPassword + `@10.0.0.1/x"}],` +
		`"fleet":{"password":"` + fleetPassword + `"}}`
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	secrets := ConfigSecrets(cfg)
	for _, s := range []string{streamKey, srtPassphrase, rtspPassword, fleetPassword} {
		if !slices.Contains(secrets, s) {
			t.Errorf("ConfigSecrets missed %q: %q", s, secrets)
		}
	}
}
