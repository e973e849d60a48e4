package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, at a line of a file.
type Error struct {
	File string // "" when the problem is not tied to a file (FromDict)
	Line int    // 0 when it concerns the whole file
	Msg  string
	Err  error // the underlying cause, if any
}

// Error formats e as FILE:LINE: message, FILE: message, or the message alone.
func (e Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line <= 0:
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Unwrap returns the underlying cause, if any.
func (e Error) Unwrap() error { return e.Err }

// Errors is every problem found in a configuration, ordered by file and line.
type Errors struct {
	List []Error

	files []string // the config's layers: their problems come in this order
}

// Error is one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the single problems, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, err := range e.List {
		out[i] = err
	}
	return out
}

func (e *Errors) add(err Error) { e.List = append(e.List, err) }

// err returns e sorted, or nil when there is nothing in it: a nil *Errors in an error interface
// would not compare equal to nil.
func (e *Errors) err() error {
	if len(e.List) == 0 {
		return nil
	}
	e.sort()
	return e
}

// sort orders the problems by line within each file, files in layer order, then the others in
// the order they first appear.
func (e *Errors) sort() {
	rank := map[string]int{}
	for _, f := range e.files {
		if _, ok := rank[f]; !ok {
			rank[f] = len(rank)
		}
	}
	for _, err := range e.List {
		if _, ok := rank[err.File]; !ok {
			rank[err.File] = len(rank)
		}
	}
	sort.SliceStable(e.List, func(i, j int) bool {
		a, b := e.List[i], e.List[j]
		if rank[a.File] != rank[b.File] {
			return rank[a.File] < rank[b.File]
		}
		return a.Line < b.Line
	})
}
