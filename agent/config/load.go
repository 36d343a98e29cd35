package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MaxSize bounds a config document; a real one is a few hundred bytes.
const MaxSize = 64 << 10

// FieldError is one problem with the document, at a path such as
// "outputs[0].url" and, when it came from a file, a line.
type FieldError struct {
	Path string `json:"path"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"msg"`
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one document.
type Errors []FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return "invalid config: " + strings.Join(msgs, "; ")
}

// AsErrors extracts the field errors from err, or wraps a plain error.
func AsErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	if err == nil {
		return nil
	}
	return Errors{{Msg: err.Error()}}
}

// Parse reads one YAML (or JSON) document over the defaults and validates
// it. It neither reads the environment nor secret files.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	if err := decodeStrict(data, &cfg); err != nil {
		return Config{}, err
	}
	if es := cfg.Validate(); len(es) > 0 {
		return Config{}, es
	}
	return cfg, nil
}

// LoadBytes is Load for a document already in memory (config/desired):
// defaults, the document, CAPBOX_* overrides, validation.
func LoadBytes(data []byte, environ []string) (Config, error) {
	cfg := Default()
	if err := decodeStrict(data, &cfg); err != nil {
		return Config{}, err
	}
	if err := ApplyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	if es := cfg.Validate(); len(es) > 0 {
		return Config{}, es
	}
	return cfg, nil
}

// Load builds the running config: defaults, then the file at path (none
// when path is empty or, for the default path, absent), then CAPBOX_*
// environment overrides, then validation.
func Load(path string, mustExist bool, environ []string) (Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = readLimited(path)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrNotExist) && !mustExist:
			data = nil
		default:
			return Config{}, err
		}
	}
	return LoadBytes(data, environ)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxSize)
	}
	return data, nil
}

// decodeStrict decodes data over cfg. Unknown keys are all reported, each
// with its path and line; then type errors.
func decodeStrict(data []byte, cfg *Config) error {
	if len(data) > MaxSize {
		return Errors{{Msg: fmt.Sprintf("document larger than %d bytes", MaxSize)}}
	}
	if !utf8.Valid(data) {
		return Errors{{Msg: "document is not valid UTF-8"}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return Errors{{Msg: yamlMessage(err)}}
	}
	if len(file.Docs) != 1 {
		return Errors{{Msg: fmt.Sprintf("want one YAML document, got %d", len(file.Docs))}}
	}
	body := file.Docs[0].Body
	if body == nil {
		return nil
	}
	if depth := nodeDepth(body, 0); depth > maxDepth {
		return Errors{{Msg: fmt.Sprintf("document nested deeper than %d levels", maxDepth)}}
	}
	var es Errors
	checkKeys(body, reflect.TypeOf(Config{}), "", &es)
	if len(es) > 0 {
		return es
	}
	if err := yaml.UnmarshalWithOptions(data, cfg, yaml.Strict()); err != nil {
		return Errors{{Msg: yamlMessage(err)}}
	}
	return nil
}

// maxDepth bounds nesting: the schema is four levels deep, so anything much
// deeper is hostile or broken and is refused before decoding.
const maxDepth = 16

func nodeDepth(n ast.Node, d int) int {
	if d > maxDepth {
		return d
	}
	best := d
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, v := range n.Values {
			best = max(best, nodeDepth(v.Value, d+1))
		}
	case *ast.MappingValueNode:
		best = max(best, nodeDepth(n.Value, d+1))
	case *ast.SequenceNode:
		for _, v := range n.Values {
			best = max(best, nodeDepth(v, d+1))
		}
	case *ast.TagNode:
		best = max(best, nodeDepth(n.Value, d))
	case *ast.AnchorNode:
		best = max(best, nodeDepth(n.Value, d))
	}
	return best
}

// yamlMessage turns a go-yaml error into one line: "line N: message".
func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Sprintf("line %d: %s", tk.Position.Line, ye.GetMessage())
		}
		return ye.GetMessage()
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// checkKeys walks a mapping node against a struct type and records every
// key the struct does not have.
func checkKeys(n ast.Node, t reflect.Type, path string, es *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := n.(type) {
	case *ast.TagNode:
		checkKeys(n.Value, t, path, es)
	case *ast.AnchorNode:
		checkKeys(n.Value, t, path, es)
	case *ast.MappingValueNode:
		checkMapping([]*ast.MappingValueNode{n}, t, path, es)
	case *ast.MappingNode:
		checkMapping(n.Values, t, path, es)
	case *ast.SequenceNode:
		if t.Kind() != reflect.Slice {
			return // a type error, reported by the decoder
		}
		for i, v := range n.Values {
			checkKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), es)
		}
	}
}

func checkMapping(values []*ast.MappingValueNode, t reflect.Type, path string, es *Errors) {
	if t.Kind() != reflect.Struct {
		return
	}
	for _, mv := range values {
		key := mv.Key.String()
		if k, err := strconv.Unquote(key); err == nil {
			key = k
		}
		p := key
		if path != "" {
			p = path + "." + key
		}
		f, ok := fieldByTag(t, key)
		if !ok {
			line := 0
			if tk := mv.Key.GetToken(); tk != nil && tk.Position != nil {
				line = tk.Position.Line
			}
			*es = append(*es, FieldError{Path: p, Line: line, Msg: fmt.Sprintf("unknown key %q", key)})
			continue
		}
		checkKeys(mv.Value, f.Type, p, es)
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
