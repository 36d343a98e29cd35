package web

import (
	"capbox/agent/config"
	"capbox/agent/fleet/wire"
)

// checkConfig applies the agent's own rules (agent/config) to a document
// before it is sent, so a config the box would refuse never reaches it.
func checkConfig(doc []byte) []wire.FieldError {
	_, err := config.Parse(doc)
	var out []wire.FieldError
	for _, fe := range config.AsErrors(err) {
		out = append(out, wire.FieldError{Path: fe.Path, Line: fe.Line, Msg: fe.Msg})
	}
	return out
}
