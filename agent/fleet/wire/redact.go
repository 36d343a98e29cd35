package wire

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/goccy/go-yaml"

	"capbox/internal/redact"
)

// RedactDoc returns a config document with its secrets replaced by ***:
// output URLs (internal/redact's rule, the box's), stream keys, the fleet
// password. Paths to secret files stay.
func RedactDoc(doc json.RawMessage) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("config document: %w", err)
	}
	if outs, ok := m["outputs"].([]any); ok {
		for _, o := range outs {
			om, ok := o.(map[string]any)
			if !ok {
				continue
			}
			if u, ok := om["url"].(string); ok {
				om["url"] = redact.URL(u)
			}
			if _, ok := om["key"]; ok {
				om["key"] = redact.Redacted
			}
		}
	}
	if f, ok := m["fleet"].(map[string]any); ok {
		if _, ok := f["password"]; ok {
			f["password"] = redact.Redacted
		}
	}
	return json.Marshal(m)
}

// ErrDocTooLarge is a config document that does not fit a payload.
var ErrDocTooLarge = errors.New("config document over the payload limit")

// DocFromYAML turns a config file (YAML or JSON) into the JSON document
// config/desired carries. It keeps only what the file says (the box fills
// in its defaults) and does not validate: the box does, and reports every
// problem by path.
func DocFromYAML(data []byte) (json.RawMessage, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if v == nil {
		v = map[string]any{}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("config: the document is not a mapping")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("config: not representable as JSON: %w", err)
	}
	if len(b) > MaxPayload-256 {
		return nil, fmt.Errorf("%w: %d bytes as JSON, limit %d", ErrDocTooLarge, len(b), MaxPayload)
	}
	return b, nil
}
