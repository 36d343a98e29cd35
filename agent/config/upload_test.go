package config

import (
	"errors"
	"strings"
	"testing"
)

// The example section is accepted as written, and each target is
// taken apart as the uploader needs it.
func TestUploadSectionAsDocumented(t *testing.T) {
	doc := `
upload:
  bandwidth_kbps: 2000
  delete_after_upload: true
  targets:
    - { name: archive, url: "sftp://capbox@archive.example.org:2222/rooms",
        key_file: /etc/capbox/upload.key, known_hosts: /etc/capbox/known_hosts }
    - { name: s3, url: "s3://talks/2026", endpoint: "https://s3.example.org", region: eu-1,
        access_key_file: /etc/capbox/s3.id, secret_key_file: /etc/capbox/s3.secret }
`
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upload
	if u.BandwidthKbps != 2000 || !u.DeleteAfterUpload || len(u.Targets) != 2 {
		t.Fatalf("upload section: %+v", u)
	}
	sftp, err := u.Targets[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	if sftp.Scheme != "sftp" || sftp.User != "capbox" || sftp.SFTPAddr() != "archive.example.org:2222" || sftp.Dir != "/rooms" {
		t.Errorf("sftp target: %+v", sftp)
	}
	s3, err := u.Targets[1].Parse()
	if err != nil {
		t.Fatal(err)
	}
	if s3.Scheme != "s3" || s3.Bucket != "talks" || s3.Dir != "2026" || s3.EndpointHost != "s3.example.org" || !s3.Secure {
		t.Errorf("s3 target: %+v", s3)
	}
}

// Every problem is reported under the key it is about.
func TestUploadErrorsByPath(t *testing.T) {
	doc := `
upload:
  bandwidth_kbps: -5
  targets:
    - { name: a, url: "sftp://archive.example.org/rooms", key_file: /k, known_hosts: /kh }
    - { name: a, url: "sftp://u@h/x", known_hosts: /kh }
    - { name: c, url: "sftp://u@h/x", key_file: /k }
    - { name: D, url: "s3://talks", endpoint: "http://s3.example.org", access_key_file: /a, secret_key_file: /s }
`
	want := map[string]string{
		"upload.bandwidth_kbps":         "want 0",
		"upload.targets":                "at most 4",
		"upload.targets[0].url":         "needs a user",
		"upload.targets[1].name":        "duplicate",
		"upload.targets[1].key_file":    "private key",
		"upload.targets[2].known_hosts": "always checked",
		"upload.targets[3].name":        "want [a-z0-9]",
		"upload.targets[3].endpoint":    "only for loopback",
	}
	doc5 := strings.Replace(doc, "targets:\n", "targets:\n    - { name: e, url: \"s3://talks\", access_key_file: /a, secret_key_file: /s }\n", 1)
	_, err := Parse([]byte(doc5))
	es := AsErrors(err)
	got := map[string]string{}
	for _, e := range es {
		got[e.Path] = e.Msg
	}
	// The inserted target shifts the indexes by one.
	for path, frag := range want {
		if strings.HasPrefix(path, "upload.targets[") {
			path = strings.NewReplacer("[0]", "[1]", "[1]", "[2]", "[2]", "[3]", "[3]", "[4]").Replace(path)
		}
		if !strings.Contains(got[path], frag) {
			t.Errorf("%s: want a message with %q, got %q (all: %v)", path, frag, got[path], es)
		}
	}
	if len(es) != len(want) {
		t.Errorf("want %d problems, got %d: %v", len(want), len(es), es)
	}
}

func TestUploadTargetURLs(t *testing.T) {
	ok := []UploadTarget{
		{Name: "a", URL: "sftp://u@[::1]:2022/", KeyFile: "/k", KnownHosts: "/kh"},
		{Name: "b", URL: "s3://my.bucket-1/a/b/", Endpoint: "http://127.0.0.1:9000", AccessKeyFile: "/a", SecretKeyFile: "/s"},
		{Name: "c", URL: "s3://talks", AccessKeyFile: "/a", SecretKeyFile: "/s", Region: "eu-west-1"},
	}
	for _, tg := range ok {
		if _, err := tg.Parse(); err != nil {
			t.Errorf("%s: %v", tg.URL, err)
		}
	}
	bad := map[string]UploadTarget{
		"password in url": {URL: "sftp://u:hunter2secret@h/x", KeyFile: "/k", KnownHosts: "/kh"},
		"ftp":             {URL: "ftp://u@h/x"},
		"no scheme":       {URL: "archive/rooms"},
		"query":           {URL: "sftp://u@h/x?k=v", KeyFile: "/k", KnownHosts: "/kh"},
		"port":            {URL: "sftp://u@h:99999/x", KeyFile: "/k", KnownHosts: "/kh"},
		"s3 keys on sftp": {URL: "sftp://u@h/x", KeyFile: "/k", KnownHosts: "/kh", AccessKeyFile: "/a"},
		"sftp keys on s3": {URL: "s3://talks", KeyFile: "/k", AccessKeyFile: "/a", SecretKeyFile: "/s"},
		"bucket":          {URL: "s3://Talks_2026", AccessKeyFile: "/a", SecretKeyFile: "/s"},
		"no secret":       {URL: "s3://talks", AccessKeyFile: "/a"},
		"endpoint path":   {URL: "s3://talks", Endpoint: "https://h/x", AccessKeyFile: "/a", SecretKeyFile: "/s"},
		"endpoint ftp":    {URL: "s3://talks", Endpoint: "ftp://h", AccessKeyFile: "/a", SecretKeyFile: "/s"},
		"endpoint user":   {URL: "s3://talks", Endpoint: "https://k:s@h", AccessKeyFile: "/a", SecretKeyFile: "/s"},
		"region":          {URL: "s3://talks", Region: "EU 1", AccessKeyFile: "/a", SecretKeyFile: "/s"},
	}
	for name, tg := range bad {
		_, err := tg.Parse()
		if !errors.Is(err, ErrUploadURL) {
			t.Errorf("%s: want ErrUploadURL, got %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
	}
}

func TestUploadEnvOverride(t *testing.T) {
	cfg := Default()
	if err := ApplyEnv(&cfg, []string{"CAPBOX_UPLOAD_BANDWIDTH_KBPS=1500", "CAPBOX_UPLOAD_DELETE_AFTER_UPLOAD=true"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Upload.BandwidthKbps != 1500 || !cfg.Upload.DeleteAfterUpload {
		t.Errorf("overrides not applied: %+v", cfg.Upload)
	}
}
