package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"golang.org/x/crypto/ssh"
)

// The upload figures' servers, both on loopback ephemeral ports: Debian's
// OpenSSH sshd with throwaway keys, and gofakes3 served over TLS in this
// process (over plain HTTP minio-go's chunk signatures would end up in
// the stored parts).

type sshdServer struct {
	dir, user, clientKey, knownHosts string
	port                             int
	cmd                              *exec.Cmd
}

func writeEd25519(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startSSHD(dir string) (*sshdServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	me, err := user.Current()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	s := &sshdServer{dir: dir, user: me.Username, clientKey: filepath.Join(dir, "client"), knownHosts: filepath.Join(dir, "known_hosts")}
	hostPub, err := writeEd25519(filepath.Join(dir, "host"))
	if err != nil {
		return nil, err
	}
	clientPub, err := writeEd25519(s.clientKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		return nil, err
	}
	if s.port, err = freeTCPPort(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(hostPub))), 0o600); err != nil {
		return nil, err
	}
	usePAM := "no"
	if os.Geteuid() == 0 {
		usePAM = "yes" // root's password is locked: without PAM sshd refuses the account
	}
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM %s
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
`, s.port, dir, dir, dir, usePAM)), 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-f", conf, "-E", filepath.Join(dir, "sshd.log"))
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("sshd (openssh-server, make deps): %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sshd not listening on %s (see %s/sshd.log)", addr, dir)
		}
	}
}

func (s *sshdServer) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

type s3Bench struct {
	addr, caFile, idFile, secretFile string
	access, secret                   string
	pool                             *x509.CertPool
	backend                          *s3mem.Backend
	srv                              *http.Server
}

func startS3(dir string) (*s3Bench, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &s3Bench{access: "AKIACAPBENCH", secret: "capbench-secret-key", backend: s3mem.New(),
		caFile: filepath.Join(dir, "ca.pem"), idFile: filepath.Join(dir, "id"), secretFile: filepath.Join(dir, "secret")}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "capbench S3"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	s.pool = x509.NewCertPool()
	s.pool.AddCert(cert)
	for path, content := range map[string]string{
		s.caFile: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		s.idFile: s.access, s.secretFile: s.secret,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = l.Addr().String()
	faker := gofakes3.New(s.backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s.srv = &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_ = s.srv.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}))
	}()
	return s, nil
}

func (s *s3Bench) transport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool}}
}

func (s *s3Bench) stop() { _ = s.srv.Close() }

// withoutEnv is environ without the named variables: rclone reads
// AWS_CA_BUNDLE, which this machine may set to the system bundle, and
// would then not trust the test CA given with --ca-cert.
func withoutEnv(environ []string, names ...string) []string {
	var out []string
	for _, kv := range environ {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
