// Package relay copies the output of child processes to gaffer's stdout and stderr, one complete
// line at a time, each line formatted for the process that wrote it (DESIGN.md rule 7).
//
// A Writer is one shared destination (gaffer's stdout, or its stderr). Copy runs in a goroutine
// of its own for each captured stream of each process; Event writes gaffer's own lines:
//
//	stdout := relay.NewWriter(os.Stdout, relay.Options{Format: relay.Prefix, Color: true, NameWidth: 5})
//	r, w, _ := os.Pipe() // w becomes the child's stdout; close it in gaffer once the child started
//	go func() {
//		err := stdout.Copy(r, relay.Source{Name: "web", Pid: pid, Stream: "out", Color: 0})
//		r.Close()
//		drained <- err // nil at EOF
//	}()
//	stdout.Event("web started (pid %d)", pid)
//	// ... the reaper reports the exit:
//	r.SetReadDeadline(time.Now().Add(2 * time.Second)) // bound the drain
//	<-drained
//	stdout.Event("web exited with code %d", code)
//	// ... before gaffer exits:
//	stdout.Flush(time.Second)
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
//   - Back-pressure: buffers are bounded. When the destination blocks, Copy blocks in its write,
//     stops reading, the pipe fills and the child blocks in its own write. Event never blocks.
//   - A busy stream's pipe, and the destination when it is a pipe, are grown to 1 MiB, so that the
//     child, the relay and the reader of the output run side by side rather than in turns; at most
//     8 grown pipes per Writer at a time (see busyPipe). The pipes are never shrunk.
//   - A write error on the destination (gaffer's stdout was closed) never stops Copy: it keeps
//     draining the pipe, so that no child blocks forever, and discards; Err reports the error.
//
// Bounding the drain: EOF on a child's pipe is not the child's exit, since a grandchild can hold
// the write end. After the reaper reported the exit, give the pipe a read deadline. Copy then
// reads until EOF or the deadline; at the deadline it still takes what the pipe holds at that
// moment (so nothing the child wrote is lost, even when a slow destination kept Copy from
// reading), emits a pending partial line, and returns an error matching os.ErrDeadlineExceeded.
// Files from os.Pipe support deadlines (they are non-blocking and registered with the runtime
// poller); a file that does not returns os.ErrNoDeadline from SetReadDeadline. Any other read
// error (a pty master reports EIO once its slave side is closed) also ends Copy after the pending
// line was emitted. Close r only after Copy returned.
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
	// Tap, when set, is given the raw complete lines of every read (newlines included; a long
	// line may come in pieces, a final partial line without its newline), after they were
	// written. It must not keep the slice. gaffer keeps recent output for its API this way, at
	// the cost of one call per read rather than per line.
	Tap func(lines []byte)
}

// Writer is a destination shared by the streams of all processes. Its methods are safe for
// concurrent use.
type Writer struct {
	// style is how lines look (format, timestamps, colour): read by every Copy at each read,
	// like width, so that SetStyle changes the output of running processes without a lock.
	style atomic.Pointer[Style]
	now   func() time.Time
	width atomic.Int64 // read by every Copy at each read, so that SetNameWidth needs no lock

	mu  sync.Mutex
	w   io.Writer // guarded by mu
	err error     // guarded by mu; the first write error, after which output is discarded

	// Accounting that needs no lock, so that it can be read while a write is stuck.
	// Accounting, under acct (never held across a write): bytes handed to write and not yet
	// written or dropped, and bytes that could not be written (write errors, writes after
	// Abandon, a full event queue). Once abandoned, what is pending counts as dropped too (see
	// Dropped): a write stuck in the kernel is lost unless it completes after all.
	acct      sync.Mutex
	pending   int64        // guarded by acct
	dropped   int64        // guarded by acct
	progress  atomic.Int64 // Unix nanoseconds of the last completed write
	abandoned atomic.Bool  // Abandon was called: every later byte is dropped
	busyPipes atomic.Int64 // streams whose pipes Copy has grown and not yet given up
	destGrown atomic.Bool  // growing the destination's pipe was tried

	evMu          sync.Mutex
	events        []byte        // guarded by evMu; formatted event lines not yet written
	queued        chan struct{} // guarded by evMu; closed once the lines now in events were written
	droppedEvents int           // guarded by evMu; events not queued since the queue was full
	writing       bool          // guarded by evMu; a write of events is under way, maybe blocked
	flushing      chan struct{} // guarded by evMu; set while a goroutine writes events, closed after
}

const (
	// maxEvents bounds the event lines waiting for a blocked destination.
	maxEvents = 64 << 10
	// eventWait is how long Event waits for its line to be written, so that it appears before
	// what follows and is not lost when gaffer exits, without stalling the caller on a stuck
	// destination.
	eventWait = 50 * time.Millisecond
)

// NewWriter returns a Writer that writes formatted lines to w.
func NewWriter(w io.Writer, opts Options) *Writer {
	wr := &Writer{
		now: opts.Now,
		w:   w,
	}
	wr.SetStyle(Style{Format: opts.Format, Timestamps: opts.Timestamps, Color: opts.Color})
	if wr.now == nil {
		wr.now = time.Now
	}
	wr.SetNameWidth(opts.NameWidth)
	return wr
}

// Style is how a Writer formats lines: Options' Format, Timestamps and Color.
type Style struct {
	Format     Format
	Timestamps bool
	Color      bool
}

// SetStyle changes how lines are formatted from the next read of every stream on (a reload of
// gaffer's output settings).
func (w *Writer) SetStyle(s Style) { w.style.Store(&s) }

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
// as a line of the process EventName, stream "event", timed now. A newline in the message starts
// another line.
//
// Event never blocks for long, so that the loop that reaps can call it while gaffer's stdout is
// stuck: a goroutine writes events, in order, and Event waits at most 50 ms for its line to be
// written, not at all while an earlier write of events is still under way. Up to 64 KiB of events
// wait; beyond that they are dropped and counted, and the count is written as an event once the
// destination takes lines again. Flush waits for the queue.
func (w *Writer) Event(format string, args ...any) {
	s := w.eventStream()
	s.text(fmt.Sprintf(format, args...))

	w.evMu.Lock()
	if len(w.events)+len(s.out) > maxEvents || w.abandoned.Load() {
		w.droppedEvents++
		w.countDropped(int64(len(s.out)))
		w.evMu.Unlock()
		return
	}
	w.events = append(w.events, s.out...)
	if w.queued == nil {
		w.queued = make(chan struct{})
	}
	queued, stuck := w.queued, w.writing
	if w.flushing == nil {
		w.flushing = make(chan struct{})
		go w.writeEvents(w.flushing)
	}
	w.evMu.Unlock()
	if !stuck {
		t := time.NewTimer(eventWait)
		defer t.Stop()
		select {
		case <-queued:
		case <-t.C:
		}
	}
}

// Flush waits until the queued events were written, at most timeout; it reports whether they
// were. Call it before exiting.
func (w *Writer) Flush(timeout time.Duration) bool {
	w.evMu.Lock()
	done := w.flushing
	w.evMu.Unlock()
	if done == nil {
		return true
	}
	if w.abandoned.Load() {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// writeEvents writes queued events until the queue is empty, then closes done.
func (w *Writer) writeEvents(done chan struct{}) {
	var buf []byte
	for {
		w.evMu.Lock()
		if len(w.events) == 0 && (w.droppedEvents == 0 || w.abandoned.Load()) {
			w.flushing = nil
			w.evMu.Unlock()
			close(done)
			return
		}
		// Swap buffers: Event appends to the other one while this one is written.
		buf, w.events = w.events, buf[:0]
		queued := w.queued
		w.queued = nil
		if w.droppedEvents > 0 {
			s := w.eventStream()
			s.text(fmt.Sprintf("%d events dropped: the output was blocked", w.droppedEvents))
			buf = append(buf, s.out...)
			w.droppedEvents = 0
		}
		w.writing = true
		w.evMu.Unlock()

		w.write(buf)

		w.evMu.Lock()
		w.writing = false
		w.evMu.Unlock()
		if queued != nil {
			close(queued)
		}
	}
}

// eventStream formats event lines into its out buffer, never writing them itself.
func (w *Writer) eventStream() *stream {
	s := newStream(w, Source{Name: EventName, Pid: os.Getpid(), Stream: "event", Color: EventColor}, 256)
	s.hold = true
	s.begin()
	return s
}

// text formats text as lines, the last one with or without a newline.
func (s *stream) text(text string) {
	for {
		line, rest, more := strings.Cut(text, "\n")
		s.line([]byte(line))
		if !more || rest == "" {
			return
		}
		text = rest
	}
}

// write writes p, whole lines, under the lock; after a failed write, or once abandoned, it
// discards and counts.
func (w *Writer) write(p []byte) {
	n := int64(len(p))
	w.acct.Lock()
	if w.abandoned.Load() {
		w.dropped += n
		w.acct.Unlock()
		return
	}
	w.pending += n
	w.acct.Unlock()

	w.mu.Lock()
	lost := n // what this write loses, unless it succeeds
	if !w.abandoned.Load() && w.err == nil {
		m, err := w.w.Write(p)
		if err != nil {
			w.err = err
			lost = n - int64(max(m, 0))
		} else {
			lost = 0
			w.progress.Store(time.Now().UnixNano())
		}
	}
	w.mu.Unlock()

	w.acct.Lock()
	w.pending -= n
	w.dropped += lost
	w.acct.Unlock()
}

// countDropped adds n bytes to what could not be written.
func (w *Writer) countDropped(n int64) {
	w.acct.Lock()
	w.dropped += n
	w.acct.Unlock()
}

// Dropped returns how many bytes could not be written: lost to a write error (gaffer's output
// was closed), to a full event queue, or given up on by Abandon.
func (w *Writer) Dropped() int64 {
	w.acct.Lock()
	defer w.acct.Unlock()
	if w.abandoned.Load() {
		return w.dropped + w.pending // given up on, unless a stuck write completes after all
	}
	return w.dropped
}

// Busy reports whether bytes or events are waiting to be written, and when a write last
// completed (zero before the first).
func (w *Writer) Busy() (busy bool, lastProgress time.Time) {
	w.evMu.Lock()
	busy = w.flushing != nil
	w.evMu.Unlock()
	w.acct.Lock()
	busy = busy || w.pending > 0
	w.acct.Unlock()
	if ns := w.progress.Load(); ns > 0 {
		lastProgress = time.Unix(0, ns)
	}
	return busy, lastProgress
}

// Abandon gives up on the destination, which has stopped taking output (nobody reads the pipe):
// what waits to be written, and everything offered later, is dropped and counted. A write that is
// stuck in the kernel stays stuck; gaffer exits without it. Abandon never blocks.
func (w *Writer) Abandon() {
	w.acct.Lock()
	was := w.abandoned.Swap(true)
	w.acct.Unlock()
	if was {
		return
	}
	w.evMu.Lock()
	w.countDropped(int64(len(w.events)))
	w.events = w.events[:0]
	w.evMu.Unlock()
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
