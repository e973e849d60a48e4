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
// bounded in bytes, so that teeing output into it costs one copy per read, not work per line.
type logRing struct {
	mu     sync.Mutex
	name   string
	max    int        // bytes kept at most
	size   int        // guarded by mu
	chunks []logChunk // guarded by mu; oldest first
	spare  []byte     // guarded by mu; the array of a chunk evicted, for add to reuse
	subs   []*logSub  // guarded by mu
	closed bool       // guarded by mu; its instance is gone: a new follower ends at once
}

type logChunk struct {
	time   time.Time
	stream string
	data   []byte // complete lines, each ending with '\n'
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

// add stores the complete lines of one read of stream and hands them to followers. A follower that
// cannot keep up loses lines rather than slowing the process down (see feed).
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
	c := logChunk{time: now, stream: stream, data: data}
	r.chunks = append(r.chunks, c)
	r.size += len(data)
	for r.size > r.max && len(r.chunks) > 1 {
		r.size -= len(r.chunks[0].data)
		r.spare = r.chunks[0].data
		r.chunks[0] = logChunk{}
		r.chunks = r.chunks[1:]
	}
	var each []core.LogLine // made once, shared by the followers: strings are immutable
	for _, s := range r.subs {
		if s.stream != "" && s.stream != stream {
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
	for i := len(r.chunks) - 1; i >= 0 && len(out) < n; i-- {
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
