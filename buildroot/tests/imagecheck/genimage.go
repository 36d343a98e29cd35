// Package imagecheck reads the image's sources (genimage layouts, boot
// configurations, the GStreamer element table) for the checks in its tests:
// every partition or file-system label a boot configuration names exists in
// the layout, and every element the planner can create is built into the
// images of the boards that use it.
package imagecheck

import (
	"errors"
	"fmt"
	"strings"
)

// Section is one "name [title] { ... }" block of a genimage configuration.
type Section struct {
	Kind     string
	Title    string
	Options  map[string]string
	Children []*Section
}

// Child returns the first child section of that kind.
func (s *Section) Child(kind string) *Section {
	for _, c := range s.Children {
		if c.Kind == kind {
			return c
		}
	}
	return nil
}

// ErrSyntax is a genimage configuration that does not parse.
var ErrSyntax = errors.New("genimage syntax")

// ParseGenimage parses genimage's libconfuse syntax: sections, key = value
// options (quoted or bare), # comments.
func ParseGenimage(text string) (*Section, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	root := &Section{Kind: "", Options: map[string]string{}}
	p := &cfgParser{toks: toks}
	if err := p.body(root, true); err != nil {
		return nil, err
	}
	return root, nil
}

type cfgToken struct {
	text   string
	quoted bool
	line   int
}

func tokenize(s string) ([]cfgToken, error) {
	var toks []cfgToken
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == '=':
			toks = append(toks, cfgToken{text: string(c), line: line})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\n' {
					return nil, fmt.Errorf("%w: line %d: unterminated string", ErrSyntax, line)
				}
				j++
			}
			if j == len(s) {
				return nil, fmt.Errorf("%w: line %d: unterminated string", ErrSyntax, line)
			}
			toks = append(toks, cfgToken{text: s[i+1 : j], quoted: true, line: line})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{}=#\"", rune(s[j])) {
				j++
			}
			toks = append(toks, cfgToken{text: s[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}

type cfgParser struct {
	toks []cfgToken
	pos  int
}

func (p *cfgParser) peek(n int) (cfgToken, bool) {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n], true
	}
	return cfgToken{}, false
}

func (p *cfgParser) body(s *Section, top bool) error {
	for {
		t, ok := p.peek(0)
		if !ok {
			if top {
				return nil
			}
			return fmt.Errorf("%w: %s %q not closed", ErrSyntax, s.Kind, s.Title)
		}
		if t.text == "}" && !t.quoted {
			if top {
				return fmt.Errorf("%w: line %d: unexpected }", ErrSyntax, t.line)
			}
			p.pos++
			return nil
		}
		next, _ := p.peek(1)
		switch {
		case next.text == "=" && !next.quoted:
			v, ok := p.peek(2)
			if !ok {
				return fmt.Errorf("%w: line %d: %s has no value", ErrSyntax, t.line, t.text)
			}
			s.Options[t.text] = v.text
			p.pos += 3
		case next.text == "{" && !next.quoted:
			c := &Section{Kind: t.text, Options: map[string]string{}}
			p.pos += 2
			if err := p.body(c, false); err != nil {
				return err
			}
			s.Children = append(s.Children, c)
		default:
			brace, _ := p.peek(2)
			if brace.text != "{" {
				return fmt.Errorf("%w: line %d: unexpected %q", ErrSyntax, t.line, t.text)
			}
			c := &Section{Kind: t.text, Title: next.text, Options: map[string]string{}}
			p.pos += 3
			if err := p.body(c, false); err != nil {
				return err
			}
			s.Children = append(s.Children, c)
		}
	}
}

// Partition is one entry of a disk image's partition table.
type Partition struct {
	Number int // as the kernel numbers it (mmcblk0pN, sdaN)
	Name   string
	Image  string
	// FSLabel is the label of the file system image it is filled with.
	FSLabel string
}

// Layout is what a genimage configuration's disk image holds.
type Layout struct {
	Table      string // gpt or mbr
	Partitions []Partition
	// Extended is the MBR extended partition's number, 0 without one.
	Extended int
}

// DiskLayout finds the configuration's hdimage and lists its partitions
// as the kernel numbers them: on MBR with more than four, genimage puts
// the fourth and later ones as logical partitions (5, 6, ...) in an
// extended partition 4.
func DiskLayout(cfg *Section) (Layout, error) {
	labels := map[string]string{}
	var disk *Section
	for _, img := range cfg.Children {
		if img.Kind != "image" {
			continue
		}
		for _, fs := range []string{"vfat", "ext4", "ext3", "ext2"} {
			if f := img.Child(fs); f != nil && f.Options["label"] != "" {
				labels[img.Title] = f.Options["label"]
			}
		}
		if img.Child("hdimage") != nil {
			disk = img
		}
	}
	if disk == nil {
		return Layout{}, fmt.Errorf("%w: no hdimage", ErrSyntax)
	}
	l := Layout{Table: disk.Child("hdimage").Options["partition-table-type"]}
	if l.Table == "" {
		l.Table = "mbr"
	}
	var parts []*Section
	for _, c := range disk.Children {
		if c.Kind == "partition" && c.Options["in-partition-table"] != "no" && c.Options["in-partition-table"] != "false" {
			parts = append(parts, c)
		}
	}
	for i, c := range parts {
		n := i + 1
		if l.Table != "gpt" && len(parts) > 4 && i >= 3 {
			n = i + 2
			l.Extended = 4
		}
		l.Partitions = append(l.Partitions, Partition{Number: n, Name: c.Title, Image: c.Options["image"], FSLabel: labels[c.Options["image"]]})
	}
	return l, nil
}
