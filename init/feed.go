package pid1

import (
	"context"
	"sync"

	"gaffer/core"
)

// feed is the queue of one API follower (of logs or events). The producer (the relay's Tap, the
// loop) pushes without ever waiting: what does not fit in the follower's bytes, or in the server's
// budget for all streams, is dropped and counted, and the next item queued carries the count. A
// goroutine hands the items to the follower's channel one at a time; the channel is unbuffered,
// so that everything waiting is in the queue and counted.
type feed[T any] struct {
	out    chan T
	wake   chan struct{} // one token: items were pushed, or the producer ended
	limit  int           // bytes queued at most
	budget *core.StreamBudget
	size   func(*T) int   // bytes an item holds, its own value included
	mark   func(*T, int)  // records on an item the number lost before it
	gone   func(*feed[T]) // called once the follower has left, to unsubscribe
	mu     sync.Mutex
	items  []T  // guarded by mu; oldest first, from head
	head   int  // guarded by mu
	bytes  int  // guarded by mu: of items, and of the item being handed over
	lost   int  // guarded by mu: dropped since the last item queued
	ended  bool // guarded by mu: push queues nothing more
}

// newFeed starts the feed of a follower whose context is ctx; gone is called once ctx has ended.
func newFeed[T any](ctx context.Context, size func(*T) int, mark func(*T, int), gone func(*feed[T])) *feed[T] {
	f := &feed[T]{
		out:    make(chan T),
		wake:   make(chan struct{}, 1),
		limit:  core.StreamBytes,
		budget: core.StreamBudgetFrom(ctx),
		size:   size,
		mark:   mark,
		gone:   gone,
	}
	go f.run(ctx)
	return f
}

// push queues it, or drops it when the follower has too much waiting. It never blocks.
func (f *feed[T]) push(it T) {
	n := f.size(&it)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	if f.bytes+n > f.limit || !f.budget.Take(n, f.bytes == 0) {
		f.lost++
		return
	}
	if f.lost > 0 {
		f.mark(&it, f.lost)
		f.lost = 0
	}
	f.items = append(f.items, it)
	f.bytes += n
	f.poke()
}

// end says the producer is done: the follower gets what is queued, then the end of its channel.
func (f *feed[T]) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	f.poke()
}

func (f *feed[T]) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest item; ok is false when there is none.
func (f *feed[T]) next() (it T, n int, ok, ended bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.head == len(f.items) {
		return it, 0, false, f.ended
	}
	it = f.items[f.head]
	var zero T
	f.items[f.head] = zero // the queue no longer holds what it delivers
	f.head++
	if f.head == len(f.items) {
		// Empty: start over, and let a big backing array go.
		f.head = 0
		f.items = f.items[:0]
		if cap(f.items) > 64 {
			f.items = nil
		}
	}
	return it, f.size(&it), true, f.ended
}

// release gives back the bytes of an item that has been handed over (or never will be).
func (f *feed[T]) release(n int) {
	f.mu.Lock()
	f.bytes -= n
	f.mu.Unlock()
	f.budget.Release(n)
}

// run hands items over until the producer ended and the queue is empty, or the follower left.
func (f *feed[T]) run(ctx context.Context) {
	defer close(f.out)
	defer f.gone(f)
	for {
		it, n, ok, ended := f.next()
		if !ok {
			if ended {
				return
			}
			select {
			case <-f.wake:
				continue
			case <-ctx.Done():
				f.stop()
				return
			}
		}
		select {
		case f.out <- it:
			f.release(n)
		case <-ctx.Done():
			f.release(n)
			f.stop()
			return
		}
	}
}

// stop drops what is queued: the follower has left.
func (f *feed[T]) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	f.budget.Release(f.bytes)
	f.bytes = 0
	f.items, f.head = nil, 0
}
