// Package relay copies the output of child processes to gaffer's stdout and stderr, one complete
// line at a time, each line formatted for the process that wrote it (DESIGN.md rule 7).
//
// A Writer is one shared destination (gaffer's stdout, or its stderr); Copy runs in its own
// goroutine per stream of every process:
//
//	out := relay.NewWriter(os.Stdout, relay.Options{Format: relay.Prefix, NameWidth: 5})
//	r, w, _ := os.Pipe()                  // w becomes the child's stdout
//	go func() {
//		err := out.Copy(r, relay.Source{Name: "web", Pid: pid, Stream: "out"})
//		r.Close()
//		done <- err
//	}()
//	out.Event("web started (pid %d)", pid)
//
// Guarantees:
//
//   - Lines are atomic: every write to the destination holds whole lines only, under the Writer's
//     lock, so lines of different sources never mix. Copy formats all complete lines of one read
//     into one buffer and writes them with one call: one syscall per line cannot keep up with a
//     busy child.
//   - A line longer than MaxLine bytes is emitted as several lines of at most MaxLine bytes each
//     (cut on a UTF-8 character boundary when there is one), never dropped, and the child never
//     waits for its end.
//   - A final line without a newline is emitted, with a newline, when the stream ends.
//   - Invalid UTF-8 passes through as bytes in Prefix and Raw; in JSON each invalid byte becomes
//     U+FFFD, so that every object is valid JSON (as encoding/json does).
//   - Back-pressure: buffers are fixed. When the destination blocks, Copy blocks in its write,
//     stops reading, the pipe fills and the child blocks in its own write.
//   - A write error on the destination (gaffer's stdout was closed) never stops Copy: it keeps
//     draining the pipe, so that no child blocks forever, and discards; Err reports the error.
//
// Bounding the drain: EOF on a child's pipe is not the child's exit, since a grandchild can hold
// the write end. After the reaper reported the exit, give the pipe a read deadline:
//
//	r.SetReadDeadline(time.Now().Add(2 * time.Second))
//
// Copy then reads until EOF or the deadline; at the deadline it still takes what the pipe holds
// at that moment (so nothing the child wrote is lost, even when a slow destination kept Copy
// from reading), emits a pending partial line, and returns an error matching
// os.ErrDeadlineExceeded. Files from os.Pipe support deadlines (they are non-blocking and
// registered with the runtime poller); a file that does not returns os.ErrNoDeadline from
// SetReadDeadline. Any other read error (a pty master reports EIO once its slave side is
// closed) also ends Copy after the pending line was emitted; close r only after Copy returned.
package relay

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line emitted as one line; longer lines are split into lines of at most
// this many bytes.
const MaxLine = 64 << 10

// EventName is the name under which gaffer's own event lines appear.
const EventName = "gaffer"

// EventColor is the Source.Color of event lines: bold, outside the palette of the processes.
const EventColor = -1

// Format is how a line is written.
type Format int

// The output formats.
const (
	// Prefix writes "name   | line", names padded to the Writer's name width.
	Prefix Format = iota
	// JSON writes one object per line: {"time","name","pid","stream","line"}.
	JSON
	// Raw writes the line alone.
	Raw
)

// ParseFormat parses the names of the config file: prefix, json or raw.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "prefix":
		return Prefix, nil
	case "json":
		return JSON, nil
	case "raw":
		return Raw, nil
	}
	return 0, fmt.Errorf("unknown output format %q (want prefix, json or raw)", s)
}

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	switch f {
	case Prefix:
		return "prefix"
	case JSON:
		return "json"
	case Raw:
		return "raw"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Options configure a Writer.
type Options struct {
	Format Format
	// Timestamps puts an RFC 3339 UTC time with milliseconds in front of Prefix lines. JSON lines
	// always carry a time; Raw lines never do.
	Timestamps bool
	// Color paints the prefix of Prefix lines with the ANSI colour of Source.Color.
	Color bool
	// NameWidth is the width names are padded to in Prefix; it is never less than len(EventName).
	// SetNameWidth changes it later.
	NameWidth int
	// Now is the clock of timestamps; nil means time.Now. Lines of one read share one time.
	Now func() time.Time
}

// Source says who wrote a stream.
type Source struct {
	Name   string // "web", "web.2", "web:events"
	Pid    int    // written in JSON
	Stream string // "out", "err" or a custom stream's label; written in JSON
	Color  int    // index into the palette, cycling; EventColor (negative) for bold
}

// Writer is a destination shared by the streams of all processes. Its methods are safe for
// concurrent use.
type Writer struct {
	format     Format
	timestamps bool
	color      bool
	now        func() time.Time
	width      atomic.Int64 // read by every Copy at each read, so that SetNameWidth needs no lock

	mu  sync.Mutex
	w   io.Writer // guarded by mu
	err error     // guarded by mu; the first write error, after which output is discarded
}

// NewWriter returns a Writer that writes formatted lines to w.
func NewWriter(w io.Writer, opts Options) *Writer {
	wr := &Writer{
		format:     opts.Format,
		timestamps: opts.Timestamps,
		color:      opts.Color,
		now:        opts.Now,
		w:          w,
	}
	if wr.now == nil {
		wr.now = time.Now
	}
	wr.SetNameWidth(opts.NameWidth)
	return wr
}

// SetNameWidth sets the width names are padded to (at least len(EventName)), e.g. when instances
// are added. Streams being copied pick it up at their next read.
func (w *Writer) SetNameWidth(n int) {
	w.width.Store(int64(max(n, len(EventName))))
}

// NameWidth returns the width names are padded to.
func (w *Writer) NameWidth() int { return int(w.width.Load()) }

// Err returns the first error writing to the destination, after which output is discarded.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Event writes one of gaffer's own lines (started, ready, exited, restarting, gave up), formatted
// as a line of the process EventName with stream "event".
func (w *Writer) Event(format string, args ...any) {
	src := Source{Name: EventName, Pid: os.Getpid(), Stream: "event", Color: EventColor}
	w.WriteLines(src, fmt.Sprintf(format, args...))
}

// WriteLines writes text as lines of src, with a newline after the last one if it has none.
// Long lines are split as in Copy.
func (w *Writer) WriteLines(src Source, text string) {
	if text == "" {
		return
	}
	s := newStream(w, src, len(text)+64)
	s.begin()
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		s.line([]byte(line))
		text = rest
	}
	s.flush()
}

// write writes p, whole lines, under the lock; after a failed write it discards.
func (w *Writer) write(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = err
	}
}

// cutPoint returns where to cut the first chunk of line, longer than MaxLine: before a valid
// UTF-8 character that would straddle MaxLine, else at MaxLine. Needs len(line) > MaxLine.
func cutPoint(line []byte) int {
	for i := MaxLine; i > MaxLine-utf8.UTFMax; i-- {
		if !utf8.RuneStart(line[i]) {
			continue
		}
		if r, size := utf8.DecodeRune(line[i:]); i+size > MaxLine && !(r == utf8.RuneError && size == 1) {
			return i
		}
		return MaxLine
	}
	return MaxLine
}
