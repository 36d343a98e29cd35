package result

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Name: "a", Scenario: 1, Status: Pass, Timings: map[string]float64{"lock": 12.5}, DurationMS: 40},
		{Name: "b", Scenario: 2, Status: Fail, Reasons: []string{"no dmabuf import in the log"}},
		{Name: "c", Scenario: 7, Status: NotImplemented, Reasons: []string{"capboxd run: not built yet"}},
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Complete || len(s.Records) != 3 {
		t.Fatalf("complete=%v records=%d, want true and 3", s.Complete, len(s.Records))
	}
	if got := s.Count(); got != (Counts{Passed: 1, Failed: 1, NotImplemented: 1}) {
		t.Fatalf("counts %+v", got)
	}
	var out bytes.Buffer
	s.Report(&out)
	for _, want := range []string{"lock=13ms", "failed:\n  b: no dmabuf import in the log", "not implemented in capboxd yet:\n  c: capboxd run", "1 passed, 2 failed\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVerdict(t *testing.T) {
	done := `{"name":"done"}` + "\n"
	pass := `{"name":"a","status":"pass","duration_ms":1}` + "\n"
	cases := []struct {
		name, in string
		ok       bool
		why      string
	}{
		{"all pass", pass + done, true, ""},
		{"nothing ran", done, false, "no scenario result"},
		{"cut short", pass, false, "did not finish"},
		{"empty file", "", false, "no scenario result"},
		{"a failure", pass + `{"name":"b","status":"fail"}` + "\n" + done, false, "1 scenario(s) failed"},
		{"not implemented", pass + `{"name":"b","status":"not_implemented"}` + "\n" + done, false, "not implemented"},
		{"unknown status is not a pass", `{"name":"b","status":"skipped"}` + "\n" + done, false, "no scenario result"},
	}
	for _, c := range cases {
		s, _ := Read(strings.NewReader(c.in))
		err := s.Verdict()
		if (err == nil) != c.ok {
			t.Errorf("%s: verdict %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: verdict %q lacks %q", c.name, err, c.why)
		}
	}
}

func TestReadKeepsGoodLines(t *testing.T) {
	in := `{"name":"a","status":"pass"}` + "\nnot json\n" + `{"name":"done"}` + "\n"
	s, err := Read(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming line 2, got %v", err)
	}
	if len(s.Records) != 1 || !s.Complete {
		t.Fatalf("good lines lost: %+v", s)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(`{"name":"a","status":"pass","timings_ms":{"x":1}}` + "\n" + `{"name":"done"}`)
	f.Add("garbage\n\n{")
	f.Fuzz(func(t *testing.T, in string) {
		s, _ := Read(strings.NewReader(in))
		if s.Verdict() == nil && len(s.Records) == 0 {
			t.Fatal("an empty suite passed")
		}
		var out bytes.Buffer
		s.Report(&out)
	})
}
