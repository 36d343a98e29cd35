// Package docrefs keeps the documents the code cites true. Its tests walk
// the repository and fail when a source file names a document that does
// not exist, quotes a section the document does not have, or when a link
// between Markdown files does not land; and when docs/PROTOCOL.md no
// longer says what agent/fleet/wire implements (protocol_test.go).
//
// What counts as a reference, and how it resolves (docs/DESIGN.md
// "Document references" says the same):
//
//   - a document name is written in capitals and ends in .md (PROTOCOL.md,
//     docs/E2E.md, board/README.md); lower-case names (summary.md) are files
//     a program writes, not documents;
//   - it is looked up as a path from the repository root, then as a bare
//     name in docs/, then relative to the citing file's folder, and must
//     stay inside the repository;
//   - a quoted name right after it (PROTOCOL.md "Moods", PROTOCOL.md's
//     "Moods") must be the text of a Markdown heading of that document,
//     compared without case and inline markup, with or without the
//     heading's number;
//   - "section N", "sections N-M" or a bare "N" or "N-M" right after it
//     (HARDWARE.md section 5) must be headings numbered "N." there;
//   - in Markdown files, every relative link [text](path#anchor) must
//     reach a file, and its anchor a heading (GitHub's anchor rule).
//
// References are searched in the comments of .go, .c and .h files (a
// comment wrapped over several lines is read as one) and anywhere in
// Markdown files. The walk starts at
// the folder holding capbox's go.mod, found from the working directory,
// and skips .git, .cache, bin, vendor and recordings.
package docrefs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// skipDirs are never walked: the git store, the shared cache, build
// outputs and recordings.
var skipDirs = map[string]bool{".git": true, ".cache": true, "bin": true, "vendor": true, "recordings": true}

// sourceExts are the files whose text is searched for references.
var sourceExts = map[string]bool{".go": true, ".c": true, ".h": true, ".md": true}

// repoRoot is the folder holding capbox's go.mod, above the working
// directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && capboxModule.Match(b) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of module capbox above the working directory")
		}
		dir = parent
	}
}

// sourceFiles lists the files to search, relative to root, slash-separated.
func sourceFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && sourceExts[filepath.Ext(p)] {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

var (
	// docRef is a document name: path parts, then a capitalised name. The
	// first group is the character before it (or the start), so that a
	// longer path is never cut.
	docRef = regexp.MustCompile(`(^|[^A-Za-z0-9_./-])((?:(?:\.{1,2}|[A-Za-z0-9_-]+)/)*[A-Z][A-Z0-9_-]*\.md)\b`)
	// quotedSection and numberedSection follow a reference.
	quotedSection   = regexp.MustCompile(`^(?:'s)?[ \t]+"([^"\n]+)"`)
	numberedSection = regexp.MustCompile(`^,?[ \t]+(?:sections?[ \t]+)?(\d+)(?:[ \t]*-[ \t]*(\d+))?\b`)
	// mdLink is an inline Markdown link or image.
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:[ \t]+"[^"]*")?\)`)
	// atxHeading is a Markdown heading line.
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	fence      = regexp.MustCompile("^ {0,3}(```|~~~)")
	// headingNumber is a heading's own number ("5. HDMI capture").
	headingNumber = regexp.MustCompile(`^(\d+)[.)]?[ \t]+`)
	// inlineLink is a link inside a heading; its text is what a reader sees.
	inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	// capboxModule is the go.mod line of this repository.
	capboxModule = regexp.MustCompile(`(?m)^module capbox\s*$`)
)

// reference is one citation found in a source file.
type reference struct {
	file    string // citing file, relative to the root
	line    int
	target  string   // as written: PROTOCOL.md, docs/E2E.md
	anchor  string   // a Markdown link's #anchor, without '#'
	section string   // a quoted section name
	numbers []int    // cited section numbers
	link    bool     // from a Markdown link: resolved relative to the file
	text    string   // what was written, for messages
	looked  []string // candidate paths tried, for messages
}

func (r reference) String() string { return fmt.Sprintf("%s:%d: %s", r.file, r.line, r.text) }

// findRefs returns the references in one file: in the comments of a
// source file, anywhere in a Markdown file.
func findRefs(file, text string) []reference {
	var scan string
	var lineOf func(int) int
	isMD := strings.HasSuffix(file, ".md")
	if isMD {
		// A link's destination is checked as a link, not as a name.
		scan = mdLink.ReplaceAllStringFunc(text, func(m string) string { return strings.Repeat(" ", len(m)) })
		lineOf = func(off int) int { return strings.Count(text[:off], "\n") + 1 }
	} else {
		scan, lineOf = joinSegments(comments(text))
	}
	var refs []reference
	for _, m := range docRef.FindAllStringSubmatchIndex(scan, -1) {
		start, end := m[4], m[5]
		r := reference{file: file, line: lineOf(start), target: scan[start:end]}
		rest := scan[end:]
		r.text = r.target
		if q := quotedSection.FindStringSubmatch(rest); q != nil {
			r.section = q[1]
			r.text += " " + strconv.Quote(q[1])
		} else if n := numberedSection.FindStringSubmatch(rest); n != nil {
			from, _ := strconv.Atoi(n[1])
			to := from
			if n[2] != "" {
				to, _ = strconv.Atoi(n[2])
			}
			for i := from; i <= to && i-from < 20; i++ {
				r.numbers = append(r.numbers, i)
			}
			if to > from {
				r.text += fmt.Sprintf(" sections %d-%d", from, to)
			} else {
				r.text += fmt.Sprintf(" section %d", from)
			}
		}
		refs = append(refs, r)
	}
	if isMD {
		refs = append(refs, findLinks(file, text)...)
	}
	return refs
}

// segment is one line of comment text, without its comment markers.
type segment struct {
	line int
	text string
}

// comments returns the comment lines of Go or C source: // to the end of
// the line, /* */ blocks line by line (a leading * dropped), nothing
// inside string, rune or raw string literals.
func comments(src string) []segment {
	var out []segment
	line := 1
	emit := func(startLine int, body string) {
		for i, l := range strings.Split(body, "\n") {
			l = strings.TrimSpace(l)
			if i > 0 {
				l = strings.TrimSpace(strings.TrimPrefix(l, "*"))
			}
			out = append(out, segment{startLine + i, l})
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			line++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			emit(line, src[i+2:i+j])
			i += j - 1
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				j = len(src) - i - 2
			}
			body := src[i+2 : i+2+j]
			emit(line, body)
			line += strings.Count(body, "\n")
			i += 2 + j + 1
		case c == '"' || c == '\'' || c == '`':
			// Skip the literal; a raw string may span lines.
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' && c != '`' {
					i++
				} else if src[i] == '\n' {
					line++
					if c != '`' {
						break // an unterminated literal ends with its line
					}
				}
			}
		}
	}
	return out
}

// joinSegments joins comment lines that follow each other into one text,
// so that a reference wrapped over lines reads as one, and returns a
// function from an offset in that text to the source line.
func joinSegments(segs []segment) (string, func(int) int) {
	var b strings.Builder
	var lines []int
	for i, s := range segs {
		sep := "\n"
		if i > 0 && s.line == segs[i-1].line+1 {
			sep = " "
		}
		if i > 0 {
			b.WriteString(sep)
			lines = append(lines, s.line)
		}
		b.WriteString(s.text)
		for range len(s.text) {
			lines = append(lines, s.line)
		}
	}
	return b.String(), func(off int) int {
		if off < len(lines) {
			return lines[off]
		}
		return 0
	}
}

// findLinks returns the relative links of a Markdown file, outside code.
func findLinks(file, text string) []reference {
	var refs []reference
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			dest := m[1]
			if strings.Contains(dest, "://") || strings.HasPrefix(dest, "mailto:") {
				continue
			}
			target, anchor, _ := strings.Cut(dest, "#")
			refs = append(refs, reference{file: file, line: i + 1, target: target, anchor: anchor, link: true, text: "(" + dest + ")"})
		}
	}
	return refs
}

// stripCodeSpans blanks `code` so that a link shown as code is not taken.
func stripCodeSpans(line string) string {
	var b strings.Builder
	in := false
	for _, r := range line {
		if r == '`' {
			in = !in
		}
		if in || r == '`' {
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// document is a Markdown file's headings.
type document struct {
	titles  map[string]bool // normalised heading texts, with and without number
	numbers map[int]bool    // heading numbers
	anchors map[string]bool // GitHub anchors
}

func parseDocument(text string) document {
	d := document{titles: map[string]bool{}, numbers: map[int]bool{}, anchors: map[string]bool{}}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := atxHeading.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		title := m[2]
		d.titles[normTitle(title)] = true
		if n := headingNumber.FindStringSubmatch(plainText(title)); n != nil {
			v, _ := strconv.Atoi(n[1])
			d.numbers[v] = true
			d.titles[normTitle(strings.TrimPrefix(plainText(title), n[0]))] = true
		}
		a := anchor(title)
		if k := seen[a]; k > 0 {
			d.anchors[fmt.Sprintf("%s-%d", a, k)] = true
		} else {
			d.anchors[a] = true
		}
		seen[a]++
	}
	return d
}

// plainText drops inline Markdown markup a reader does not see.
func plainText(s string) string {
	s = inlineLink.ReplaceAllString(s, "$1")
	return strings.NewReplacer("`", "", "**", "", "__", "").Replace(s)
}

// normTitle is how a quoted section and a heading are compared.
func normTitle(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(plainText(s)), " "))
}

// anchor is GitHub's anchor for a heading: lower case, letters, digits,
// spaces, '-' and '_' kept, spaces become '-'.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(plainText(title))) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// checker resolves references against one tree.
type checker struct {
	root string
	docs map[string]*document // parsed lazily, by slash path
}

// resolve finds the file a reference names, as a slash path from the root.
func (c *checker) resolve(r *reference) (string, bool) {
	dir := filepath.ToSlash(filepath.Dir(r.file))
	var cands []string
	switch {
	case r.link && r.target == "":
		cands = []string{r.file} // #anchor in the same file
	case r.link:
		cands = []string{dir + "/" + r.target}
	default:
		cands = []string{r.target, "docs/" + r.target, dir + "/" + r.target}
	}
	for _, cand := range cands {
		p := filepath.ToSlash(filepath.Clean(cand))
		r.looked = append(r.looked, p)
		if p == ".." || strings.HasPrefix(p, "../") || filepath.IsAbs(p) {
			continue // outside the repository
		}
		if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(p))); err == nil {
			return p, true
		}
	}
	return "", false
}

func (c *checker) document(p string) (*document, error) {
	if d, ok := c.docs[p]; ok {
		return d, nil
	}
	b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	d := parseDocument(string(b))
	c.docs[p] = &d
	return &d, nil
}

// check returns what is wrong with one reference ("" when nothing).
func (c *checker) check(r reference) string {
	p, ok := c.resolve(&r)
	if !ok {
		return fmt.Sprintf("%s: no such document in the repository (looked for %s)", r, strings.Join(r.looked, ", "))
	}
	if r.section == "" && len(r.numbers) == 0 && r.anchor == "" {
		return ""
	}
	if !strings.HasSuffix(p, ".md") {
		return fmt.Sprintf("%s: %s is not a Markdown document", r, p)
	}
	d, err := c.document(p)
	if err != nil {
		return fmt.Sprintf("%s: %v", r, err)
	}
	var missing []string
	if r.section != "" && !d.titles[normTitle(r.section)] {
		missing = append(missing, fmt.Sprintf("no heading %q", r.section))
	}
	for _, n := range r.numbers {
		if !d.numbers[n] {
			missing = append(missing, fmt.Sprintf("no heading numbered %d", n))
		}
	}
	if r.anchor != "" && !d.anchors[strings.ToLower(r.anchor)] {
		missing = append(missing, fmt.Sprintf("no heading with anchor #%s", r.anchor))
	}
	if len(missing) > 0 {
		return fmt.Sprintf("%s: %s has %s", r, p, strings.Join(missing, ", "))
	}
	return ""
}

// problem is a broken reference and what is wrong with it.
type problem struct {
	ref reference
	msg string
}

// checkTree returns every broken reference under root, and how many
// references were checked in source (non-Markdown) files.
func checkTree(root string) (problems []problem, sourceRefs int, err error) {
	files, err := sourceFiles(root)
	if err != nil {
		return nil, 0, err
	}
	c := &checker{root: root, docs: map[string]*document{}}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return nil, 0, err
		}
		for _, r := range findRefs(f, string(b)) {
			if !strings.HasSuffix(f, ".md") {
				sourceRefs++
			}
			if msg := c.check(r); msg != "" {
				problems = append(problems, problem{r, msg})
			}
		}
	}
	return problems, sourceRefs, nil
}

// TestDocumentReferences: every document the code and the docs cite
// exists, with the sections they quote.
func TestDocumentReferences(t *testing.T) {
	root := repoRoot(t)
	problems, n, err := checkTree(root)
	if err != nil {
		t.Fatal(err)
	}
	// The code cites its documents dozens of times; finding almost none
	// means the walk or the pattern broke, not that all is well.
	if n < 20 {
		t.Errorf("only %d document references found in the sources under %s", n, root)
	}
	for _, p := range problems {
		t.Error(p.msg)
	}
}

// TestCheckerFindsBrokenReferences runs the checker on a small tree whose
// broken references are known.
func TestCheckerFindsBrokenReferences(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/GUIDE.md", "# Guide\n\n## Moods and modes\n\n## 5. HDMI capture\n\n```\n## Not a heading\n```\n\n"+
		"[ok](GUIDE.md#moods-and-modes) [same](#5-hdmi-capture) [up](../README.md) [web](https://example.org/X.md)\n"+
		"[bad anchor](GUIDE.md#nope) [bad file](MISSING.md) `[code](MISSING.md)`\n")
	write("README.md", "# capbox\n\nSee docs/GUIDE.md and GUIDE.md \"Moods and modes\"; results go to summary.md.\n")
	write("pkg/a.go", `package pkg

// Fine: GUIDE.md "Moods and modes", GUIDE.md's "moods and MODES",
// docs/GUIDE.md section 5, GUIDE.md 5, LOCAL.md, and a wrapped one (GUIDE.md
// "HDMI capture").
// Broken: GUIDE.md "Not a heading", GUIDE.md section 6, GUIDE.md 4-5,
// ../outside/GUIDE.md, NOWHERE.md.
var s = "not a comment: GUIDE.md \"Gone\" is not checked"
`)
	write("pkg/LOCAL.md", "# Local\n")
	write("pkg/b.c", "/* GUIDE.md \"Moods\n * and modes\" */\n")
	problems, n, err := checkTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if n != 12 {
		t.Errorf("found %d references in sources, want 12", n)
	}
	want := []string{
		`docs/GUIDE.md:12: (GUIDE.md#nope)`,
		`docs/GUIDE.md:12: (MISSING.md)`,
		`pkg/a.go:6: GUIDE.md "Not a heading"`,
		`pkg/a.go:6: GUIDE.md section 6`,
		`pkg/a.go:6: GUIDE.md sections 4-5`,
		`pkg/a.go:7: ../outside/GUIDE.md`,
		`pkg/a.go:7: NOWHERE.md`,
	}
	var got, all []string
	for _, p := range problems {
		got = append(got, p.ref.String())
		all = append(all, p.msg)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("broken references:\n%s\nwant:\n%s\n(messages:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), strings.Join(all, "\n"))
	}
}

func TestAnchor(t *testing.T) {
	for title, want := range map[string]string{
		"Identity and connection":       "identity-and-connection",
		"5. HDMI capture":               "5-hdmi-capture",
		"`cmd/req/{name}` and answers":  "cmdreqname-and-answers",
		"Sizes, depth & limits":         "sizes-depth--limits",
		"capboxd.service and hardening": "capboxdservice-and-hardening",
		"Glossary: rung, slate_on":      "glossary-rung-slate_on",
	} {
		if got := anchor(title); got != want {
			t.Errorf("anchor(%q) = %q, want %q", title, got, want)
		}
	}
}
