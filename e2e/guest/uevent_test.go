package main

import "testing"

func TestParseUevent(t *testing.T) {
	// As the kernel sends it for `rmmod vivid` (lib/kobject_uevent.c): header, then KEY=VALUE.
	msg := []byte("remove@/devices/platform/vivid.0/video4linux/video0\x00ACTION=remove\x00DEVPATH=/devices/platform/vivid.0/video4linux/video0\x00SUBSYSTEM=video4linux\x00MAJOR=81\x00MINOR=0\x00DEVNAME=video0\x00SEQNUM=2211\x00")
	ev, ok := parseUevent(msg)
	if !ok {
		t.Fatal("not parsed")
	}
	if ev.Action != "remove" || ev.DevPath != "/devices/platform/vivid.0/video4linux/video0" || ev.Env["DEVNAME"] != "video0" {
		t.Fatalf("parsed %+v", ev)
	}
	if !v4l2Event("remove")(ev) || v4l2Event("add")(ev) {
		t.Fatal("v4l2Event matches the wrong action")
	}
	// udevd's own messages on the same family start with "libudev" and have no '@'.
	if _, ok := parseUevent([]byte("libudev\x00\xfe\xed\xca\xfe")); ok {
		t.Fatal("a libudev message parsed as a kernel uevent")
	}
}

func TestNotBuilt(t *testing.T) {
	if !notBuilt("capboxd detect: not built yet\n") || notBuilt(`{"board":{}}`) {
		t.Fatal("notBuilt misjudges capboxd's stub answer")
	}
}
