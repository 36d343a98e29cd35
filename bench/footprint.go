package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// FootprintResult is figure 6.
type FootprintResult struct {
	Binaries []BinarySize `json:"binaries"`
	// RSS of capboxd streaming the test pattern (the overhead stream),
	// sampled every second; steady is the median of the second half.
	RunS          float64   `json:"run_s"`
	RSSSamplesMiB []float64 `json:"rss_samples_mib"`
	SteadyRSSMiB  Spread    `json:"steady_rss_mib"`
	RssAnonMiB    float64   `json:"rss_anon_mib"`
	RssFileMiB    float64   `json:"rss_file_mib"`
	Threads       int       `json:"threads"`
	Err           string    `json:"error,omitempty"`
}

// BinarySize is one binary as built and stripped.
type BinarySize struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Built is the build's modification time: bin/ may hold an older
	// cross build than the amd64 one.
	Built    time.Time `json:"built"`
	Bytes    int64     `json:"bytes"`
	Stripped int64     `json:"stripped_bytes"`
	Gzipped  int64     `json:"stripped_gzip6_bytes"`
	Err      string    `json:"error,omitempty"`
}

func (b *bench) footprint(ctx context.Context) (*FootprintResult, error) {
	res := &FootprintResult{}
	for _, bin := range []struct{ name, path, strip string }{
		{"capboxd arm64", b.opt.arm64, "aarch64-linux-gnu-strip"},
		{"capboxd amd64", b.opt.capboxd, "strip"},
		{"capboxctl amd64", b.opt.capboxctl, "strip"},
	} {
		res.Binaries = append(res.Binaries, b.binarySize(bin.name, bin.path, bin.strip))
	}
	if err := b.steadyRSS(ctx, res); err != nil {
		res.Err = err.Error()
	}
	return res, nil
}

// binarySize strips a copy (strip --strip-all; the cross build's -s -w
// already drops Go's symbol table and DWARF) and gzips it at level 6 (what an update
// bundle or a compressed root file system carries).
func (b *bench) binarySize(name, path, strip string) BinarySize {
	bs := BinarySize{Name: name, Path: path}
	st, err := os.Stat(path)
	if err != nil {
		bs.Err = err.Error()
		return bs
	}
	bs.Bytes, bs.Built = st.Size(), st.ModTime().UTC()
	dst := filepath.Join(b.out, "stripped", filepath.Base(path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		bs.Err = err.Error()
		return bs
	}
	if out, err := exec.Command(strip, "--strip-all", "-o", dst, path).CombinedOutput(); err != nil {
		bs.Err = fmt.Sprintf("%s: %v: %s", strip, err, out)
		return bs
	}
	if st, err := os.Stat(dst); err == nil {
		bs.Stripped = st.Size()
	}
	n, err := gzipSize(dst)
	if err != nil {
		bs.Err = err.Error()
	}
	bs.Gzipped = n
	return bs
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func gzipSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var cw countWriter
	zw, _ := gzip.NewWriterLevel(&cw, gzip.DefaultCompression)
	if _, err := io.Copy(zw, f); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

// steadyRSS streams the overhead figure's stream with capboxd alone and
// samples its resident set every second.
func (b *bench) steadyRSS(ctx context.Context, res *FootprintResult) error {
	in, st, _, err := b.ingestAndStreams(ctx, filepath.Join(b.out, "logs", "footprint-ingest.log"))
	if err != nil {
		return err
	}
	defer in.kill()
	p, err := startProc(capboxd, pick(st, capboxd), nil, filepath.Join(b.out, "logs", "footprint-capboxd.log"), false)
	if err != nil {
		return err
	}
	defer p.stop(syscall.SIGINT, 10*time.Second)
	pid := p.cmd.Process.Pid
	d := time.Duration(b.opt.footprintSeconds) * time.Second
	res.RunS = d.Seconds()
	var samples []float64
	for i := 1; time.Duration(i)*time.Second <= d; i++ {
		sleepUntil(ctx, p.started.Add(time.Duration(i)*time.Second))
		if p.exited() {
			return errors.New("capboxd ended early (see logs/footprint-capboxd.log)")
		}
		kib, err := statusKiB(pid, "VmRSS")
		if err != nil {
			return err
		}
		samples = append(samples, float64(kib)/1024)
	}
	res.RSSSamplesMiB = samples
	res.SteadyRSSMiB = spreadOf(samples[len(samples)/2:])
	var errs []error
	for _, f := range []struct {
		name string
		dst  *float64
	}{{"RssAnon", &res.RssAnonMiB}, {"RssFile", &res.RssFileMiB}} {
		kib, err := statusKiB(pid, f.name)
		errs = append(errs, err)
		*f.dst = float64(kib) / 1024
	}
	th, err := statusKiB(pid, "Threads")
	res.Threads = int(th)
	errs = append(errs, err)
	if in.bytes.Load() == 0 {
		errs = append(errs, errors.New("the ingest received nothing"))
	}
	return errors.Join(errs...)
}
