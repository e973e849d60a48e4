package stats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"
)

// Defaults for the zero Options.
const (
	DefaultTTL     = 500 * time.Millisecond // how long one collection is reused
	DefaultTimeout = time.Second            // how long one collection may take
)

// Options configure a Collector. The zero value is ready to use.
type Options struct {
	// TTL is how long a collection is reused: a caller asking for the same pids within TTL of the
	// last collection gets that Snapshot again. Zero means DefaultTTL; negative turns the cache off
	// (callers arriving while a collection runs still share it).
	TTL time.Duration
	// Timeout bounds one collection. A caller that waits longer gets the last Snapshot, or an error
	// when there is none yet. Zero means DefaultTimeout; negative means no bound.
	Timeout time.Duration
	// Now is the clock of Snapshot.Time, of the TTL and of cpu_percent; nil means time.Now.
	Now func() time.Time
}

// Collector measures named processes and their descendants. Only one collection runs at a time:
// concurrent callers share it, and callers within the TTL share its result. It is safe for use by
// many goroutines.
type Collector struct {
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	self    int // gaffer's own pid

	mu          sync.Mutex
	last        *call // guarded by mu: the newest successful collection, nil before the first
	inflight    *call // guarded by mu: the collection running now, nil when none
	collections int   // guarded by mu: how many collections were started (for tests)

	beforeCollect func() // tests: runs in the collecting goroutine before it collects

	// w and container are used only by the goroutine running a collection; inflight makes sure
	// there is one.
	w         worker
	container containerState
}

// call is one collection: its input and, once done is closed, its result.
type call struct {
	pids    map[string]int
	waiters int // guarded by Collector.mu: callers waiting for it (for tests)
	done    chan struct{}
	snap    Snapshot
	err     error
}

// NewCollector returns a Collector configured by opts.
func NewCollector(opts Options) *Collector {
	c := &Collector{ttl: opts.TTL, timeout: opts.Timeout, now: opts.Now, self: os.Getpid()}
	if c.ttl == 0 {
		c.ttl = DefaultTTL
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.w.init()
	c.container.init(c.now())
	return c
}

// Snapshot measures every process in pids (name -> pid of a running process) with all its
// descendants, and gaffer itself. A pid that is gone is left out. The result may come from the
// cache (see Options.TTL; for one more TTL after it expired, the last result is served while a
// single refresh runs) or, when the collection takes longer than Options.Timeout, be the last
// one taken; Snapshot.Time tells its age. The returned Processes slice is shared with other
// callers: treat it as read-only.
func (c *Collector) Snapshot(ctx context.Context, pids map[string]int) (Snapshot, error) {
	var deadline <-chan time.Time
	if c.timeout > 0 {
		t := time.NewTimer(c.timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		c.mu.Lock()
		if c.fresh(pids) {
			snap := c.last.snap
			c.mu.Unlock()
			return snap, nil
		}
		if c.recent(pids) {
			// Just expired: answer with it while one refresh runs, so that callers never all
			// wait for a collection (the latency spikes of a plain cache).
			if c.inflight == nil {
				c.start(pids)
			}
			snap := c.last.snap
			c.mu.Unlock()
			return snap, nil
		}
		cl := c.inflight
		if cl == nil {
			cl = c.start(pids)
		}
		cl.waiters++
		c.mu.Unlock()

		select {
		case <-cl.done:
			if !maps.Equal(cl.pids, pids) {
				continue // someone else's collection: now it is our turn, or the cache has ours
			}
			if cl.err != nil {
				return c.stale(cl.err)
			}
			return cl.snap, nil
		case <-deadline:
			return c.stale(fmt.Errorf("timed out after %v", c.timeout))
		case <-ctx.Done():
			return Snapshot{}, fmt.Errorf("cannot collect stats: %w", ctx.Err())
		}
	}
}

// fresh reports whether the last collection may be reused for pids. Called with mu held.
func (c *Collector) fresh(pids map[string]int) bool {
	if c.last == nil || c.ttl < 0 {
		return false
	}
	return c.now().Sub(c.last.snap.Time) < c.ttl && maps.Equal(c.last.pids, pids)
}

// recent reports whether the last collection for the same pids expired less than a TTL ago, so
// that it may still be served while a new one is taken. Called with mu held.
func (c *Collector) recent(pids map[string]int) bool {
	if c.last == nil || c.ttl <= 0 {
		return false
	}
	return c.now().Sub(c.last.snap.Time) < 2*c.ttl && maps.Equal(c.last.pids, pids)
}

// stale returns the last Snapshot when there is one, or else an error made from why the new one
// is missing.
func (c *Collector) stale(why error) (Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil {
		return c.last.snap, nil
	}
	return Snapshot{}, fmt.Errorf("cannot collect stats: %w", why)
}

// start begins a collection for pids in its own goroutine, so that no caller's context cancels
// what the others wait for. Called with mu held and no collection running.
func (c *Collector) start(pids map[string]int) *call {
	cl := &call{pids: maps.Clone(pids), done: make(chan struct{})}
	if cl.pids == nil {
		cl.pids = map[string]int{} // maps.Equal treats nil and empty alike; keep it non-nil anyway
	}
	c.inflight = cl
	c.collections++
	go c.run(cl)
	return cl
}

// run performs the collection cl and publishes its result.
func (c *Collector) run(cl *call) {
	ctx := context.Background()
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if c.beforeCollect != nil {
		c.beforeCollect()
	}
	snap, err := c.collect(ctx, cl.pids)

	c.mu.Lock()
	cl.snap, cl.err = snap, err
	if err == nil {
		c.last = cl
	}
	c.inflight = nil
	c.mu.Unlock()
	close(cl.done)
}

// collect runs one collection. gopsutil (the machine's memory) parses /proc files by index; a
// panic in there must never take PID 1 down, so it becomes an error.
func (c *Collector) collect(ctx context.Context, pids map[string]int) (snap Snapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			snap, err = Snapshot{}, fmt.Errorf("cannot collect stats: panic: %v", r)
		}
	}()
	if snap, err = c.w.collect(ctx, c.now(), c.self, pids); err == nil {
		c.container.read(&snap)
	}
	return snap, err
}

// names returns the keys of pids in order, so that Snapshot.Processes is sorted by name.
func names(pids map[string]int) []string {
	return slices.Sorted(maps.Keys(pids))
}

// Entry returns the entry of the process called name.
func (s Snapshot) Entry(name string) (Entry, bool) {
	for _, e := range s.Processes {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// errVanished marks a process that exited while it was being measured.
var errVanished = errors.New("process vanished")
