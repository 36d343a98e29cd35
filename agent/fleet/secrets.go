package fleet

import (
	"bytes"
	"encoding/json"
	"sort"
	"sync"

	"capbox/internal/redact"
)

// minSecretLen is the shortest value the scrubber hunts for: a short RTMP
// stream name like "live" would mangle ordinary text (output names, app
// paths). Real stream keys, SRT passphrases (>= 10 bytes) and passwords are
// longer; shorter ones are still redacted where they are structured.
const minSecretLen = 8

// scrubber is the last line of defence: every outgoing payload is searched
// for every secret the link knows (as raw text and as JSON string text) and
// each hit is replaced by ***. The structured redaction happens first; this
// catches what slips through (an error message quoting a URL, say).
type scrubber struct {
	mu      sync.Mutex
	secrets map[string]struct{}
}

func (s *scrubber) add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets == nil {
		s.secrets = map[string]struct{}{}
	}
	for _, v := range secrets {
		if len(v) >= minSecretLen && v != redact.Redacted {
			s.secrets[v] = struct{}{}
		}
	}
}

// scrub returns b with every known secret replaced, and whether any was.
func (s *scrubber) scrub(b []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hit := false
	// Longest first, so a secret containing another is replaced whole.
	list := make([]string, 0, len(s.secrets))
	for v := range s.secrets {
		list = append(list, v)
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	for _, v := range list {
		forms := [][]byte{[]byte(v)}
		if q, err := json.Marshal(v); err == nil {
			if e := q[1 : len(q)-1]; !bytes.Equal(e, forms[0]) {
				forms = append(forms, e)
			}
		}
		for _, f := range forms {
			if bytes.Contains(b, f) {
				b = bytes.ReplaceAll(b, f, []byte(redact.Redacted))
				hit = true
			}
		}
	}
	return b, hit
}

// docSecrets lists the secrets of a config document that may not even be
// valid (a rejected desired config), walking it as plain JSON.
func docSecrets(doc json.RawMessage) []string {
	var m map[string]any
	if json.Unmarshal(doc, &m) != nil {
		return nil
	}
	var out []string
	if outs, ok := m["outputs"].([]any); ok {
		for _, o := range outs {
			om, ok := o.(map[string]any)
			if !ok {
				continue
			}
			if k, ok := om["key"].(string); ok {
				out = append(out, k)
			}
			if u, ok := om["url"].(string); ok {
				out = append(out, redact.URLSecrets(u)...)
			}
		}
	}
	if f, ok := m["fleet"].(map[string]any); ok {
		if p, ok := f["password"].(string); ok {
			out = append(out, p)
		}
	}
	return out
}
