package imagecheck

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ElementRow is one line of buildroot/gst-elements.txt.
type ElementRow struct {
	Element string
	Boards  []string // "all", board names, or none ("-")
	Symbols []string
	// Reason is the comment above a row no board builds.
	Reason string
	Line   int
}

// For reports whether the board's image must build the element.
func (r ElementRow) For(board string) bool {
	for _, b := range r.Boards {
		if b == "all" || b == board {
			return true
		}
	}
	return false
}

// ReadElementTable parses the element table.
func ReadElementTable(path string) (map[string]ElementRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows := map[string]ElementRow{}
	comment := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			comment = ""
			continue
		}
		if strings.HasPrefix(line, "#") {
			comment += strings.TrimSpace(strings.TrimPrefix(line, "#")) + " "
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want ELEMENT BOARDS SYMBOLS", path, n)
		}
		r := ElementRow{Element: fields[0], Reason: strings.TrimSpace(comment), Line: n}
		if fields[1] != "-" {
			r.Boards = strings.Split(fields[1], ",")
		}
		if fields[2] != "-" {
			r.Symbols = fields[2:]
		}
		if _, dup := rows[r.Element]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", path, n, r.Element)
		}
		rows[r.Element] = r
		comment = ""
	}
	return rows, sc.Err()
}

// CodeElements are the GStreamer elements a set of Go packages can create.
type CodeElements struct {
	// Names maps each element to where it was seen.
	Names map[string]string
	// Groups are the code's lists of alternatives (the variable's name: its
	// elements), any one of which will do.
	Groups map[string][]string
}

// elementCalls are functions whose first argument is an element name.
var elementCalls = map[string]bool{"NewElement": true, "NewElementWithName": true, "has": true, "HasElement": true}

// alternatives are the variables that list alternatives.
var alternatives = regexp.MustCompile(`^(h264Decoders|softwareEncoders|aacEncoders)$`)

// FindCodeElements reads the non-test Go files of the directories. A string
// literal is an element when it stands where an element goes (Factory: or
// element: in a literal, the argument of NewElement or has, an entry of a
// list of alternatives) or when known says it is one (the element table and
// the host's GStreamer registry); property names and values are not.
func FindCodeElements(dirs []string, known func(string) bool) (CodeElements, error) {
	ce := CodeElements{Names: map[string]string{}, Groups: map[string][]string{}}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			return ce, err
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return ce, err
			}
			skip := map[*ast.BasicLit]bool{}
			certain := map[*ast.BasicLit]bool{}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.KeyValueExpr:
					key, _ := n.Key.(*ast.Ident)
					lit, _ := n.Value.(*ast.BasicLit)
					if key == nil || lit == nil {
						return true
					}
					switch key.Name {
					case "Factory", "element":
						certain[lit] = true
					case "Name", "Value", "bitrate":
						skip[lit] = true
					}
				case *ast.CallExpr:
					name := ""
					switch fn := n.Fun.(type) {
					case *ast.Ident:
						name = fn.Name
					case *ast.SelectorExpr:
						name = fn.Sel.Name
					}
					if elementCalls[name] && len(n.Args) > 0 {
						if lit, ok := n.Args[0].(*ast.BasicLit); ok {
							certain[lit] = true
						}
					}
				case *ast.ValueSpec:
					for i, id := range n.Names {
						if !alternatives.MatchString(id.Name) || i >= len(n.Values) {
							continue
						}
						ast.Inspect(n.Values[i], func(m ast.Node) bool {
							if lit, ok := m.(*ast.BasicLit); ok && lit.Kind == token.STRING && !skip[lit] {
								if s, err := strconv.Unquote(lit.Value); err == nil && !strings.Contains(s, "bitrate") {
									ce.Groups[id.Name] = append(ce.Groups[id.Name], s)
									certain[lit] = true
								}
							}
							return true
						})
					}
				}
				return true
			})
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || skip[lit] {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil || !elementName.MatchString(s) {
					return true
				}
				if certain[lit] || known(s) {
					if _, seen := ce.Names[s]; !seen {
						ce.Names[s] = fmt.Sprintf("%s:%d", filepath.Base(path), fset.Position(lit.Pos()).Line)
					}
				}
				return true
			})
		}
	}
	return ce, nil
}

var elementName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ReadDefconfig returns the symbols a defconfig sets to y.
func ReadDefconfig(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	on := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if sym, ok := strings.CutSuffix(strings.TrimSpace(l), "=y"); ok && strings.HasPrefix(sym, "BR2_") {
			on[sym] = true
		}
	}
	return on, nil
}

// CheckBoard lists what a board's defconfig lacks: the symbols of every
// element the table says it builds, and one member of every group.
func CheckBoard(board string, on map[string]bool, rows map[string]ElementRow, groups map[string][]string) []string {
	var problems []string
	builds := func(el string) bool {
		r, ok := rows[el]
		if !ok || !r.For(board) || len(r.Symbols) == 0 {
			return false
		}
		for _, s := range r.Symbols {
			if !on[s] {
				return false
			}
		}
		return true
	}
	names := make([]string, 0, len(rows))
	for el := range rows {
		names = append(names, el)
	}
	sort.Strings(names)
	for _, el := range names {
		r := rows[el]
		if !r.For(board) {
			continue
		}
		for _, s := range r.Symbols {
			if !on[s] {
				problems = append(problems, fmt.Sprintf("%s needs %s=y", el, s))
			}
		}
	}
	gnames := make([]string, 0, len(groups))
	for g := range groups {
		gnames = append(gnames, g)
	}
	sort.Strings(gnames)
	for _, g := range gnames {
		ok := false
		for _, el := range groups[g] {
			ok = ok || builds(el)
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("none of %s (%s) is built", g, strings.Join(groups[g], ", ")))
		}
	}
	return problems
}
