//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"capbox/agent/fleet/broker"
	"capbox/agent/fleet/wire"
	"capbox/internal/simbox"
)

var webScreenshots = flag.String("web.screenshots", "", "TestDashboard: also write its screenshots (PNG) into this folder")

const chromiumBin = "/usr/bin/chromium"

// browser starts Debian's chromium headless with a fresh profile and the
// flags that keep it off the network.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Skip("chromium is not installed (make deps)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumBin),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1500, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// run1 runs browser actions within d.
func run1(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s (%s): %v", d, what, expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

// fleetLab is mosquitto with the fleet ACL, simulated boxes and a real
// capboxd on the test pattern, and an observer on the fleet account.
type fleetLab struct {
	t      *testing.T
	dir    string
	mq     *simbox.Mosquitto
	pwFile string
	sims   map[string]*simbox.Box
	mu     sync.Mutex
	seen   map[string]int // preview topic -> previews seen by the observer
	// lastWatch is when the observer last saw a watch request.
	lastWatch time.Time
	obs       paho.Client
	// liveConfig is the real capboxd's config with its audio source.
	liveConfig func(audio string) string
}

func startFleetLab(t *testing.T, sims int, real bool) *fleetLab {
	t.Helper()
	l := &fleetLab{t: t, dir: t.TempDir(), sims: map[string]*simbox.Box{}, seen: map[string]int{}}
	users := map[string]string{"fleet": fleetPassword}
	var ids []string
	for i := range sims {
		id := fmt.Sprintf("room-%03d", i)
		ids = append(ids, id)
		users[id] = boxPassword(id)
	}
	if real {
		users["room-live"] = boxPassword("room-live")
	}
	mq, err := simbox.StartMosquitto(l.dir, users, "fleet")
	if errors.Is(err, simbox.ErrNoMosquitto) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	l.mq = mq
	t.Cleanup(mq.Stop)
	l.pwFile = filepath.Join(l.dir, "fleet.pw")
	if err := os.WriteFile(l.pwFile, []byte(fleetPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, id := range ids {
		b := simbox.New(simbox.Options{ID: id, Index: len(l.sims), Broker: mq.URL, Password: boxPassword(id), TelemetryInterval: 2 * time.Second})
		l.sims[id] = b
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.Run(ctx) }()
	}
	if real {
		l.startCapboxd()
	}
	// The observer counts what reaches the fleet account.
	target, _ := wire.ParseBrokerURL(mq.URL, false)
	o := paho.NewClientOptions().AddBroker(target.URL).SetClientID("observer").SetUsername("fleet").SetPassword(fleetPassword).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			l.mu.Lock()
			if strings.HasSuffix(m.Topic(), "/"+wire.TopicPreview) {
				l.seen[m.Topic()]++
			} else {
				l.lastWatch = time.Now()
			}
			l.mu.Unlock()
		})
	l.obs = paho.NewClient(o)
	if tok := l.obs.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal("observer:", tok.Error())
	}
	t.Cleanup(func() { l.obs.Disconnect(0) })
	if tok := l.obs.SubscribeMultiple(map[string]byte{"capbox/+/preview": 0, "capbox/+/cmd/req/watch": 0}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal("observer:", tok.Error())
	}
	return l
}

// previewsBy counts the previews seen, by topic.
func (l *fleetLab) previewsBy() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.seen)
}

var (
	capboxdOnce sync.Once
	capboxdBin  string
	capboxdErr  error
)

// startCapboxd runs the real agent (built once) on the test pattern with
// its 1 kHz tone, an SRT listener, a recording and the fleet link.
func (l *fleetLab) startCapboxd() {
	t := l.t
	capboxdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "capboxd-web-test")
		if err != nil {
			capboxdErr = err
			return
		}
		capboxdBin = filepath.Join(dir, "capboxd")
		out, err := exec.Command("go", "build", "-o", capboxdBin, "capbox/cmd/capboxd").CombinedOutput()
		if err != nil {
			capboxdErr = fmt.Errorf("build capboxd: %v\n%s", err, out)
		}
	})
	if capboxdErr != nil {
		t.Fatal(capboxdErr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srtPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pw := filepath.Join(l.dir, "room-live.pw")
	if err := os.WriteFile(pw, []byte(boxPassword("room-live")), 0o600); err != nil {
		t.Fatal(err)
	}
	l.liveConfig = func(audio string) string {
		return fmt.Sprintf(`device: {id: room-live}
capture: {video: test, audio: %s}
encode: {bitrate_kbps: 300, max_width: 320, max_height: 180, max_fps: 10, keyframe_interval: 1s}
outputs:
  - {name: primary, url: "srt://127.0.0.1:%d?mode=listener"}
record: {enabled: true, path: %s, segment: 30s}
fleet: {broker: "%s", password_file: %s, telemetry_interval: 2s}
`, audio, srtPort, filepath.Join(l.dir, "rec"), l.mq.URL, pw)
	}
	cfg := l.liveConfig("test")
	cfgFile := filepath.Join(l.dir, "capbox.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(capboxdBin, "run", "-c", cfgFile)
	cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+filepath.Join(l.dir, "state"))
	logf, err := os.Create(filepath.Join(l.dir, "capboxd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("capboxd log:\n%s", b)
		}
	})
}

var dashboardLine = regexp.MustCompile(`dashboard on (https?://[0-9.:\[\]]+)`)

// dashboard runs `capboxctl web` against the lab and returns its URL.
func (l *fleetLab) dashboard(args ...string) string {
	t := l.t
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errw bytes.Buffer
	done := make(chan int)
	full := append([]string{"--broker", l.mq.URL, "--password-file", l.pwFile, "web", "--listen", "127.0.0.1:0"}, args...)
	go func() {
		done <- run(ctx, full, pw, &errw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		<-done
		t.Fatalf("capboxctl web printed nothing: %s", errw.String())
	}
	m := dashboardLine.FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("capboxctl web said %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("capboxctl web exited %d: %s", code, errw.String())
		}
	})
	return m[1]
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	buf, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
		t.Fatalf("screenshot is no PNG: %v", err)
	}
	if *webScreenshots != "" {
		if err := os.WriteFile(filepath.Join(*webScreenshots, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDashboard drives the dashboard in a real browser against mosquitto,
// one real capboxd on the test pattern and 50 simulated boxes.
func TestDashboard(t *testing.T) {
	t0 := time.Now()
	stage := func(what string) { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }
	l := startFleetLab(t, 50, true)
	stage("mosquitto, capboxd and 50 simulated boxes started")
	url := l.dashboard("--lease", "4s", "--preview-interval", "1s")
	ctx := browser(t)

	run1(t, ctx, 30*time.Second, "open the grid", chromedp.Navigate(url))
	waitJS(t, ctx, 60*time.Second, "51 rooms", `document.querySelectorAll("#grid .tile").length === 51`)
	stage("the grid shows 51 rooms")

	// A room's preview is a JPEG that decodes in the browser and changes
	// over time (the clock).
	const simRoom = "room-000"
	waitJS(t, ctx, 20*time.Second, "a preview", `(() => { const i = document.querySelector("#t-room-000 .pv img");
		return !!i && i.complete && i.naturalWidth === 320 && i.naturalHeight === 180 })()`)
	first := fetchJPEG(t, url+"/preview/"+simRoom)
	time.Sleep(1500 * time.Millisecond)
	if second := fetchJPEG(t, url+"/preview/"+simRoom); bytes.Equal(first, second) {
		t.Error("the preview did not change in 1.5 s")
	}
	// The real room's preview is capboxd's picture: the test pattern with
	// its clock, which changes. Its tile is the last: scrolled to, it is
	// watched.
	jsString(t, ctx, `document.getElementById("t-room-live").scrollIntoView(), "ok"`)
	waitJS(t, ctx, 30*time.Second, "the real room's preview", `(() => { const i = document.querySelector("#t-room-live .pv img");
		return !!i && i.complete && i.naturalWidth === 320 && i.naturalHeight === 180 })()`)
	first = fetchJPEG(t, url+"/preview/room-live")
	time.Sleep(2500 * time.Millisecond)
	if second := fetchJPEG(t, url+"/preview/room-live"); bytes.Equal(first, second) {
		t.Error("the real room's preview did not change in 2.5 s")
	}
	livePeak := `Number((document.querySelector("#t-room-live .mt i") || {dataset: {}}).dataset.peak || -999)`
	waitJS(t, ctx, 10*time.Second, "the real room's meter with its 1 kHz tone at -20 dBFS", livePeak+` > -25 && `+livePeak+` < -15`)
	stage("previews and meters of the real room")
	jsString(t, ctx, `window.scrollTo(0, 0), "ok"`)

	// The meter moves while the tone plays and drops when muted.
	peak := `Number((document.querySelector("#t-room-000 .mt i") || {dataset: {}}).dataset.peak || -999)`
	waitJS(t, ctx, 10*time.Second, "the meter with the tone", peak+` > -25 && `+peak+` < -10`)
	var seenPeaks = map[string]bool{}
	for range 10 {
		seenPeaks[jsString(t, ctx, `String(`+peak+`)`)] = true
		time.Sleep(150 * time.Millisecond)
	}
	if len(seenPeaks) < 2 {
		t.Errorf("the meter did not move: %v", seenPeaks)
	}
	l.sims[simRoom].SetMuted(true)
	waitJS(t, ctx, 5*time.Second, "the meter at silence", peak+` === -120`)

	// Pulling the signal turns the tile's alert on within 2 s.
	l.sims["room-001"].SetSignal(false)
	took := waitJS(t, ctx, 10*time.Second, "the alert", `document.querySelector("#t-room-001").classList.contains("alert")`)
	t.Logf("no-signal alert on the tile %s after the signal was pulled", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the alert took %s, want within 2 s", took)
	}
	l.sims["room-002"].SetOutput("youtube", wire.OutputDown)
	l.sims["room-003"].SetTempC(86)
	// Listed on top once they last 10 s ("no signal for long").
	waitJS(t, ctx, 40*time.Second, "alerts on top", `(() => { const t = document.getElementById("alerts").textContent;
		return t.includes("room-001") && t.includes("room-002") && t.includes("room-003") })()`)
	waitJS(t, ctx, 10*time.Second, "the real room's tile", `!!document.querySelector("#t-room-live .sig") &&
		document.querySelector("#t-room-live h2 .mood").textContent !== "waking"`)
	screenshot(t, ctx, "dashboard.png")
	stage("previews, meters, alerts")

	// With the page closed, the dashboard stops renewing, and the boxes
	// stop publishing previews within the lease time (4 s here) of the
	// last renewal they got.
	run1(t, ctx, 10*time.Second, "close the page", chromedp.Navigate("about:blank"))
	closed := time.Now()
	var lastWatch time.Time
	for {
		l.mu.Lock()
		lastWatch = l.lastWatch
		l.mu.Unlock()
		if time.Since(lastWatch) > 2*time.Second {
			break
		}
		if time.Since(closed) > 15*time.Second {
			t.Fatal("the dashboard still renews leases 15 s after the page closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("last renewal %s after the page closed", lastWatch.Sub(closed).Round(time.Millisecond))
	// The lease counts from the request's arrival at the box: 2.5 s more
	// for the broker's and the boxes' delivery on a busy machine.
	time.Sleep(time.Until(lastWatch.Add(4*time.Second + 2500*time.Millisecond)))
	before := l.previewsBy()
	time.Sleep(3 * time.Second)
	if after := l.previewsBy(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("previews published 6.5 to 9.5 s after the last renewal (lease 4 s): before %v, after %v", before, after)
	}

	stage("no preview after the lease")
	// The room page: restart an output of the real capboxd; the answer
	// shows on the page.
	run1(t, ctx, 30*time.Second, "open the real room", chromedp.Navigate(url+"/room/room-live"))
	waitJS(t, ctx, 20*time.Second, "the output row", `!!document.querySelector('button[data-cmd="restart_output"][data-name="primary"]')`)
	run1(t, ctx, 10*time.Second, "click restart output", chromedp.Click(chromedp.CSS(`button[data-cmd="restart_output"][data-name="primary"]`)))
	waitJS(t, ctx, 40*time.Second, "the answer", `(() => { const a = document.querySelector("#answers li");
		return !!a && a.textContent.includes("restart_output") && a.textContent.includes("name=primary") && a.querySelector(".status").textContent === "ok" })()`)

	stage("restart_output answered")
	// A good config from the editor: the real box applies it (its audio
	// muted) and its meter drops to digital silence.
	setConfig(t, ctx, l.liveConfig("none"))
	waitJS(t, ctx, 30*time.Second, "the box's report: applied", `(() => { const r = document.getElementById("report");
		return !!r && r.textContent.includes("applied") })()`)
	bigPeak := `Number((document.querySelector(".big .mt i") || {dataset: {}}).dataset.peak || -999)`
	waitJS(t, ctx, 30*time.Second, "the real room's meter at silence", bigPeak+` === -120`)
	stage("the real room muted from the editor")
	// A bad config shows its errors by path: first by the agent's rules,
	// here, before anything is sent ...
	setConfig(t, ctx, "device: {id: room-live}\nencode: {bitrate_kbps: 1}\noutputs:\n  - {name: primary, url: \"ftp://example.org/x\"}\n")
	waitJS(t, ctx, 10*time.Second, "errors by path", `(() => { const t = document.getElementById("cfg-result").textContent;
		return t.includes("encode.bitrate_kbps") && t.includes("outputs[0].url") })()`)
	// ... then by the box itself, which refuses a new device id.
	setConfig(t, ctx, "device: {id: room-other}\ncapture: {video: test, audio: test}\n")
	waitJS(t, ctx, 30*time.Second, "the box's report by path", `(() => { const e = document.getElementById("report-errors");
		return !!e && e.textContent.includes("device.id") })()`)
	stage("config errors by path")
	screenshot(t, ctx, "dashboard-room.png")
}

func setConfig(t *testing.T, ctx context.Context, yaml string) {
	t.Helper()
	run1(t, ctx, 10*time.Second, "write the config",
		chromedp.SetValue(chromedp.ID("cfg-text"), yaml),
		chromedp.Click(chromedp.CSS(`#cfg button[type="submit"]`)))
}

// fetchJPEG gets an image as a browser would (a session cookie comes
// with the first answer) and decodes it.
func fetchJPEG(t *testing.T, url string) []byte {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("%s: %s %s", url, r.Status, r.Header.Get("Content-Type"))
	}
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("%s: not a JPEG: %v", url, err)
	}
	return b
}

// selfSigned writes a certificate and key for 127.0.0.1 and 192.0.2.1.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dashboard"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "web.crt"), filepath.Join(dir, "web.key")
	_ = os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// everyRoute is every page and action of the dashboard, as a logged-out
// visitor would try them.
var everyRoute = []struct{ method, path string }{
	{"GET", "/"}, {"GET", "/room/room-000"}, {"GET", "/preview/room-000"}, {"GET", "/snapshot/room-000"},
	{"GET", "/events"}, {"GET", "/events?room=room-000"}, {"GET", "/nosuch"},
	{"POST", "/api/watch"}, {"POST", "/api/room/room-000/cmd/reboot"}, {"POST", "/api/room/room-000/cmd/restart_output"},
	{"POST", "/api/room/room-000/config"}, {"POST", "/logout"},
}

// refusesLoggedOut checks that nothing but the login page answers.
func refusesLoggedOut(t *testing.T, c *http.Client, base string) {
	t.Helper()
	for _, r := range everyRoute {
		req, _ := http.NewRequest(r.method, base+r.path, strings.NewReader("name=primary&yaml=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		loginPage := res.Request.URL.Path == "/login"
		if res.StatusCode < 400 && !loginPage || strings.Contains(string(body), "room-000") {
			t.Errorf("logged out, %s %s answered %s at %s", r.method, r.path, res.Status, res.Request.URL.Path)
		}
	}
}

// TestDashboardLogin: with logins, everything but the login page is
// refused to a logged-out browser; a read-only user sees the rooms and
// can change nothing; secrets never show.
func TestDashboardLogin(t *testing.T) {
	l := startFleetLab(t, 3, false)
	users := filepath.Join(l.dir, "web.passwd")
	for u, p := range map[string]string{"ops": "ops-password-1", "viewer": "viewer-password-1"} {
		if err := broker.SetPassword(users, u, p); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := selfSigned(t, l.dir)
	// The desired config of room-000 holds an inline stream key.
	desired := `{"v":1,"version":1,"config":{"device":{"id":"room-000"},"outputs":[{"name":"yt","url":"rtmp://a.example.org/live2","key":"` + streamKey + `"}]}}`
	if tok := l.obs.Publish("capbox/room-000/config/desired", 1, true, desired); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	url := l.dashboard("--tls-cert", cert, "--tls-key", key, "--users", users, "--read-only", "viewer")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("served %s", url)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	refusesLoggedOut(t, c, url)

	ctx := browser(t)
	run1(t, ctx, 30*time.Second, "open", chromedp.Navigate(url))
	waitJS(t, ctx, 10*time.Second, "the login page", `location.pathname === "/login" && !!document.querySelector('input[name="password"]')`)
	run1(t, ctx, 20*time.Second, "log in as viewer",
		chromedp.SetValue(chromedp.CSS(`input[name="user"]`), "viewer"),
		chromedp.SetValue(chromedp.CSS(`input[name="password"]`), "viewer-password-1"),
		chromedp.Click(chromedp.CSS(`.login button`)))
	waitJS(t, ctx, 30*time.Second, "3 rooms", `document.querySelectorAll("#grid .tile").length === 3`)
	run1(t, ctx, 30*time.Second, "open a room", chromedp.Navigate(url+"/room/room-000"))
	waitJS(t, ctx, 10*time.Second, "no commands for a viewer", `document.body.classList.contains("ro") &&
		getComputedStyle(document.querySelector(".actions")).display === "none"`)
	html := jsString(t, ctx, `document.documentElement.outerHTML`)
	if strings.Contains(html, streamKey) || !strings.Contains(html, "room-000") {
		t.Error("the room page shows the stream key, or not the room")
	}
	// The viewer's own session and token still cannot act.
	status := jsString(t, ctx, `(async () => { const r = await fetch("/api/room/room-000/cmd/reboot", {method: "POST",
		headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf"]').content, "Content-Type": "application/x-www-form-urlencoded"}, body: ""});
		return String(r.status) })()`)
	if status != "403" {
		t.Errorf("a viewer's reboot answered %s", status)
	}
	// Without the CSRF token an operator is refused too.
	run1(t, ctx, 10*time.Second, "log out", chromedp.Navigate(url+"/"), chromedp.Click(chromedp.CSS(`.logout button`)))
	waitJS(t, ctx, 10*time.Second, "logged out", `location.pathname === "/login"`)
	run1(t, ctx, 20*time.Second, "log in as ops", chromedp.SetValue(chromedp.CSS(`input[name="user"]`), "ops"),
		chromedp.SetValue(chromedp.CSS(`input[name="password"]`), "ops-password-1"), chromedp.Click(chromedp.CSS(`.login button`)))
	waitJS(t, ctx, 30*time.Second, "3 rooms", `document.querySelectorAll("#grid .tile").length === 3`)
	status = jsString(t, ctx, `(async () => { const r = await fetch("/api/room/room-000/cmd/ping", {method: "POST", body: ""}); return String(r.status) })()`)
	if status != "403" {
		t.Errorf("an action without the CSRF token answered %s", status)
	}
	status = jsString(t, ctx, `(async () => { const r = await fetch("/api/room/room-000/cmd/ping", {method: "POST",
		headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf"]').content}, body: ""}); return String(r.status) })()`)
	if status != "202" {
		t.Errorf("an operator's ping answered %s", status)
	}
	// Five wrong passwords from one address, then even the right one waits.
	for range 5 {
		res, err := c.PostForm(url+"/login", neturl.Values{"user": {"ops"}, "password": {"wrong"}})
		if err == nil {
			res.Body.Close()
		}
	}
	res, err := c.PostForm(url+"/login", neturl.Values{"user": {"ops"}, "password": {"ops-password-1"}})
	if err != nil || res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("login after 5 failures: %v %v", res.Status, err)
	}
}

// TestDashboardOffLoopback: a listener that is not loopback (here an
// address in a network namespace the test makes) is refused without TLS
// and logins, and with them refuses every page and action logged out.
func TestDashboardOffLoopback(t *testing.T) {
	l := startFleetLab(t, 1, false)
	var out, errw bytes.Buffer
	code := run(context.Background(), []string{"--broker", l.mq.URL, "--password-file", l.pwFile, "web", "--listen", "0.0.0.0:0"}, &out, &errw)
	if code != exitUsage || !strings.Contains(errw.String(), "TLS and logins") {
		t.Fatalf("a plain listener on every address: exit %d, %s", code, errw.String())
	}
	ns := testNamespace(t)
	users := filepath.Join(l.dir, "web.passwd")
	if err := broker.SetPassword(users, "ops", "ops-password-1"); err != nil {
		t.Fatal(err)
	}
	cert, key := selfSigned(t, l.dir)
	// run listens on this goroutine's thread, inside the namespace; the
	// broker session is dialled from other threads, outside it.
	urlc := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	pr, pw := io.Pipe()
	go func() {
		runtime.LockOSThread() // this thread stays in the namespace and dies with the goroutine
		if err := netns.Set(ns); err != nil {
			done <- -1
			pw.Close()
			return
		}
		done <- run(ctx, []string{"--broker", l.mq.URL, "--password-file", l.pwFile, "web", "--listen", "192.0.2.1:0",
			"--tls-cert", cert, "--tls-key", key, "--users", users}, pw, io.Discard)
		pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := dashboardLine.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-urlc:
	case code := <-done:
		t.Fatalf("capboxctl web in the namespace exited %d", code)
	case <-time.After(20 * time.Second):
		t.Fatal("capboxctl web did not start in the namespace")
	}
	defer func() { cancel(); <-done }()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		}}}
	refusesLoggedOut(t, c, base)
}

// testNamespace makes a network namespace whose lo also holds 192.0.2.1
// (TEST-NET-1): nothing there reaches any network.
func testNamespace(t *testing.T) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a network namespace needs root")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("no network namespace: %v", err)
	}
	defer func() { _ = netns.Set(orig) }()
	// TEST-NET-1 on the namespace's own lo: an address that is not
	// loopback, reachable only inside.
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err == nil {
		addr, _ := netlink.ParseAddr("192.0.2.1/32")
		err = netlink.AddrAdd(lo, addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// dialIn opens a connection from inside the namespace.
func dialIn(ctx context.Context, ns netns.NsHandle, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := netns.Set(ns); err != nil {
			ch <- result{nil, err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
