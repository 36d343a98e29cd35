package imagecheck

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Ref is a partition or file system that a boot configuration, unit or
// script names.
type Ref struct {
	Kind  string // partlabel (GPT name), label (file system), partnum
	Value string
	Line  int
}

var (
	assignSh    = regexp.MustCompile(`(?:^|[\s);])([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s;]+)`)
	assignGrub  = regexp.MustCompile(`^\s*set\s+([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)`)
	assignUboot = regexp.MustCompile(`^\s*setenv\s+([A-Za-z_][A-Za-z0-9_]*)\s+("[^"]*"|\S+)`)
	shDefault   = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:-(.*)\}$`)
	refPatterns = []struct {
		kind string
		re   *regexp.Regexp
	}{
		{"partlabel", regexp.MustCompile(`PARTLABEL=([A-Za-z0-9_.${}-]+)`)},
		{"partlabel", regexp.MustCompile(`by-partlabel/([A-Za-z0-9_.${}-]+)`)},
		{"label", regexp.MustCompile(`\bLABEL=([A-Za-z0-9_.${}-]+)`)},
		{"label", regexp.MustCompile(`by-label/([A-Za-z0-9_.${}-]+)`)},
		{"partnum", regexp.MustCompile(`/dev/mmcblk[0-9]+p([0-9]+|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)`)},
		{"partnum", regexp.MustCompile(`^\s*boot_partition=([0-9]+)`)},
	}
	varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
)

// References lists what a file names, with shell, GRUB and U-Boot
// variables expanded to every value the file assigns them.
func References(text string) []Ref {
	values := map[string][]string{}
	lines := strings.Split(text, "\n")
	for _, l := range lines {
		for _, re := range []*regexp.Regexp{assignGrub, assignUboot, assignSh} {
			ms := re.FindAllStringSubmatch(l, -1)
			for _, m := range ms {
				v := strings.Trim(m[2], `"'`)
				if d := shDefault.FindStringSubmatch(v); d != nil {
					v = d[1]
				}
				values[m[1]] = appendNew(values[m[1]], v)
			}
			if len(ms) > 0 {
				break
			}
		}
	}
	var refs []Ref
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		for _, p := range refPatterns {
			for _, m := range p.re.FindAllStringSubmatch(l, -1) {
				for _, v := range expand(m[1], values) {
					refs = append(refs, Ref{Kind: p.kind, Value: v, Line: i + 1})
				}
			}
		}
	}
	return refs
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// expand gives every value s can take; a variable the file never assigns
// stays as it is (and then names nothing).
func expand(s string, values map[string][]string) []string {
	m := varRef.FindStringSubmatchIndex(s)
	if m == nil {
		return []string{s}
	}
	vs := values[s[m[2]:m[3]]]
	if len(vs) == 0 {
		return []string{s}
	}
	var out []string
	for _, v := range vs {
		if v == "" || strings.Contains(v, "$") {
			continue
		}
		out = append(out, expand(s[:m[0]]+v+s[m[1]:], values)...)
	}
	return out
}

// Check reports every reference the layout does not have, exactly.
func (l Layout) Check(refs []Ref) []string {
	var problems []string
	for _, r := range refs {
		if err := l.check(r); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", r.Line, err))
		}
	}
	return problems
}

func (l Layout) check(r Ref) error {
	switch r.Kind {
	case "partlabel":
		if l.Table != "gpt" {
			return fmt.Errorf("PARTLABEL %q: an %s table has no partition names", r.Value, l.Table)
		}
		for _, p := range l.Partitions {
			if p.Name == r.Value {
				return nil
			}
		}
		return fmt.Errorf("no partition named %q (the layout has %s)", r.Value, l.names(func(p Partition) string { return p.Name }))
	case "label":
		for _, p := range l.Partitions {
			if p.FSLabel == r.Value {
				return nil
			}
		}
		return fmt.Errorf("no file system labelled %q (the layout has %s)", r.Value, l.names(func(p Partition) string { return p.FSLabel }))
	case "partnum":
		n, err := strconv.Atoi(r.Value)
		if err != nil {
			return fmt.Errorf("partition number %q", r.Value)
		}
		if n == l.Extended {
			return fmt.Errorf("partition %d is the extended partition", n)
		}
		for _, p := range l.Partitions {
			if p.Number == n {
				return nil
			}
		}
		return fmt.Errorf("no partition %d (the layout has %s)", n, l.names(func(p Partition) string { return strconv.Itoa(p.Number) }))
	}
	return fmt.Errorf("unknown reference kind %q", r.Kind)
}

func (l Layout) names(f func(Partition) string) string {
	var s []string
	for _, p := range l.Partitions {
		if v := f(p); v != "" {
			s = append(s, v)
		}
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}
