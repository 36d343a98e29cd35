package health

import (
	"fmt"
	"math"
	"slices"
	"time"

	"capbox/agent/fleet/wire"
)

// ThermalLevel is how close the SoC is to being slowed down.
type ThermalLevel string

// Thermal levels, coolest first.
const (
	ThermalNormal ThermalLevel = "normal"
	// ThermalWarm: within the margin of a zone's throttle point.
	ThermalWarm ThermalLevel = "warm"
	// ThermalThrottling: at or above the throttle point, or the firmware
	// says it is throttling for heat.
	ThermalThrottling ThermalLevel = "throttling"
)

func (l ThermalLevel) rank() int {
	switch l {
	case ThermalWarm:
		return 1
	case ThermalThrottling:
		return 2
	}
	return 0
}

func levelOfRank(r int) ThermalLevel {
	return [...]ThermalLevel{ThermalNormal, ThermalWarm, ThermalThrottling}[r]
}

// Thermal event types (evt/{type}); thermal_throttle is
// wire.EvtThermalThrottle.
const (
	EvtThermalWarning  = "thermal_warning"
	EvtThermalThrottle = wire.EvtThermalThrottle
	EvtThermalOK       = "thermal_ok"
)

// PartThermal is the part name for the thermal mood in State.Moods.
const PartThermal = "thermal"

// Mood is the thermal part's mood: warm is hungry (it wants cooling, the
// stream is still whole), throttling is sad (frames may be late or lost).
func (l ThermalLevel) Mood() wire.Mood {
	switch l {
	case ThermalWarm:
		return wire.MoodHungry
	case ThermalThrottling:
		return wire.MoodSad
	}
	return wire.MoodHappy
}

// ThermalAction is what the encoder should do at a level when
// encode.thermal_guard is on. The zero value and NoAction change nothing.
type ThermalAction struct {
	// BitrateFactor multiplies the configured bitrate (1: unchanged).
	BitrateFactor float64 `json:"bitrate_factor"`
	// MaxFPS caps the frame rate (0: no cap).
	MaxFPS int `json:"max_fps,omitempty"`
}

// NoAction changes nothing.
var NoAction = ThermalAction{BitrateFactor: 1}

// thermalActions is the guard's table: less work per second at each level
// (encode cost scales with pixels per second, and the bitrate with it).
var thermalActions = map[ThermalLevel]ThermalAction{
	ThermalNormal:     NoAction,
	ThermalWarm:       {BitrateFactor: 0.75, MaxFPS: 30},
	ThermalThrottling: {BitrateFactor: 0.5, MaxFPS: 25},
}

// Apply returns the bitrate (kb/s) and frame-rate cap to run with, given
// the configured ones (maxFPS 0: uncapped).
func (a ThermalAction) Apply(bitrateKbps, maxFPS int) (int, int) {
	f := a.BitrateFactor
	if f <= 0 || f > 1 {
		f = 1
	}
	br := int(math.Round(float64(bitrateKbps) * f))
	if a.MaxFPS > 0 && (maxFPS == 0 || maxFPS > a.MaxFPS) {
		maxFPS = a.MaxFPS
	}
	return br, maxFPS
}

// ZoneInput is one zone as the thermal state machine sees it.
type ZoneInput struct {
	Name  string  `json:"name"`
	TempC float64 `json:"temp_c"`
	// PointC is the throttle point (ThrottlePointC); 0 is unknown and the
	// zone is not judged.
	PointC float64 `json:"point_c,omitempty"`
	// PointFrom says how PointC was found.
	PointFrom string `json:"point_from,omitempty"`
}

// ThermalInput is one observation.
type ThermalInput struct {
	Zones []ZoneInput
	// Firmware names the firmware's own thermal throttling now ("" none):
	// the Raspberry Pi's soft_temp_limit, or throttled/arm_freq_capped
	// while there is no under-voltage (which throttles too, for another
	// reason).
	Firmware string
}

// ThermalOptions tune the state machine; zero values take the defaults.
type ThermalOptions struct {
	// MarginC: warm within this many degrees of the throttle point
	// (default 5).
	MarginC float64
	// HysteresisC: a level is left only this many degrees below the
	// threshold that entered it (default 3).
	HysteresisC float64
	// Hold: and only after staying there this long (default 60 s), one
	// level at a time, so the encoder is not flipped on every sample.
	Hold time.Duration
}

// Defaults for ThermalOptions.
const (
	DefaultMarginC     = 5.0
	DefaultHysteresisC = 3.0
	DefaultHold        = time.Minute
	// PiFirmwareThrottleC is where the Raspberry Pi firmware starts to
	// throttle the ARM cores ("Frequency management and thermal control",
	// raspberrypi.com: progressively from 80 C, ARM and GPU at 85 C). Some
	// firmware adds a soft limit (3B+: 60 C, temp_soft_limit); that shows
	// as the soft_temp_limit flag, not as a trip point.
	PiFirmwareThrottleC = 80.0
)

// ThermalStatus is the current judgement.
type ThermalStatus struct {
	Level ThermalLevel `json:"level"`
	// Since is when Level was entered (zero before the first observation).
	Since time.Time `json:"since"`
	// Zone, TempC and PointC are the zone closest to its throttle point.
	Zone   string  `json:"zone,omitempty"`
	TempC  float64 `json:"temp_c,omitempty"`
	PointC float64 `json:"point_c,omitempty"`
	// Firmware is ThermalInput.Firmware of the last observation.
	Firmware string `json:"firmware,omitempty"`
	// Action is the recommended action at this level; the supervisor
	// applies it only when encode.thermal_guard is on.
	Action ThermalAction `json:"action"`
	Zones  []ZoneInput   `json:"zones,omitempty"`
}

// Reason is the status in words, for logs and event messages.
func (s ThermalStatus) Reason() string {
	switch {
	case s.Firmware != "" && s.Level == ThermalThrottling:
		return "firmware reports " + s.Firmware
	case s.Zone != "":
		return fmt.Sprintf("%s at %.1f C, throttle point %.1f C", s.Zone, s.TempC, s.PointC)
	}
	return "no zone with a known throttle point"
}

// ThermalEvent is a change of level.
type ThermalEvent struct {
	// Type is EvtThermalWarning, EvtThermalThrottle or EvtThermalOK.
	Type   string
	From   ThermalLevel
	Status ThermalStatus
}

// WireEvent is the event for evt/{type}.
func (e ThermalEvent) WireEvent() wire.Event {
	s := e.Status
	data := map[string]any{
		"level": string(s.Level), "from": string(e.From),
		"bitrate_factor": s.Action.BitrateFactor,
	}
	if s.Action.MaxFPS > 0 {
		data["max_fps"] = s.Action.MaxFPS
	}
	if s.Zone != "" {
		data["zone"], data["temp_c"], data["point_c"] = s.Zone, s.TempC, s.PointC
	}
	if s.Firmware != "" {
		data["firmware"] = s.Firmware
	}
	return wire.Event{Header: wire.Header{TS: s.Since.UnixMilli()}, Type: e.Type, Part: PartThermal, Msg: s.Reason(), Data: data}
}

// Thermal is the state machine: it goes up a level as soon as an
// observation says so, and down one level at a time only after the
// observations stayed HysteresisC below the threshold for Hold. It is not
// safe for concurrent use; the Collector serialises it.
type Thermal struct {
	opts      ThermalOptions
	st        ThermalStatus
	coolSince time.Time // first observation of the current cool spell
}

// NewThermal makes a state machine at the normal level.
func NewThermal(opts ThermalOptions) *Thermal {
	if opts.MarginC <= 0 {
		opts.MarginC = DefaultMarginC
	}
	if opts.HysteresisC <= 0 {
		opts.HysteresisC = DefaultHysteresisC
	}
	if opts.Hold <= 0 {
		opts.Hold = DefaultHold
	}
	return &Thermal{opts: opts, st: ThermalStatus{Level: ThermalNormal, Action: NoAction}}
}

// Status is the current judgement.
func (t *Thermal) Status() ThermalStatus {
	st := t.st
	st.Zones = slices.Clone(t.st.Zones)
	return st
}

// Observe takes one observation at now and returns the event when the
// level changed.
func (t *Thermal) Observe(now time.Time, in ThermalInput) (ThermalEvent, bool) {
	if t.st.Since.IsZero() {
		t.st.Since = now
	}
	// The zone with the least headroom decides.
	headroom, known := math.Inf(1), false
	t.st.Zone, t.st.TempC, t.st.PointC = "", 0, 0
	for _, z := range in.Zones {
		if z.PointC <= 0 {
			continue
		}
		if h := z.PointC - z.TempC; h < headroom {
			headroom, known = h, true
			t.st.Zone, t.st.TempC, t.st.PointC = z.Name, z.TempC, z.PointC
		}
	}
	t.st.Firmware = in.Firmware
	t.st.Zones = append(t.st.Zones[:0], in.Zones...)

	target := ThermalNormal
	switch {
	case in.Firmware != "" || (known && headroom <= 0):
		target = ThermalThrottling
	case known && headroom <= t.opts.MarginC:
		target = ThermalWarm
	}
	cur := t.st.Level
	switch {
	case target.rank() > cur.rank():
		t.coolSince = time.Time{}
		return t.enter(now, target, cur), true
	case target.rank() == cur.rank():
		t.coolSince = time.Time{}
		return ThermalEvent{}, false
	}
	// Cooler: leave only well below the threshold, and only after Hold.
	var clear bool
	switch cur {
	case ThermalThrottling:
		clear = in.Firmware == "" && (!known || headroom >= t.opts.HysteresisC)
	case ThermalWarm:
		clear = !known || headroom >= t.opts.MarginC+t.opts.HysteresisC
	}
	if !clear {
		t.coolSince = time.Time{}
		return ThermalEvent{}, false
	}
	if t.coolSince.IsZero() {
		t.coolSince = now
	}
	if now.Sub(t.coolSince) < t.opts.Hold {
		return ThermalEvent{}, false
	}
	t.coolSince = now // the next level down needs its own Hold
	return t.enter(now, levelOfRank(cur.rank()-1), cur), true
}

func (t *Thermal) enter(now time.Time, l, from ThermalLevel) ThermalEvent {
	t.st.Level, t.st.Since, t.st.Action = l, now, thermalActions[l]
	typ := EvtThermalOK
	switch l {
	case ThermalWarm:
		typ = EvtThermalWarning
	case ThermalThrottling:
		typ = EvtThermalThrottle
	}
	return ThermalEvent{Type: typ, From: from, Status: t.Status()}
}

// thermalInput builds the state machine's view of a sys reading.
func thermalInput(r SysReading) ThermalInput {
	pi := r.Health.Throttle != nil
	piC := 0.0
	if pi {
		piC = PiFirmwareThrottleC
	}
	var in ThermalInput
	for _, z := range zoneNames(r.Health.Thermal) {
		p, from := ThrottlePointC(r.Trips[z.zone], piC)
		in.Zones = append(in.Zones, ZoneInput{Name: z.name, TempC: z.celsius, PointC: p, PointFrom: from})
	}
	th := r.Health.Throttle
	switch {
	case th.Active("soft_temp_limit"):
		in.Firmware = "soft_temp_limit"
	case th.Active("under_voltage"):
		// throttled/capped now, but for power: not a thermal state.
	case th.Active("throttled"):
		in.Firmware = "throttled"
	case th.Active("freq_capped"):
		in.Firmware = "arm_freq_capped"
	}
	return in
}
