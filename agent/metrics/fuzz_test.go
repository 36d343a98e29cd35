package metrics

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	"capbox/agent/fleet/wire"
)

// FuzzResolveListen: metrics.listen comes from config and MQTT. Whatever
// it is, the answer is an error or a host:port, and no host means loopback.
func FuzzResolveListen(f *testing.F) {
	for _, s := range []string{":9101", "9101", "0.0.0.0:9101", "[::1]:9101", "", ":", "::", "[::]", "a:b:c", ":99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, listen string) {
		addr, err := ResolveListen(listen)
		if err != nil {
			return
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q -> %q: %v", listen, addr, err)
		}
		if host == "" || (!strings.Contains(listen, ":") || strings.HasPrefix(listen, ":")) && host != "127.0.0.1" {
			t.Fatalf("%q -> %q: a bare port must bind loopback", listen, addr)
		}
	})
}

// FuzzLabelRoundTrip: any output name survives escaping and the strict
// parser reads it back, and the page stays one series per line.
func FuzzLabelRoundTrip(f *testing.F) {
	for _, s := range []string{"primary", weird, `\`, `"`, "\n", `\n`, "a\\\"b", "ü€"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !utf8.ValidString(name) {
			return // label values are UTF-8 (the format requires it)
		}
		tel := wire.Telemetry{Header: wire.Header{TS: 1}, Outputs: []wire.OutputHealth{{Name: name, Proto: "srt", State: "up", Bytes: 42}}}
		var b bytes.Buffer
		if err := Write(&b, tel, nil, nil); err != nil {
			t.Fatal(err)
		}
		ss := parse(t, b.String())
		if v, ok := find(ss, "capbox_output_bytes_total", "name", name); !ok || v != 42 {
			t.Fatalf("name %q not read back from:\n%s", name, b.String())
		}
	})
}
