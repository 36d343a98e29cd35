package pipelines

import (
	"capbox/internal/output"
	"capbox/internal/redact"
)

// The output URL parser is internal/output's: the config's validation uses
// it too and must not depend on the planner. These names keep the
// planner's own.
type (
	// Proto is an output protocol.
	Proto = output.Proto
	// Secret prints and marshals as "***"; Reveal hands it to an element.
	Secret = output.Secret
	// SecretRef is a secret given inline or as a file.
	SecretRef = output.SecretRef
	// OutputSpec is one destination, parsed from config.
	OutputSpec = output.Spec
)

// Output protocols.
const (
	ProtoSRT   = output.ProtoSRT
	ProtoRTMP  = output.ProtoRTMP
	ProtoRTMPS = output.ProtoRTMPS
	ProtoRTSP  = output.ProtoRTSP
)

// Redacted is what every secret looks like outside the box.
const Redacted = redact.Redacted

// Errors of an output's URL and secrets.
var (
	ErrSecretFile = output.ErrSecretFile
	ErrOutputURL  = output.ErrURL
)

// ParseOutput parses one configured output (output.Parse).
func ParseOutput(name, rawURL, key, keyFile string) (OutputSpec, error) {
	return output.Parse(name, rawURL, key, keyFile)
}
