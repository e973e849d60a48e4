package pid1

import (
	"bytes"
	"context"
	"sync"
	"time"

	"gaffer/api"
)

// logRing keeps the recent output of one process: the complete lines of each read as one chunk,
// bounded in bytes, so that teeing output into it costs one copy per read, not work per line.
type logRing struct {
	mu     sync.Mutex
	name   string
	max    int        // bytes kept at most
	size   int        // guarded by mu
	chunks []logChunk // guarded by mu; oldest first
	subs   []*logSub  // guarded by mu
}

type logChunk struct {
	time   time.Time
	stream string
	data   []byte // complete lines, each ending with '\n'
}

type logSub struct {
	stream string
	ch     chan api.LogLine
}

func newLogRing(name string, maxBytes int) *logRing {
	return &logRing{name: name, max: maxBytes}
}

// add stores the complete lines of one read of stream and hands them to followers. A follower that
// cannot keep up loses lines rather than slowing the process down.
func (r *logRing) add(stream string, lines []byte) {
	if len(lines) == 0 {
		return
	}
	c := logChunk{time: time.Now(), stream: stream, data: bytes.Clone(lines)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunks = append(r.chunks, c)
	r.size += len(c.data)
	for r.size > r.max && len(r.chunks) > 1 {
		r.size -= len(r.chunks[0].data)
		r.chunks[0] = logChunk{}
		r.chunks = r.chunks[1:]
	}
	for _, s := range r.subs {
		if s.stream != "" && s.stream != stream {
			continue
		}
		eachLine(c, func(l api.LogLine) {
			l.Name = r.name
			select {
			case s.ch <- l:
			default:
			}
		})
	}
}

// tail returns the last n lines of stream ("" = every stream) and, with follow, a channel of the
// lines that come later, closed when ctx ends.
func (r *logRing) tail(ctx context.Context, stream string, n int, follow bool) ([]api.LogLine, <-chan api.LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []api.LogLine
	for i := len(r.chunks) - 1; i >= 0 && len(out) < n; i-- {
		c := r.chunks[i]
		if stream != "" && c.stream != stream {
			continue
		}
		var lines []api.LogLine
		eachLine(c, func(l api.LogLine) { l.Name = r.name; lines = append(lines, l) })
		if need := n - len(out); len(lines) > need {
			lines = lines[len(lines)-need:]
		}
		out = append(lines, out...)
	}
	if !follow {
		return out, nil
	}
	s := &logSub{stream: stream, ch: make(chan api.LogLine, 1024)}
	r.subs = append(r.subs, s)
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, x := range r.subs {
			if x == s {
				r.subs = append(r.subs[:i], r.subs[i+1:]...)
				close(s.ch) // unless close already did
				break
			}
		}
	}()
	return out, s.ch
}

// close ends every follower: the process is gone for good (scaled away).
func (r *logRing) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		close(s.ch)
	}
	r.subs = nil
}

func eachLine(c logChunk, fn func(api.LogLine)) {
	data := c.data
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data)
		}
		fn(api.LogLine{Time: c.time, Stream: c.stream, Line: string(data[:i])})
		if i == len(data) {
			break
		}
		data = data[i+1:]
	}
}

// eventBus fans gaffer's events out to API followers; a slow follower loses events.
type eventBus struct {
	mu   sync.Mutex
	subs map[chan api.Event]struct{} // guarded by mu
}

func (b *eventBus) emit(e api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (b *eventBus) subscribe(ctx context.Context) <-chan api.Event {
	ch := make(chan api.Event, 1024)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan api.Event]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
