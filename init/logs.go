package pid1

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"gaffer/core"
)

// logRing keeps the recent output of one process: the complete lines of each read as one chunk,
// bounded in bytes, so that teeing output into it costs at most one copy per read, not work per
// line, and none for the big reads of a busy stream, whose read buffers it keeps (see keep).
type logRing struct {
	mu     sync.Mutex
	name   string
	max    int        // bytes kept at most: the capacity of the chunks' arrays
	size   int        // guarded by mu
	chunks []logChunk // guarded by mu; chunks[head:] are kept, oldest first
	head   int        // guarded by mu
	spare  []byte     // guarded by mu; the array of a chunk evicted, for add or spareBuf to reuse
	subs   []*logSub  // guarded by mu
	closed bool       // guarded by mu; its instance is gone: a new follower ends at once
}

type logChunk struct {
	time   time.Time
	stream string
	data   []byte // complete lines, each ending with '\n'; never written once in the ring
	mem    []byte // the array data is in, from its start: cap(mem) is what the chunk costs
}

type logSub struct {
	stream string
	feed   *feed[core.LogLine]
}

// Bytes an item holds besides its strings: its value in the feed's queue (core.LogLine is 80 bytes
// on 64-bit Linux, core.Event 88), and the strings' headers.
const itemOverhead = 128

func logLineSize(l *core.LogLine) int {
	return itemOverhead + len(l.Name) + len(l.Stream) + len(l.Line)
}

func markLogLine(l *core.LogLine, lost int) { l.Dropped = lost }

func newLogRing(name string, maxBytes int) *logRing {
	return &logRing{name: name, max: maxBytes}
}

// add stores a copy of the complete lines of one read of stream and hands them to followers. A
// follower that cannot keep up loses lines rather than slowing the process down (see feed).
func (r *logRing) add(stream string, lines []byte) {
	if len(lines) == 0 {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	// A busy process evicts a chunk for about every one it adds: reuse the evicted array rather
	// than allocate one per read, which would keep the garbage collector running at the pace of
	// the output (it halved the relay's throughput). Only an array at most twice the size, so that
	// a small chunk does not hold a big one. Nothing outside the lock refers to chunk data: tail
	// and the followers get copies, as strings.
	var data []byte
	if len(lines) <= cap(r.spare) && cap(r.spare) <= 2*len(lines) {
		data, r.spare = append(r.spare[:0], lines...), nil
	} else {
		data = bytes.Clone(lines)
	}
	r.push(logChunk{time: now, stream: stream, data: data, mem: data})
}

// spareBuf returns a buffer of size bytes for the relay of a busy stream to read into, an evicted
// array when there is one (no allocation per read in a steady stream), or nil when the ring is
// too small to keep two such buffers: then its reads are copied by add, as small ones are, so
// that a ring never holds much more than its bound.
func (r *logRing) spareBuf(size int) []byte {
	if size <= 0 || r.max < 2*size {
		return nil
	}
	r.mu.Lock()
	b := r.spare
	if cap(b) >= size && cap(b) <= 2*size {
		r.spare = nil
	} else {
		b = nil
	}
	r.mu.Unlock()
	if b == nil {
		return make([]byte, size)
	}
	return b[:size]
}

// keep stores lines, complete lines of one read of stream, taking buf, the relay's read buffer
// that holds them, as it is: the relay no longer writes to it.
func (r *logRing) keep(stream string, buf, lines []byte) {
	if len(lines) == 0 {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.push(logChunk{time: now, stream: stream, data: lines, mem: buf[:0]})
}

// push adds c, evicts the oldest chunks beyond the bound but the newest, and hands c's lines to
// the followers. Called with mu held.
func (r *logRing) push(c logChunk) {
	if len(r.chunks) == cap(r.chunks) && r.head > 0 && r.head >= len(r.chunks)/2 {
		// Move the kept chunks to the front rather than let append grow the slice: a ring of a
		// steady stream then never allocates for its list.
		n := copy(r.chunks, r.chunks[r.head:])
		clear(r.chunks[n:])
		r.chunks, r.head = r.chunks[:n], 0
	}
	r.chunks = append(r.chunks, c)
	r.size += cap(c.mem)
	var freed []byte
	for r.size > r.max && len(r.chunks)-r.head > 1 {
		old := r.chunks[r.head].mem
		r.size -= cap(old)
		if cap(old) >= cap(freed) { // a busy stream's buffer rather than a small chunk's
			freed = old
		}
		r.chunks[r.head] = logChunk{}
		r.head++
	}
	if freed != nil {
		r.spare = freed
	}
	var each []core.LogLine // made once, shared by the followers: strings are immutable
	for _, s := range r.subs {
		if s.stream != "" && s.stream != c.stream {
			continue
		}
		if each == nil {
			eachLine(c, func(l core.LogLine) { l.Name = r.name; each = append(each, l) })
		}
		for _, l := range each {
			s.feed.push(l)
		}
	}
}

// tail returns the last n lines of stream ("" = every stream) and, with follow, a channel of the
// lines that come later, closed when ctx ends.
func (r *logRing) tail(ctx context.Context, stream string, n int, follow bool) ([]core.LogLine, <-chan core.LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []core.LogLine
	for i := len(r.chunks) - 1; i >= r.head && len(out) < n; i-- {
		c := r.chunks[i]
		if stream != "" && c.stream != stream {
			continue
		}
		var lines []core.LogLine
		eachLine(c, func(l core.LogLine) { l.Name = r.name; lines = append(lines, l) })
		if need := n - len(out); len(lines) > need {
			lines = lines[len(lines)-need:]
		}
		out = append(lines, out...)
	}
	if !follow {
		return out, nil
	}
	s := &logSub{stream: stream}
	s.feed = newFeed(ctx, logLineSize, markLogLine, func(*feed[core.LogLine]) { r.unsubscribe(s) })
	if r.closed {
		// The instance was removed between the API's look-up and now: nothing will come.
		s.feed.end()
		return out, s.feed.out
	}
	r.subs = append(r.subs, s)
	return out, s.feed.out
}

func (r *logRing) unsubscribe(s *logSub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs = slices.DeleteFunc(r.subs, func(x *logSub) bool { return x == s })
}

// close ends every follower, once it has had what is queued for it: the process is gone for good
// (scaled away).
func (r *logRing) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, s := range r.subs {
		s.feed.end()
	}
	r.subs = nil
}

func eachLine(c logChunk, fn func(core.LogLine)) {
	data := c.data
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data)
		}
		fn(core.LogLine{Time: c.time, Stream: c.stream, Line: string(data[:i])})
		if i == len(data) {
			break
		}
		data = data[i+1:]
	}
}

// eventBus fans gaffer's events out to API followers; a slow follower loses events (see feed).
type eventBus struct {
	mu   sync.Mutex
	subs map[*feed[core.Event]]struct{} // guarded by mu
}

func eventSize(e *core.Event) int {
	n := itemOverhead + len(e.Kind) + len(e.Name) + len(e.Detail)
	if e.Code != nil {
		n += 8
	}
	return n
}

func markEvent(e *core.Event, lost int) { e.Dropped = lost }

func (b *eventBus) emit(e core.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for f := range b.subs {
		f.push(e)
	}
}

func (b *eventBus) subscribe(ctx context.Context) <-chan core.Event {
	f := newFeed(ctx, eventSize, markEvent, func(f *feed[core.Event]) {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, f)
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[*feed[core.Event]]struct{}{}
	}
	b.subs[f] = struct{}{}
	return f.out
}
