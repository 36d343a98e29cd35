package pipelines

import (
	"fmt"
	"strings"
)

// LaunchOptions change how the launch line is rendered.
type LaunchOptions struct {
	// RevealSecrets puts the real secrets in (for running the line by hand
	// on the box); otherwise they read ***.
	RevealSecrets bool
}

// branchQueue is what each tee branch starts with: bounded and leaky, so
// a slow output drops its own data instead of stalling the others.
const branchQueue = "queue leaky=downstream max-size-time=2000000000 max-size-bytes=0 max-size-buffers=0"

// Launch renders the plan as one gst-launch-1.0 command line for a shell
// (secrets as ***). It runs the same elements in one process, without the
// slate switch and per-output restarts that capboxd adds.
func Launch(p Plan) string {
	s, _ := LaunchWith(p, LaunchOptions{})
	return s
}

// LaunchWith renders the plan; revealing secrets may fail to read a file.
func LaunchWith(p Plan, opt LaunchOptions) (string, error) {
	var parts []string
	var err error
	chain := func(es []Element) string {
		toks := make([]string, 0, len(es))
		for _, e := range es {
			t, e2 := elementTokens(e, opt)
			if e2 != nil && err == nil {
				err = e2
			}
			toks = append(toks, t)
		}
		return strings.Join(toks, " ! ")
	}
	parts = append(parts, "gst-launch-1.0 -e")
	parts = append(parts, chain(p.Video.Chain)+" ! tee name=vt")
	parts = append(parts, chain(p.Audio.Chain)+" ! tee name=at")
	sinks := []Sink{}
	for _, o := range p.Outputs {
		if o.Spec.Enabled {
			sinks = append(sinks, o.Sink)
		}
	}
	if p.Recorder != nil {
		sinks = append(sinks, p.Recorder.Sink)
	}
	for i, s := range sinks {
		name := fmt.Sprintf("o%d", i)
		first := s.Chain[0]
		first.Name = name
		parts = append(parts, chain(append([]Element{first}, s.Chain[1:]...)))
		parts = append(parts, "vt. ! "+branchQueue+" ! "+link(chain(s.VideoParse), padRef(name, s.VideoPad)))
		if s.AudioPad == "" {
			parts = append(parts, "at. ! "+branchQueue+" ! fakesink sync=false")
		} else {
			parts = append(parts, "at. ! "+branchQueue+" ! "+link(chain(s.AudioParse), padRef(name, s.AudioPad)))
		}
	}
	return strings.Join(parts, "  "), err
}

// padRef links to a named element's pad; a request template name (with
// %) asks gst-launch for a new pad of that template.
func padRef(name, pad string) string {
	return name + "." + pad
}

// link joins a (possibly empty) chain to its destination.
func link(chain, to string) string {
	if chain == "" {
		return to
	}
	return chain + " ! " + to
}

func elementTokens(e Element, opt LaunchOptions) (string, error) {
	if e.Factory == "capsfilter" && e.Name == "" && len(e.Props) == 1 && e.Props[0].Name == "caps" {
		return shellQuote(e.Props[0].Value), nil
	}
	toks := []string{e.Factory}
	if e.Name != "" && e.Name != "sink" {
		toks = append(toks, "name="+e.Name)
	}
	var err error
	for _, p := range e.Props {
		v := p.Value
		if p.Secret != nil && opt.RevealSecrets {
			s, e2 := p.Secret.Resolve()
			if e2 != nil {
				err = e2
			}
			v = s.Reveal()
		}
		toks = append(toks, shellQuote(p.Name+"="+gstQuote(v, p.Literal)))
	}
	return strings.Join(toks, " "), err
}

// gstQuote quotes a property value for gst-launch's parser when needed.
func gstQuote(v string, literal bool) string {
	if v == "" {
		return `""`
	}
	if !literal && !strings.ContainsAny(v, " \t\"'\\!") {
		return v
	}
	if literal && !strings.ContainsAny(v, " \t\"'\\!,;=()<>[]{}") && !strings.Contains(v, "%") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// shellQuote makes one token safe for sh: single quotes around anything
// that is not plain.
func shellQuote(s string) string {
	plain := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.,/:+@", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
