package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Inbound payload problems. Each maps to a response code.
var (
	ErrTooLarge    = errors.New("payload larger than 16 KiB")
	ErrInvalidUTF8 = errors.New("payload is not valid UTF-8")
	ErrTooDeep     = errors.New("payload nested too deeply")
	ErrNotJSON     = errors.New("payload is not a JSON object")
	ErrBadField    = errors.New("payload has a bad field")
	ErrVersion     = errors.New("unknown schema version")
	ErrBadArgs     = errors.New("bad arguments")
)

// CodeFor maps a decode error to a response code.
func CodeFor(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrVersion):
		return CodeVersion
	case errors.Is(err, ErrBadArgs):
		return CodeBadArgs
	}
	return CodeBadRequest
}

// CheckPayload applies the checks every inbound payload gets before it is
// decoded: size, UTF-8 (encoding/json would silently replace bad bytes),
// nesting depth, and JSON syntax with a single top-level object.
func CheckPayload(b []byte) error {
	if len(b) > MaxPayload {
		return ErrTooLarge
	}
	if !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	if jsonDepth(b) > maxDepth {
		return ErrTooDeep
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return ErrNotJSON
	}
	return nil
}

// jsonDepth is the deepest bracket nesting outside strings. It does not
// validate; json.Valid does that after.
func jsonDepth(b []byte) int {
	depth, best := 0, 0
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			best = max(best, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return best
}

// decodeStrict decodes one JSON object into v: unknown keys and trailing
// data are errors. Messages name the field, never echo values.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", ErrBadField, jsonMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the object", ErrBadField)
	}
	return nil
}

// jsonMessage describes a decode error without the offending value.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("want %s, got %s", te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown key " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "malformed"
}

// requestIDPattern bounds the ids the box echoes back.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// DecodeRequest parses a cmd/req payload. On error it still returns the
// request id when one can be recovered, so the error can be answered.
func DecodeRequest(b []byte) (CmdRequest, error) {
	var req CmdRequest
	if err := CheckPayload(b); err != nil {
		return CmdRequest{ID: recoverID(b)}, err
	}
	if err := decodeStrict(b, &req); err != nil {
		return CmdRequest{ID: recoverID(b)}, err
	}
	if !requestIDPattern.MatchString(req.ID) {
		return CmdRequest{}, fmt.Errorf("%w: id: want 1..64 of [A-Za-z0-9._:-]", ErrBadField)
	}
	if req.V != SchemaVersion {
		return CmdRequest{ID: req.ID}, fmt.Errorf("%w: v=%d, this box speaks %d", ErrVersion, req.V, SchemaVersion)
	}
	if req.Exp < 0 {
		return CmdRequest{ID: req.ID}, fmt.Errorf("%w: exp: want unix milliseconds", ErrBadField)
	}
	if a := bytes.TrimSpace(req.Args); len(a) > 0 && !bytes.Equal(a, []byte("null")) && a[0] != '{' {
		return CmdRequest{ID: req.ID}, fmt.Errorf("%w: args: want an object", ErrBadArgs)
	}
	return req, nil
}

// recoverID pulls a usable id out of a payload that failed to decode, so
// the error is addressable; only ids that pass the id pattern are used.
func recoverID(b []byte) string {
	if len(b) > MaxPayload || !utf8.Valid(b) || jsonDepth(b) > maxDepth {
		return ""
	}
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(probe.ID, &id) != nil || !requestIDPattern.MatchString(id) {
		return ""
	}
	return id
}

// MaxConfigVersion is the largest config/desired version: 2^53 - 1, the
// largest integer every JSON reader (a browser's too) keeps exactly, and
// far from int64's end, so the next version never overflows.
const MaxConfigVersion = 1<<53 - 1

// DecodeDesired parses a config/desired payload. The config itself is
// checked by the agent's config parser afterwards.
func DecodeDesired(b []byte) (ConfigDesired, error) {
	var d ConfigDesired
	if err := CheckPayload(b); err != nil {
		return d, err
	}
	if err := decodeStrict(b, &d); err != nil {
		return ConfigDesired{}, err
	}
	if d.V != SchemaVersion {
		return ConfigDesired{}, fmt.Errorf("%w: v=%d, this box speaks %d", ErrVersion, d.V, SchemaVersion)
	}
	if d.Version < 1 || d.Version > MaxConfigVersion {
		return ConfigDesired{}, fmt.Errorf("%w: version: want 1..%d", ErrBadField, int64(MaxConfigVersion))
	}
	if c := bytes.TrimSpace(d.Config); len(c) == 0 || c[0] != '{' {
		return ConfigDesired{}, fmt.Errorf("%w: config: want an object", ErrBadField)
	}
	return d, nil
}

// DecodeStatus parses a status payload leniently (any box, any version 1
// writer); readers use it for ordering and online state.
func DecodeStatus(b []byte) (Status, error) {
	var s Status
	if err := CheckPayload(b); err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("%w: %s", ErrBadField, jsonMessage(err))
	}
	if s.V != SchemaVersion {
		return Status{}, fmt.Errorf("%w: v=%d", ErrVersion, s.V)
	}
	return s, nil
}
