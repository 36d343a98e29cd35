package gst

/*
#include "capbox.h"
#include <stdlib.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/go-gst/go-gst/gst"

	"capbox/pipelines"
)

// Errors naming what went wrong while building.
var (
	ErrMissingElement = errors.New("GStreamer element not installed")
	ErrNoProperty     = errors.New("element has no such property")
	ErrLink           = errors.New("cannot link elements")
)

// makeElement creates one element and sets its properties. Values are
// never parsed as a pipeline description: serialized values go through
// gst_util_set_object_arg (typed by the property), literal strings and
// secrets are set as plain strings.
func makeElement(e pipelines.Element) (*gst.Element, []string, error) {
	var el *gst.Element
	var err error
	if e.Name != "" {
		el, err = gst.NewElementWithName(e.Factory, e.Name)
	} else {
		el, err = gst.NewElement(e.Factory)
	}
	if err != nil || el == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrMissingElement, e.Factory)
	}
	var secrets []string
	for _, p := range e.Props {
		if _, err := el.GetPropertyType(p.Name); err != nil {
			return nil, nil, fmt.Errorf("%w: %s.%s", ErrNoProperty, e.Factory, p.Name)
		}
		switch {
		case p.Secret != nil:
			s, err := p.Secret.Resolve()
			if err != nil {
				return nil, nil, fmt.Errorf("%s.%s: %w", e.Factory, p.Name, err)
			}
			if err := el.SetProperty(p.Name, s.Reveal()); err != nil {
				return nil, nil, fmt.Errorf("%s.%s: cannot set", e.Factory, p.Name)
			}
			secrets = append(secrets, s.Reveal())
		case p.Literal:
			if err := el.SetProperty(p.Name, p.Value); err != nil {
				return nil, nil, fmt.Errorf("%s.%s: %w", e.Factory, p.Name, err)
			}
		default:
			el.SetArg(p.Name, p.Value)
		}
	}
	return el, secrets, nil
}

// addChain adds a linear chain to the pipeline and links it.
func addChain(p *gst.Pipeline, chain []pipelines.Element) ([]*gst.Element, []string, error) {
	els := make([]*gst.Element, 0, len(chain))
	var secrets []string
	for _, e := range chain {
		el, s, err := makeElement(e)
		if err != nil {
			return nil, nil, err
		}
		secrets = append(secrets, s...)
		if err := p.Add(el); err != nil {
			return nil, nil, fmt.Errorf("add %s: %w", e.Factory, err)
		}
		if n := len(els); n > 0 {
			if err := els[n-1].Link(el); err != nil {
				return nil, nil, fmt.Errorf("%w: %s ! %s", ErrLink, chain[n-1].Factory, e.Factory)
			}
		}
		els = append(els, el)
	}
	return els, secrets, nil
}

// redactor replaces secrets in messages that GStreamer elements produce
// (an error may quote a location or stream name).
type redactor []string

func (r redactor) clean(s string) string {
	for _, secret := range r {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, pipelines.Redacted)
		}
	}
	return s
}

// propString reads a numeric or boolean property back, serialized.
func propString(el *gst.Element, name string) (string, bool) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	cs := C.capbox_prop_string(celem(el), cname)
	if cs == nil {
		return "", false
	}
	defer C.g_free(C.gpointer(cs))
	return C.GoString(cs), true
}
