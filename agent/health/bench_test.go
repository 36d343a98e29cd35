package health

import "testing"

// BenchmarkSampleLive is one sample of this machine: /proc, /sys, statfs,
// adjtimex, an rtnetlink link and address dump, and a pipeline's stats.
func BenchmarkSampleLive(b *testing.B) {
	c := New(Options{
		Sys:      SysReader{Root: "/", Mounts: []string{"/", "/tmp"}, Clock: KernelClock{}},
		Net:      NetReader{SysRoot: "/"},
		Pipeline: &fakePipe{st: stats(100, 5000)},
	})
	b.ReportAllocs()
	for b.Loop() {
		c.Sample()
	}
}

// BenchmarkSampleFixture is the same on the Raspberry Pi 4 tree (no
// netlink), closer to what a box's sysfs holds.
func BenchmarkSampleFixture(b *testing.B) {
	c := New(Options{
		Sys:      SysReader{Root: "testdata/rpi4", Mounts: []string{"/"}, Clock: KernelClock{}},
		Net:      fakeNet{},
		Pipeline: &fakePipe{st: stats(100, 5000)},
	})
	b.ReportAllocs()
	for b.Loop() {
		c.Sample()
	}
}
