package upload

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"capbox/agent/config"
)

// The kill tests run the uploader in a child process (this test binary
// again) and SIGKILL it mid-upload: nothing is flushed or closed, as after
// a crash or a power cut.
const helperEnv = "CAPBOX_UPLOAD_HELPER"

type helperConfig struct {
	Targets  []uploadTargetConf
	Kbps     int
	Dir      string
	CA       string
	Segments []Segment
}

type helperProc struct {
	t    *testing.T
	cfg  helperConfig
	cmd  *exec.Cmd
	data []byte
}

func startHelper(t *testing.T, cfg helperConfig) *helperProc {
	return &helperProc{t: t, cfg: cfg}
}

// segment writes the one segment the child will upload.
func (h *helperProc) segment(dir string, size int) Segment {
	h.data = make([]byte, size)
	_, _ = rand.Read(h.data)
	p := filepath.Join(dir, "capbox-00001.ts")
	if err := os.WriteFile(p, h.data, 0o644); err != nil {
		h.t.Fatal(err)
	}
	return Segment{Path: p, Start: time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC), Boot: 1, Seq: 1, Size: int64(size)}
}

func (h *helperProc) enqueue(seg Segment) {
	h.cfg.Segments = append(h.cfg.Segments, seg)
	js, err := json.Marshal(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestUploadHelperProcess$", "-test.v")
	h.cmd.Env = append(os.Environ(), helperEnv+"="+string(js))
	h.cmd.Stderr = os.Stderr
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.kill)
}

func (h *helperProc) kill() {
	if h.cmd != nil && h.cmd.Process != nil {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUploadHelperProcess is the child of the kill tests; it does nothing
// in a normal run.
func TestUploadHelperProcess(t *testing.T) {
	js := os.Getenv(helperEnv)
	if js == "" {
		return
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		t.Fatal(err)
	}
	var transport http.RoundTripper
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	u, err := New(config.Upload{BandwidthKbps: cfg.Kbps, Targets: cfg.Targets}, Deps{
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Dir: cfg.Dir, Device: "room1", S3Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	go func() {
		for _, seg := range cfg.Segments {
			if err := u.Enqueue(ctx, seg); err != nil {
				fmt.Fprintln(os.Stderr, "enqueue:", err)
				os.Exit(3)
			}
		}
	}()
	go func() {
		for range u.Events() {
		}
	}()
	_ = u.Run(ctx)
}
