package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyPath names a value in a document: table and key names, and array indices.
type keyPath []string

// indexMark starts an array-index element of a keyPath; no TOML key a person writes starts with NUL.
const indexMark = "\x00"

func (k keyPath) with(names ...string) keyPath {
	out := make(keyPath, len(k), len(k)+len(names))
	copy(out, k)
	return append(out, names...)
}

func (k keyPath) index(i int) keyPath { return k.with(indexMark + strconv.Itoa(i)) }

// String is the path as TOML spells it: process.web.after[1], with quotes where a key needs them.
func (k keyPath) String() string {
	var b strings.Builder
	for i, s := range k {
		if n, ok := strings.CutPrefix(s, indexMark); ok {
			b.WriteString("[" + n + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if validName(s) {
			b.WriteString(s)
		} else {
			b.WriteString(strconv.Quote(s))
		}
	}
	return b.String()
}

func (k keyPath) id() string { return strings.Join(k, "\x1f") }

// origin is where a value was set: a file (the layer-th of the config's sources) and a line.
type origin struct {
	layer int
	file  string
	line  int
}

// source is where every key, table and array element of a merged document was set: the layer
// that set it last, except a table, which keeps the first layer that made it (its [header]).
type source struct {
	files   []string          // the layers, in order
	origins map[string]origin // keyPath.id() -> where
}

// singleSource is the source of one file whose lines are indexed.
func singleSource(file string, lines map[string]int) *source {
	s := &source{files: []string{file}, origins: make(map[string]origin, len(lines))}
	for id, line := range lines {
		s.origins[id] = origin{file: file, line: line}
	}
	return s
}

// at is where k is written, or else where its nearest written parent is (a default that is
// wrong is reported at its table), or the first file at line 0.
func (s *source) at(k keyPath) origin {
	if s == nil {
		return origin{}
	}
	for n := len(k); n > 0; n-- {
		if o, ok := s.origins[k[:n].id()]; ok {
			return o
		}
	}
	if len(s.files) > 0 {
		return origin{file: s.files[0]}
	}
	return origin{}
}

// line is at(k)'s line.
func (s *source) line(k keyPath) int { return s.at(k).line }

// exact is where k itself was set; false for a value no file gave (a default).
func (s *source) exact(k keyPath) (origin, bool) {
	if s == nil {
		return origin{}, false
	}
	o, ok := s.origins[k.id()]
	return o, ok
}

// lineIndex maps every key path of a TOML document that already decoded without error to its
// line. go-toml's decoder keeps no positions; its unstable parser has them on keys and most values.
func lineIndex(data []byte) (lines map[string]int) {
	lines = map[string]int{}
	// Positions only make messages better: a parser panic must never take gaffer (maybe PID 1)
	// down, so keep what was indexed so far.
	defer func() { _ = recover() }()
	var p unstable.Parser
	p.Reset(data)
	var table keyPath
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = nil
			it := e.Key()
			for it.Next() {
				n := it.Node()
				table = table.with(string(n.Data))
				record(lines, table, lineOf(&p, n, 0))
			}
		case unstable.KeyValue:
			indexKeyValue(&p, e, table, lines)
		}
	}
	return lines
}

func indexKeyValue(p *unstable.Parser, kv *unstable.Node, base keyPath, lines map[string]int) {
	k, line := base, 0
	it := kv.Key()
	for it.Next() {
		n := it.Node()
		line = lineOf(p, n, line)
		k = k.with(string(n.Data))
		record(lines, k, line)
	}
	indexValue(p, kv.Value(), k, line, lines)
}

func indexValue(p *unstable.Parser, v *unstable.Node, k keyPath, line int, lines map[string]int) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			indexKeyValue(p, it.Node(), k, lines)
		}
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			ek, el := k.index(i), lineOf(p, n, line)
			record(lines, ek, el)
			indexValue(p, n, ek, el, lines)
			i++
		}
	}
}

// lineOf is the first line of n, or fallback for nodes the parser gives no range (booleans,
// arrays).
func lineOf(p *unstable.Parser, n *unstable.Node, fallback int) int {
	if n.Raw.Length == 0 {
		return fallback
	}
	return p.Shape(n.Raw).Start.Line
}

func record(lines map[string]int, k keyPath, line int) {
	if line <= 0 {
		return
	}
	if _, ok := lines[k.id()]; !ok {
		lines[k.id()] = line
	}
}

// validName reports whether s is a process name or stream label: [A-Za-z0-9_-]+.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// redefinition is the line of the first key or table that a document defines twice, or 0.
// go-toml reports those without a position.
func redefinition(data []byte) (line int) {
	defer func() { _ = recover() }() // only a better message is at stake, see lineIndex
	var p unstable.Parser
	p.Reset(data)
	defs := definitions{defined: map[string]bool{}, dotted: map[string]bool{}}
	var table keyPath
	arrays := 0
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table, line = nil, 0
			it := e.Key()
			for it.Next() {
				n := it.Node()
				table, line = table.with(string(n.Data)), lineOf(&p, n, line)
			}
			if e.Kind == unstable.ArrayTable {
				// Each [[x]] is a new table whose keys may repeat those of the one before.
				arrays++
				table = table.index(arrays)
				continue
			}
			if defs.taken(table) {
				return line
			}
			defs.defined[table.id()] = true
		case unstable.KeyValue:
			if l := defs.keyValue(&p, e, table); l > 0 {
				return l
			}
		}
	}
	return 0
}

// definitions are what a document has defined so far.
type definitions struct {
	defined map[string]bool // keys with a value, tables with a [header]
	dotted  map[string]bool // tables made by dotted keys (a.b = 1 makes a): more dotted keys may add to them
}

func (d definitions) taken(k keyPath) bool { return d.defined[k.id()] || d.dotted[k.id()] }

// keyValue records a key = value and returns its line if it redefines something.
func (d definitions) keyValue(p *unstable.Parser, kv *unstable.Node, base keyPath) int {
	k, line := base, 0
	it := kv.Key()
	for it.Next() {
		if len(k) > len(base) {
			d.dotted[k.id()] = true
		}
		n := it.Node()
		k, line = k.with(string(n.Data)), lineOf(p, n, line)
	}
	if d.taken(k) {
		return line
	}
	d.defined[k.id()] = true
	if v := kv.Value(); v.Kind == unstable.InlineTable {
		it := v.Children()
		for it.Next() {
			if l := d.keyValue(p, it.Node(), k); l > 0 {
				return l
			}
		}
	}
	return 0
}
