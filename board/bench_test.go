package board

import (
	"context"
	"path/filepath"
	"testing"
)

func BenchmarkDetectFixture(b *testing.B) {
	for _, name := range []string{"rpi4-tc358743", "vm-vivid-vicodec"} {
		b.Run(name, func(b *testing.B) {
			root := filepath.Join("testdata", name)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Detect(context.Background(), Options{Root: root}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadHealth(b *testing.B) {
	root := filepath.Join("testdata", "rpi4-tc358743")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadHealth(root); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUevent(b *testing.B) {
	msg := uevent("add", ms2109+"/1-1.2:1.0/video4linux/video0", "video4linux", "video0")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseUevent(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEDIDFile(b *testing.B) {
	hexdump := []byte(v4l2HexDump(DefaultEDID()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEDIDFile(hexdump); err != nil {
			b.Fatal(err)
		}
	}
}
