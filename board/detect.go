package board

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"time"
)

// Options tell Detect where to look and what config pins.
type Options struct {
	// Root is "" or "/" for the live system, else a fixture or snapshot
	// folder whose /proc, /sys and /dev are read instead.
	Root string
	// Elements answers whether a GStreamer element exists. Nil means
	// "judge from the board's evidence" (for --sysroot: this machine's
	// registry says nothing about the board).
	Elements ElementChecker
	Logger   *slog.Logger
	// PinVideo is config capture.video: auto, a device or stable path,
	// test or none. PinEncoder is encode.encoder: auto or an element.
	PinVideo   string
	PinEncoder string
	// ProbeTimeout bounds the time one device may take (default 3 s).
	ProbeTimeout time.Duration

	open   opener    // nil: real ioctls on a live system, none otherwise
	rec    *recorder // set by Snapshot
	probes *map[string]ProbeRecord
}

// Evidence is the ElementChecker for a board that is not this machine:
// every encoder detection lists was found from the board's own device
// nodes, and the software encoders ship with every capbox image, so an
// element counts as present unless it is a legacy OMX element (nothing in
// /proc or /sys proves gst-omx is installed).
type Evidence struct{}

// HasElement implements ElementChecker.
func (Evidence) HasElement(name string) bool { return name != "omxh264enc" }

// Detect finds the board, its capture inputs, audio inputs and encoders,
// and chooses. It returns what it could find plus every error joined;
// each device gets at most Options.ProbeTimeout.
func Detect(ctx context.Context, opts Options) (Detection, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = probeTimeout
	}
	f := newFsys(opts.Root)
	f.rec = opts.rec
	var errs []error
	d := Detection{VideoInputs: []VideoInput{}, AudioInputs: []AudioInput{}, Encoders: []Encoder{}}

	b, prof, err := identify(f)
	if err != nil {
		errs = append(errs, err)
	}
	d.Board = b

	nodes, err := listNodes(f)
	if err != nil && !(len(nodes) == 0 && isNotExist(err)) {
		errs = append(errs, err)
	}
	// Probe answers: live ioctls, or a snapshot's recorded ones.
	var recs map[string]ProbeRecord
	recorded := false
	switch {
	case opts.open != nil:
		recs = probeAll(ctx, opts.open, nodes, opts.ProbeTimeout)
	case f.live():
		recs = probeAll(ctx, openNode, nodes, opts.ProbeTimeout)
	default:
		recs, err = readProbeFile(f)
		if err != nil {
			errs = append(errs, err)
		}
		recorded = true
	}
	if opts.probes != nil {
		*opts.probes = recs
	}

	bridges := boundBridges(f)
	byDev := map[string]sysNode{}
	roles := map[string]nodeRole{}
	known := map[string]knownNode{}
	for _, n := range nodes {
		byDev[n.dev] = n
		var rec *ProbeRecord
		if r, ok := recs[n.dev]; ok {
			rec = &r
			if err := r.err(); err != nil {
				errs = append(errs, err)
			}
		}
		role, k := roleOf(n, rec)
		roles[n.dev], known[n.dev] = role, k
		if role == roleInput {
			d.VideoInputs = append(d.VideoInputs, videoInput(n, k, rec, bridges, recorded))
		}
	}

	cards, err := listSoundCards(f)
	if err != nil {
		errs = append(errs, err)
	}
	d.AudioInputs = append(d.AudioInputs, audioInputs(cards, d.VideoInputs, byDev, bridges)...)

	m2m := m2mEncoders(nodes, roles, known, recs)
	d.Encoders = append(d.Encoders, m2m...)
	d.Encoders = append(d.Encoders, otherEncoders(f, b, m2m)...)
	d.Encoders = append(d.Encoders, softwareEncoders...)
	sortEncoders(d.Encoders)
	elems := opts.Elements
	if elems == nil {
		elems = Evidence{}
	}
	for i := range d.Encoders {
		d.Encoders[i].Available = elems.HasElement(d.Encoders[i].Element)
	}

	if err := choose(&d, prof, opts.PinVideo, opts.PinEncoder); err != nil {
		errs = append(errs, err)
	}
	for _, e := range errs {
		d.Errors = append(d.Errors, e.Error())
	}
	log.Debug("detected", "board", d.Board.ID, "inputs", len(d.VideoInputs), "encoders", len(d.Encoders), "chosen", d.Chosen.VideoInput, "encoder", d.Chosen.Encoder)
	return d, joinErrs(errs)
}

// err is the first failure a probe record holds (signal errnos are states,
// not failures).
func (r ProbeRecord) err() error {
	switch {
	case r.TimedOut:
		return fmt.Errorf("%s: %w", r.Device, ErrTimeout)
	case r.OpenErr != "":
		return deviceError("open", r.Device, errOf(r.OpenErr))
	case r.CapErr != "":
		return deviceError("VIDIOC_QUERYCAP", r.Device, errOf(r.CapErr))
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// MarshalDetection is the JSON `capboxd detect --json` prints.
func MarshalDetection(d Detection) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
