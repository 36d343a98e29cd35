package gst

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// rtmpServer is nginx with the RTMP module, in the foreground on a
// loopback port, recording every stream it gets.
type rtmpServer struct {
	t      *testing.T
	port   int
	dir    string
	conf   string
	cmd    *exec.Cmd
	errLog string
}

const nginxModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

func startRTMPServer(t *testing.T) *rtmpServer {
	t.Helper()
	if _, err := os.Stat(nginxModule); err != nil {
		t.Fatalf("nginx RTMP module missing (scripts/deps.sh installs libnginx-mod-rtmp): %v", err)
	}
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	if err := os.MkdirAll(rec, 0o777); err != nil {
		t.Fatal(err)
	}
	// nginx workers may drop to another user: let them write.
	_ = os.Chmod(rec, 0o777)
	s := &rtmpServer{t: t, port: freeTCPPort(t), dir: rec, conf: filepath.Join(dir, "nginx.conf"), errLog: filepath.Join(dir, "error.log")}
	user := ""
	if os.Getuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`load_module %s;
%s
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s info;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:%d;
    application live {
      live on;
      record all;
      record_path %s;
      record_unique on;
    }
  }
}
`, nginxModule, user, dir, s.errLog, s.port, rec)
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *rtmpServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("nginx", "-p", filepath.Dir(s.conf), "-c", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("nginx: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.errLog)
	s.t.Fatalf("nginx did not listen on %d: %s", s.port, log)
}

// stop kills the server the hard way (a crash, not a goodbye).
func (s *rtmpServer) stop() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// quit stops the server gracefully so it finishes its recordings.
func (s *rtmpServer) quit() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscallQuit)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
}

func (s *rtmpServer) url(app, key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s/%s", s.port, app, key)
}

// recordings lists the FLV files the server wrote.
func (s *rtmpServer) recordings() []string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.flv"))
	return files
}

var syscallQuit = syscall.SIGQUIT
