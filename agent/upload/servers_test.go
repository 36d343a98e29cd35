package upload

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"golang.org/x/crypto/ssh"
)

// sshServer is Debian's OpenSSH sshd on a loopback ephemeral port, with a
// throwaway host key and a client key authorised for the current user.
type sshServer struct {
	t          *testing.T
	dir        string
	addr       string
	port       int
	user       string
	hostKey    ssh.PublicKey
	clientKey  string // private key file
	knownHosts string
	log        string
	cmd        *exec.Cmd
}

func writeKey(t *testing.T, path string) (ssh.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return spub, priv
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/sshd"); err2 != nil {
			t.Skipf("sshd not installed (%v): run make deps", err)
		}
		sshd = "/usr/sbin/sshd"
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root wants its privilege separation folder,
		// which systemd makes at boot and a container may lack.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &sshServer{t: t, dir: t.TempDir(), user: me.Username}
	hostKeyFile := filepath.Join(s.dir, "host_ed25519")
	s.hostKey, _ = writeKey(t, hostKeyFile)
	s.clientKey = filepath.Join(s.dir, "client_ed25519")
	clientPub, _ := writeKey(t, s.clientKey)
	auth := filepath.Join(s.dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	s.port = freePort(t)
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.knownHosts = filepath.Join(s.dir, "known_hosts")
	s.writeKnownHosts(s.hostKey)
	// UsePAM yes: sshd refuses an account whose password is locked (root's
	// in a container) unless PAM decides.
	usePAM := "no"
	if os.Geteuid() == 0 {
		usePAM = "yes"
	}
	conf := filepath.Join(s.dir, "sshd_config")
	s.log = filepath.Join(s.dir, "sshd.log")
	writeFile(t, conf, fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM %s
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel VERBOSE
MaxStartups 100
`, s.port, hostKeyFile, s.dir, auth, usePAM))
	s.start(sshd, conf)
	return s
}

func (s *sshServer) start(sshd, conf string) {
	t := s.t
	s.cmd = exec.Command(sshd, "-D", "-f", conf, "-E", s.log)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			// sshd logs this probe too; wait for it, so that counting
			// connections later counts only the uploader's.
			for range 200 {
				if s.connections() > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.log)
			t.Fatalf("sshd did not listen on %s: %v\n%s", s.addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sshServer) writeKnownHosts(keys ...ssh.PublicKey) {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(k)))
	}
	writeFile(s.t, s.knownHosts, b.String())
}

// connections counts the TCP connections sshd accepted so far.
func (s *sshServer) connections() int {
	b, _ := os.ReadFile(s.log)
	return strings.Count(string(b), "Connection from 127.0.0.1")
}

func (s *sshServer) target(name, dir string) uploadTargetConf {
	return uploadTargetConf{Name: name, URL: fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", s.user, s.port, dir),
		KeyFile: s.clientKey, KnownHosts: s.knownHosts}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// s3Server is gofakes3 in process, served over TLS on a loopback
// ephemeral port. Over plain HTTP minio-go signs each part in chunks and
// gofakes3 stores the chunk signatures with the data, so TLS it is.
// gofakes3 checks neither credentials nor S3's minimum part size; the
// checker in front of it does both the way S3 does (SigV4 signatures
// checked against the one key pair, EntityTooSmall for a part under 5 MiB
// that is not the last), and keeps what reached the server.
type s3Server struct {
	t       *testing.T
	addr    string
	caPool  *x509.CertPool
	cert    tls.Certificate
	handler http.Handler
	backend *s3mem.Backend
	access  string
	secret  string
	dir     string

	mu        sync.Mutex
	srv       *http.Server
	parts     map[string]map[int]int // upload id -> part number -> PUTs
	partSizes map[string]map[int]int64
	completed []string // object keys in the order they were completed
	requests  int
}

const testBucket = "talks"

func startS3(t *testing.T) *s3Server {
	t.Helper()
	s := &s3Server{t: t, backend: s3mem.New(), access: "AKIACAPBOXTEST", secret: "s3cr3t-capbox-test-key",
		parts: map[string]map[int]int{}, partSizes: map[string]map[int]int64{}, dir: t.TempDir()}
	if err := s.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(s.backend, gofakes3.WithIntegrityCheck(true), gofakes3.WithLogger(gofakes3.DiscardLog()))
	s.handler = s.check(faker.Server())
	s.makeCert()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.down)
	writeFile(t, filepath.Join(s.dir, "id"), s.access+"\n")
	writeFile(t, filepath.Join(s.dir, "secret"), s.secret+"\n")
	return s
}

func (s *s3Server) makeCert() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "capbox test S3"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		s.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(cert)
	s.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	writeFile(s.t, filepath.Join(s.dir, "ca.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

func (s *s3Server) serve(l net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{s.cert}})) }()
}

// down stops the server: connections in flight are cut.
func (s *s3Server) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up serves again on the same address.
func (s *s3Server) up() {
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(l)
}

func (s *s3Server) transport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.caPool}, ForceAttemptHTTP2: true}
}

func (s *s3Server) target(name, prefix string) uploadTargetConf {
	return uploadTargetConf{Name: name, URL: "s3://" + testBucket + "/" + prefix, Endpoint: "https://" + s.addr,
		Region: "us-east-1", AccessKeyFile: filepath.Join(s.dir, "id"), SecretKeyFile: filepath.Join(s.dir, "secret")}
}

func (s *s3Server) object(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := s.backend.GetObject(testBucket, key, nil)
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	defer obj.Contents.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(obj.Contents); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (s *s3Server) completedKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.completed...)
}

func (s *s3Server) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// s3Error answers the way S3 does.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

func (s *s3Server) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		if code, msg := s.verifySignature(r); code != "" {
			s3Error(w, http.StatusForbidden, code, msg)
			return
		}
		q := r.URL.Query()
		uploadID := q.Get("uploadId")
		key := strings.TrimPrefix(r.URL.Path, "/"+testBucket+"/")
		switch {
		case r.Method == http.MethodPut && uploadID != "" && q.Get("partNumber") != "":
			n, _ := strconv.Atoi(q.Get("partNumber"))
			rec := &statusRecorder{ResponseWriter: w, status: 200}
			next.ServeHTTP(rec, r)
			if rec.status == 200 {
				s.mu.Lock()
				if s.parts[uploadID] == nil {
					s.parts[uploadID], s.partSizes[uploadID] = map[int]int{}, map[int]int64{}
				}
				s.parts[uploadID][n]++
				s.partSizes[uploadID][n] = r.ContentLength
				s.mu.Unlock()
			}
			return
		case r.Method == http.MethodPost && uploadID != "":
			s.mu.Lock()
			sizes := s.partSizes[uploadID]
			nums := make([]int, 0, len(sizes))
			for n := range sizes {
				nums = append(nums, n)
			}
			sort.Ints(nums)
			s.mu.Unlock()
			for i, n := range nums {
				if i < len(nums)-1 && sizes[n] < s3MinPart {
					s3Error(w, http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
					return
				}
			}
			rec := &statusRecorder{ResponseWriter: w, status: 200}
			next.ServeHTTP(rec, r)
			if rec.status == 200 {
				s.mu.Lock()
				s.completed = append(s.completed, key)
				s.mu.Unlock()
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// verifySignature checks an AWS Signature Version 4 header signature the
// way S3 does, against the server's one key pair.
func (s *s3Server) verifySignature(r *http.Request) (code, msg string) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "AccessDenied", "Access Denied"
	}
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 {
		return "AuthorizationHeaderMalformed", "bad credential"
	}
	if scope[0] != s.access {
		return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var ch strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		ch.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var cq []string
	for _, k := range keys {
		for _, v := range q[k] {
			cq = append(cq, sigEscape(k)+"="+sigEscape(v))
		}
	}
	canonical := strings.Join([]string{r.Method, r.URL.EscapedPath(), strings.Join(cq, "&"), ch.String(),
		fields["SignedHeaders"], r.Header.Get("X-Amz-Content-Sha256")}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"), strings.Join(scope[1:], "/"), hex.EncodeToString(sum[:])}, "\n")
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+s.secret), scope[1])
	for _, part := range scope[2:] {
		k = mac(k, part)
	}
	if hex.EncodeToString(mac(k, toSign)) != fields["Signature"] {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

func sigEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
