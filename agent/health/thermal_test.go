package health

import (
	"testing"
	"testing/synctest"
	"time"
)

func zoneAt(temp float64) ThermalInput {
	return ThermalInput{Zones: []ZoneInput{{Name: "cpu-thermal", TempC: temp, PointC: 80}}}
}

// observeEvery feeds one temperature per step, sleeping step between
// observations on the bubble's clock, and returns the events.
func observeEvery(th *Thermal, step time.Duration, temps ...float64) []ThermalEvent {
	var evs []ThermalEvent
	for _, c := range temps {
		if ev, ok := th.Observe(time.Now(), zoneAt(c)); ok {
			evs = append(evs, ev)
		}
		time.Sleep(step)
	}
	return evs
}

func types(evs []ThermalEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestThermalUpImmediatelyDownAfterHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := NewThermal(ThermalOptions{}) // margin 5, hysteresis 3, hold 60 s
		start := time.Now()
		// 70 normal, 75 warm (80-5), 80 throttling, all at once.
		evs := observeEvery(th, 10*time.Second, 70, 75, 80)
		if got := types(evs); !equalStrings(got, []string{EvtThermalWarning, EvtThermalThrottle}) {
			t.Fatalf("events %v", got)
		}
		if evs[0].Status.Action != (ThermalAction{BitrateFactor: 0.75, MaxFPS: 30}) ||
			evs[1].Status.Action != (ThermalAction{BitrateFactor: 0.5, MaxFPS: 25}) {
			t.Fatalf("actions %+v %+v", evs[0].Status.Action, evs[1].Status.Action)
		}
		if evs[1].Status.Since.Sub(start) != 20*time.Second || evs[1].From != ThermalWarm {
			t.Fatalf("throttle event %+v", evs[1])
		}
		// 78 C is below the point but within hysteresis (80-3=77): stays
		// throttling however long it lasts.
		if evs := observeEvery(th, 10*time.Second, 78, 78, 78, 78, 78, 78, 78, 78); len(evs) != 0 {
			t.Fatalf("left throttling within hysteresis: %v", types(evs))
		}
		// 76 C for 60 s: down one level to warm, not further (76 > 80-5-3).
		t0 := time.Now()
		evs = observeEvery(th, 10*time.Second, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76)
		if got := types(evs); !equalStrings(got, []string{EvtThermalWarning}) {
			t.Fatalf("events %v", got)
		}
		if d := evs[0].Status.Since.Sub(t0); d != 60*time.Second {
			t.Fatalf("left throttling after %v, want the 60 s hold", d)
		}
		// 60 C: normal after another full hold, and the action is reset.
		t1 := time.Now()
		evs = observeEvery(th, 10*time.Second, 60, 60, 60, 60, 60, 60, 60, 60)
		if got := types(evs); !equalStrings(got, []string{EvtThermalOK}) {
			t.Fatalf("events %v", got)
		}
		if d := evs[0].Status.Since.Sub(t1); d != 60*time.Second {
			t.Fatalf("back to normal after %v", d)
		}
		if a := th.Status().Action; a != NoAction {
			t.Fatalf("normal action %+v", a)
		}
	})
}

func TestThermalCoolSpellMustBeUnbroken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := NewThermal(ThermalOptions{Hold: 30 * time.Second})
		observeEvery(th, time.Second, 76) // warm
		// Cool for 20 s, a warm blip, cool for 20 s: never 30 s in a row.
		temps := []float64{}
		for range 2 {
			temps = append(temps, 70, 70, 70)
			temps = append(temps, 74)
		}
		if evs := observeEvery(th, 10*time.Second, temps...); len(evs) != 0 {
			t.Fatalf("left warm on a broken spell: %v", types(evs))
		}
		if th.Status().Level != ThermalWarm {
			t.Fatalf("level %s", th.Status().Level)
		}
	})
}

func TestThermalOscillationAroundThresholdDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := NewThermal(ThermalOptions{})
		var temps []float64
		for range 100 {
			temps = append(temps, 74.9, 75.1) // straddles the warm threshold
		}
		evs := observeEvery(th, 10*time.Second, temps...)
		if got := types(evs); !equalStrings(got, []string{EvtThermalWarning}) {
			t.Fatalf("flapping: %v", got)
		}
	})
}

func TestThermalFirmware(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := NewThermal(ThermalOptions{Hold: 10 * time.Second})
		cool := zoneAt(50)
		cool.Firmware = "soft_temp_limit"
		ev, ok := th.Observe(time.Now(), cool)
		if !ok || ev.Type != EvtThermalThrottle || ev.Status.Reason() != "firmware reports soft_temp_limit" {
			t.Fatalf("firmware throttle: %v %+v", ok, ev)
		}
		// While the firmware still says so, cool zones do not clear it.
		for range 5 {
			time.Sleep(10 * time.Second)
			if _, ok := th.Observe(time.Now(), cool); ok {
				t.Fatal("cleared while the firmware throttles")
			}
		}
		cool.Firmware = ""
		evs := []ThermalEvent{}
		for range 4 {
			if ev, ok := th.Observe(time.Now(), cool); ok {
				evs = append(evs, ev)
			}
			time.Sleep(10 * time.Second)
		}
		if got := types(evs); !equalStrings(got, []string{EvtThermalWarning, EvtThermalOK}) {
			t.Fatalf("events %v", got)
		}
	})
}

func TestThermalUnknownPointIsNotJudged(t *testing.T) {
	th := NewThermal(ThermalOptions{})
	in := ThermalInput{Zones: []ZoneInput{{Name: "x86_pkg_temp", TempC: 99}}}
	if _, ok := th.Observe(time.Now(), in); ok || th.Status().Level != ThermalNormal {
		t.Fatalf("judged a zone without a throttle point: %+v", th.Status())
	}
	if r := th.Status().Reason(); r != "no zone with a known throttle point" {
		t.Fatalf("reason %q", r)
	}
}

func TestThermalHottestRelativeZoneDecides(t *testing.T) {
	th := NewThermal(ThermalOptions{})
	in := ThermalInput{Zones: []ZoneInput{
		{Name: "cpu-thermal", TempC: 70, PointC: 85}, // 15 C headroom
		{Name: "soc-thermal", TempC: 66, PointC: 70}, // 4 C headroom: warm
	}}
	ev, ok := th.Observe(time.Now(), in)
	if !ok || ev.Status.Zone != "soc-thermal" || ev.Status.PointC != 70 {
		t.Fatalf("%v %+v", ok, ev.Status)
	}
	w := ev.WireEvent()
	if w.Type != "thermal_warning" || w.Part != "thermal" || w.Data["zone"] != "soc-thermal" || w.Data["max_fps"] != 30 {
		t.Fatalf("wire event %+v", w)
	}
	if w.Msg != "soc-thermal at 66.0 C, throttle point 70.0 C" {
		t.Fatalf("msg %q", w.Msg)
	}
}

func TestThermalActionApply(t *testing.T) {
	for _, c := range []struct {
		a            ThermalAction
		br, fps      int
		wantBR, wFPS int
	}{
		{NoAction, 4000, 60, 4000, 60},
		{ThermalAction{}, 4000, 60, 4000, 60}, // zero value changes nothing
		{ThermalAction{BitrateFactor: 0.75, MaxFPS: 30}, 4000, 60, 3000, 30},
		{ThermalAction{BitrateFactor: 0.5, MaxFPS: 25}, 4000, 0, 2000, 25},  // uncapped gets the cap
		{ThermalAction{BitrateFactor: 0.5, MaxFPS: 25}, 6000, 24, 3000, 24}, // never raises a lower cap
	} {
		br, fps := c.a.Apply(c.br, c.fps)
		if br != c.wantBR || fps != c.wFPS {
			t.Errorf("%+v.Apply(%d,%d) = %d,%d want %d,%d", c.a, c.br, c.fps, br, fps, c.wantBR, c.wFPS)
		}
	}
}

func TestThermalLevelMood(t *testing.T) {
	if ThermalNormal.Mood() != "happy" || ThermalWarm.Mood() != "hungry" || ThermalThrottling.Mood() != "sad" {
		t.Fatal("moods")
	}
}
