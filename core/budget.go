package core

import (
	"context"
	"sync/atomic"
)

// Bounds of what a stream (logs?follow=1, events) keeps for a client that reads slower than lines
// come: lines past a bound are dropped, never waited for, since the producers are the relay and
// gaffer's loop, which must not slow down for a client. The stream tells the client in-band, with
// {"dropped": N} before the next line it delivers. A stats watch queues nothing: it measures when
// the previous snapshot has been written.
const (
	StreamBytes      = 256 << 10 // queued for one stream, counting the line being handed over
	StreamTotalBytes = 8 << 20   // queued for all the streams of one server, but see StreamBudget.Take
)

// StreamBudget counts the bytes queued for the streams of one server, so that they stay under a
// total however many clients follow. It is safe for concurrent use; a nil *StreamBudget has no
// limit.
type StreamBudget struct {
	limit int64
	used  atomic.Int64
}

// NewStreamBudget makes a budget of limit bytes.
func NewStreamBudget(limit int64) *StreamBudget { return &StreamBudget{limit: limit} }

// Take reserves n bytes; it reports false, reserving nothing, when that would pass the limit,
// unless first. A stream's first item (nothing else queued for it) always goes through: streams
// whose clients keep up are not starved by streams whose clients do not, and the limit can be
// passed by one item per stream.
func (b *StreamBudget) Take(n int, first bool) bool {
	if b == nil {
		return true
	}
	for {
		u := b.used.Load()
		if u+int64(n) > b.limit && !first {
			return false
		}
		if b.used.CompareAndSwap(u, u+int64(n)) {
			return true
		}
	}
}

// Release returns n bytes that Take reserved.
func (b *StreamBudget) Release(n int) {
	if b != nil {
		b.used.Add(-int64(n))
	}
}

// Used returns the bytes reserved now.
func (b *StreamBudget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

type budgetKey struct{}

// WithStreamBudget returns ctx carrying b: a server gives it to the Backend with the context of
// every stream (as net/http puts its Server in a request's context), so that what the Backend
// queues for followers counts against the server's total.
func WithStreamBudget(ctx context.Context, b *StreamBudget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

// StreamBudgetFrom returns the budget ctx carries, or nil.
func StreamBudgetFrom(ctx context.Context) *StreamBudget {
	b, _ := ctx.Value(budgetKey{}).(*StreamBudget)
	return b
}
