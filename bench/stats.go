package main

import (
	"fmt"
	"math"
	"sort"
)

// Spread is a sample's median and range: on a shared, noisy machine the
// range says more than a standard deviation of three runs would.
type Spread struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(xs []float64) Spread {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Spread{} // N == 0: not measured (JSON has no NaN)
	}
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Spread{N: len(v), Median: m, Min: v[0], Max: v[len(v)-1]}
}

// format prints "median (min-max)" with the given verb, or "n/a".
func (s Spread) format(verb string) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.N == 1 {
		return fmt.Sprintf(verb, s.Median)
	}
	return fmt.Sprintf(verb+" ("+verb+"-"+verb+")", s.Median, s.Min, s.Max)
}

// ratios pairs a[i]/b[i]: each ratio compares two runs made one after the
// other, so slow drift of the machine's load cancels.
func ratios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 && !math.IsNaN(a[i]) {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// diffs pairs a[i]-b[i].
func diffs(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if !math.IsNaN(a[i]) && !math.IsNaN(b[i]) {
			out = append(out, a[i]-b[i])
		}
	}
	return out
}

// verdict says whether a median meets a "<= target" goal.
func verdict(s Spread, target float64) string {
	switch {
	case s.N == 0:
		return "not measured"
	case s.Median <= target:
		return "met"
	default:
		return "MISSED"
	}
}
