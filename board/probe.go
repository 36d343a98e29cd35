package board

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// probeFile is where a snapshot keeps the V4L2 answers, relative to its root.
const probeFile = "/capbox-probes.json"

// ProbeRecord is everything detection asks one V4L2 node, as data: the
// live probe fills it from ioctls, a snapshot stores it as JSON, and
// `detect --sysroot` replays it. Errors are kept as errno names
// ("ENOLINK") so a replay maps them exactly like the live run.
type ProbeRecord struct {
	Device     string      `json:"device"`
	OpenErr    string      `json:"open_err,omitempty"`
	Cap        *Capability `json:"cap,omitempty"`
	CapErr     string      `json:"cap_err,omitempty"`
	BufType    uint32      `json:"buf_type,omitempty"` // queue the formats were enumerated on
	Formats    []Format    `json:"formats,omitempty"`
	FormatsErr string      `json:"formats_err,omitempty"`
	// EncodedFormats are the CAPTURE-queue formats of an M2M node: what
	// an encoder produces (H264, HEVC, FWHT...).
	EncodedFormats []string    `json:"encoded_formats,omitempty"`
	Inputs         []InputInfo `json:"inputs,omitempty"`
	InputsErr      string      `json:"inputs_err,omitempty"`
	CurrentInput   *int        `json:"current_input,omitempty"`
	DVTimings      *DVTimings  `json:"dv_timings,omitempty"`
	DVTimingsErr   string      `json:"dv_timings_err,omitempty"`
	EDIDBlocks     *int        `json:"edid_blocks,omitempty"`
	EDIDErr        string      `json:"edid_err,omitempty"`
	TimedOut       bool        `json:"timed_out,omitempty"`
}

// errOf turns a recorded errno name back into an error ("" is nil).
func errOf(name string) error {
	if name == "" {
		return nil
	}
	if e, ok := errnoByName(name); ok {
		return e
	}
	return fmt.Errorf("%s", name)
}

// probeTimeout bounds the time one device may take to answer all probes.
const probeTimeout = 3 * time.Second

// probeDevice asks one node everything detection needs. It runs the
// ioctls in a goroutine and gives up after the bound: a driver stuck in an
// ioctl must not hold up detection (the goroutine ends when the ioctl does).
func probeDevice(ctx context.Context, open opener, dev string, timeout time.Duration) ProbeRecord {
	done := make(chan ProbeRecord, 1)
	go func() { done <- probeNow(open, dev) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r
	case <-t.C:
	case <-ctx.Done():
	}
	return ProbeRecord{Device: dev, TimedOut: true}
}

func probeNow(open opener, dev string) ProbeRecord {
	r := ProbeRecord{Device: dev}
	d, err := open(dev)
	if err != nil {
		r.OpenErr = errnoName(err)
		return r
	}
	defer d.Close()
	c, err := d.QueryCap()
	if err != nil {
		r.CapErr = errnoName(err)
		return r
	}
	r.Cap = &c
	caps := c.Caps()
	switch {
	case caps&(capVideoM2M|capVideoM2MMPlane) != 0:
		// M2M: OUTPUT queue takes raw frames, CAPTURE queue gives the codec.
		capType, outType := uint32(bufTypeVideoCapture), uint32(bufTypeVideoOutput)
		if caps&capVideoM2MMPlane != 0 {
			capType, outType = bufTypeVideoCaptureMPlane, bufTypeVideoOutputMPlane
		}
		enc, err := d.EnumFormats(capType)
		if err != nil {
			r.FormatsErr = errnoName(err)
		}
		for _, f := range enc {
			r.EncodedFormats = append(r.EncodedFormats, f.FourCC)
		}
		raw, _ := d.EnumFormats(outType)
		r.BufType = outType
		for _, f := range raw {
			r.Formats = append(r.Formats, Format{FourCC: f.FourCC, Compressed: f.Flags&fmtFlagCompressed != 0})
		}
	case caps&(capVideoCapture|capVideoCaptureMPlane) != 0:
		bt := uint32(bufTypeVideoCapture)
		if caps&capVideoCapture == 0 {
			bt = bufTypeVideoCaptureMPlane
		}
		r.BufType = bt
		fmts, err := d.EnumFormats(bt)
		if err != nil {
			r.FormatsErr = errnoName(err)
		}
		for _, f := range fmts {
			ff := Format{FourCC: f.FourCC, Compressed: f.Flags&fmtFlagCompressed != 0}
			sizes, _ := d.EnumFrameSizes(fourccValue(f.FourCC))
			for _, s := range sizes {
				s.FPS, _ = d.EnumFrameIntervals(fourccValue(f.FourCC), uint32(s.Width), uint32(s.Height))
				ff.Sizes = append(ff.Sizes, s)
			}
			r.Formats = append(r.Formats, ff)
		}
		ins, err := d.EnumInputs()
		if err != nil {
			r.InputsErr = errnoName(err)
		}
		r.Inputs = ins
		if cur, err := d.Input(); err == nil {
			r.CurrentInput = &cur
		}
		t, err := d.QueryDVTimings()
		if err != nil {
			r.DVTimingsErr = errnoName(err)
		} else {
			r.DVTimings = &t
		}
		n, err := d.EDIDBlocks(0)
		if err != nil {
			r.EDIDErr = errnoName(err)
		} else {
			r.EDIDBlocks = &n
		}
	}
	return r
}

// readProbeFile loads a snapshot's recorded answers, keyed by device.
func readProbeFile(f fsys) (map[string]ProbeRecord, error) {
	b, err := os.ReadFile(f.host(probeFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var recs []ProbeRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("%s: %w", probeFile, err)
	}
	m := make(map[string]ProbeRecord, len(recs))
	for _, r := range recs {
		m[r.Device] = r
	}
	return m, nil
}

func writeProbeFile(dir string, recs map[string]ProbeRecord) error {
	list := make([]ProbeRecord, 0, len(recs))
	for _, r := range recs {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Device < list[j].Device })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(newFsys(dir).host(probeFile), append(b, '\n'), 0o644)
}

// dvSupported reports whether the node answered QUERY_DV_TIMINGS with a
// timing or a signal errno (an HDMI receiver), rather than ENOTTY/EINVAL.
func (r ProbeRecord) dvSupported() bool {
	if r.DVTimings != nil {
		return true
	}
	switch errOf(r.DVTimingsErr) {
	case unix.ENOLINK, unix.ENOLCK, unix.ERANGE:
		return true
	}
	return false
}

// signal is the signal state the record shows.
func (r ProbeRecord) signal() Signal {
	if r.DVTimings != nil {
		s := r.DVTimings.Signal()
		if st := r.inputStatus(); st != SignalUnknown && st != SignalLocked {
			// Input status wins over a stale timing: the receiver says
			// there is nothing to lock to.
			return Signal{State: st}
		}
		return s
	}
	if r.dvSupported() {
		return Signal{State: SignalFromError(deviceError("VIDIOC_QUERY_DV_TIMINGS", r.Device, errOf(r.DVTimingsErr)))}
	}
	return Signal{State: r.inputStatus()}
}

// inputStatus maps VIDIOC_ENUMINPUT status bits of the current input.
func (r ProbeRecord) inputStatus() SignalState {
	if r.CurrentInput == nil {
		return SignalUnknown
	}
	for _, in := range r.Inputs {
		if int(in.Index) == *r.CurrentInput {
			return statusToSignal(in.Status)
		}
	}
	return SignalUnknown
}

// statusToSignal reads V4L2_IN_ST_* bits. A zero status proves nothing
// (UVC reports 0 whatever the dongle sees), so it stays unknown.
func statusToSignal(status uint32) SignalState {
	switch {
	case status&(inStNoPower|inStNoSignal) != 0:
		return SignalNone
	case status&(inStNoSync|inStNoHLock|inStNoVLock) != 0:
		return SignalNoLock
	}
	return SignalUnknown
}
