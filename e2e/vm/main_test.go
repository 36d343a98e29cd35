package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKernelTrouble(t *testing.T) {
	clean := "[    1.0] virtio_blk virtio1: [vda]\ncapbox-e2e: guest up at 5.1s\n"
	if errs := kernelTrouble(clean); len(errs) != 0 {
		t.Fatalf("clean console judged troubled: %v", errs)
	}
	oops := clean + "[   12.3] BUG: kernel NULL pointer dereference, address: 0000000000000008\n[   12.3] Oops: 0000 [#1] PREEMPT SMP NOPTI\n"
	arm := "[   9.1] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008\n[   9.1] Internal error: Oops: 96000005 [#1] SMP\n"
	if got := kernelTrouble(arm); len(got) != 2 {
		t.Fatalf("arm64 oops not found: %v", got)
	}
	// A negative timeout is the kernel's complaint about a caller, not an oops (vivid's
	// capture thread falls behind under TCG and logs it).
	if got := kernelTrouble("[ 45.0] schedule_timeout: wrong timeout value ffffffffffffffff\n"); len(got) != 0 {
		t.Fatalf("schedule_timeout complaint judged an oops: %v", got)
	}
	errs := kernelTrouble(oops)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "NULL pointer") {
		t.Fatalf("oops not found: %v", errs)
	}
}

func TestBootTime(t *testing.T) {
	if got := bootTime("x\ncapbox-e2e: guest up at 6.81s (kernel 6.1.0-50-amd64)\n"); got != "6.81s" {
		t.Fatalf("bootTime %q", got)
	}
	if got := bootTime(""); got != "unknown" {
		t.Fatalf("bootTime of nothing %q", got)
	}
}

func TestReadVersions(t *testing.T) {
	v, err := readVersions(filepath.Join("..", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v["E2E_KERNEL_ABI"], "6.1.0-") || v["E2E_KERNEL_DEBVER"] == "" {
		t.Fatalf("pins %v", v)
	}
	bad := filepath.Join(t.TempDir(), "v.env")
	if err := os.WriteFile(bad, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readVersions(bad); err == nil {
		t.Fatal("a versions file without the kernel ABI was accepted")
	}
}
