package broker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMosquittoPasswdFiles: files written by mosquitto_passwd (both hash
// types) verify here, so one password file serves both brokers. The other
// direction (mosquitto reading SetPassword's file) runs in agent/fleet's
// mosquitto scenarios.
func TestMosquittoPasswdFiles(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed: run make deps")
	}
	for _, alg := range []string{"sha512-pbkdf2", "sha512"} {
		f := filepath.Join(t.TempDir(), "passwd")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-H", alg, "-b", f, "box-a", "s3cret pass:word").CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", alg, err, out)
		}
		data, _ := os.ReadFile(f)
		entries, err := ParsePasswordFile(data)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		e, ok := entries["box-a"]
		if !ok || !e.verify("s3cret pass:word") || e.verify("s3cret pass:wordX") || e.verify("") {
			t.Errorf("%s: verification wrong (%q)", alg, data)
		}
	}
}

func TestSetPassword(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	for _, pw := range []string{"first-password", "second-password"} {
		if err := SetPassword(f, "box-a", pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetPassword(f, "fleet", "fleet-password"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f)
	st, _ := os.Stat(f)
	if strings.Count(string(data), "box-a:") != 1 || strings.Contains(string(data), "password") || st.Mode().Perm() != 0o600 {
		t.Errorf("file %q mode %v", data, st.Mode())
	}
	p := &passwords{path: f}
	if !p.verify("box-a", "second-password") || p.verify("box-a", "first-password") || !p.verify("fleet", "fleet-password") || p.verify("nobody", "") {
		t.Error("verify")
	}
	for _, bad := range []string{"", "a:b", "a\nb"} {
		if SetPassword(f, bad, "x") == nil {
			t.Errorf("user %q accepted", bad)
		}
	}
}

func TestParsePasswordFileErrorsHideContent(t *testing.T) {
	_, err := ParsePasswordFile([]byte("ok:$7$101$AAAA$AAAA\nbroken-line-secret\nx:$9$zz\n"))
	if err == nil || strings.Contains(err.Error(), "broken-line-secret") || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("err = %v", err)
	}
}
