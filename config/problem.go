package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a mapping: where it is and why.
type Problem struct {
	File string // the file, or "env NAME" for an environment override
	Line int    // 1-based line for syntax errors, 0 when unknown
	Path string // the field path, like listeners[0].routes[2].dubbo.params[1].type
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a mapping; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects problems as validation walks the model.
type problems struct{ list Problems }

func (c *problems) add(path, format string, args ...any) {
	c.list = append(c.list, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Sort orders problems by file then path (indexes numerically), keeping
// discovery order for equal keys, so output is the same on every run.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return pathLess(ps[i].Path, ps[j].Path)
	})
}

// pathLess compares field paths with numeric indexes in numeric order.
func pathLess(a, b string) bool {
	for a != "" && b != "" {
		ai, bi := strings.IndexByte(a, '['), strings.IndexByte(b, '[')
		if ai < 0 || bi < 0 || a[:ai] != b[:bi] {
			return a < b
		}
		a, b = a[ai+1:], b[bi+1:]
		var na, nb int
		fmt.Sscanf(a, "%d", &na)
		fmt.Sscanf(b, "%d", &nb)
		if na != nb {
			return na < nb
		}
		a, b = a[strings.IndexByte(a, ']')+1:], b[strings.IndexByte(b, ']')+1:]
	}
	return a < b
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// pathStack is the field path of a walk over the model, spelled out only
// when a problem needs it: building every path of a large mapping cost
// more than decoding it. A segment is a field name, or an index when name
// is "".
type pathStack []pathSeg

type pathSeg struct {
	name string
	idx  int
}

func (s *pathStack) push(name string) { *s = append(*s, pathSeg{name: name}) }

func (s *pathStack) pushIndex(i int) { *s = append(*s, pathSeg{idx: i}) }

func (s *pathStack) pop() { *s = (*s)[:len(*s)-1] }

// String spells the path as field and index do.
func (s pathStack) String() string {
	p := ""
	for _, seg := range s {
		if seg.name == "" {
			p = index(p, seg.idx)
		} else {
			p = field(p, seg.name)
		}
	}
	return p
}

func field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
