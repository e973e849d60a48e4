package stats

import (
	"context"
	"errors"
	"gaffer/internal/testutil"
	"math"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// start starts argv as a child in its own process group and kills the whole group (grandchildren
// too) when the test ends.
func start(tb testing.TB, argv ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("cannot start %q: %v", argv, err)
	}
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// childrenOf lists the children of pid from a fresh scan of /proc.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	var w worker
	w.init()
	if err := w.scan(); err != nil {
		t.Fatal(err)
	}
	return w.children(pid, nil)
}

// sameProc compares a and b, the floats up to rounding: sums in another order may differ.
func sameProc(a, b Proc) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(x)) }
	if !near(a.CPUPercent, b.CPUPercent) || !near(a.CPUUserS, b.CPUUserS) ||
		!near(a.CPUSystemS, b.CPUSystemS) || !near(a.MemoryPercent, b.MemoryPercent) {
		return false
	}
	a.CPUPercent, a.CPUUserS, a.CPUSystemS, a.MemoryPercent = b.CPUPercent, b.CPUUserS, b.CPUSystemS, b.MemoryPercent
	return a == b
}

func snapshot(t *testing.T, c *Collector, pids map[string]int) Snapshot {
	t.Helper()
	snap, err := c.Snapshot(context.Background(), pids)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return snap
}

func entry(t *testing.T, snap Snapshot, name string) Entry {
	t.Helper()
	e, ok := snap.Entry(name)
	if !ok {
		t.Fatalf("no entry %q in %+v", name, snap.Processes)
	}
	return e
}

func TestSnapshotRealChildren(t *testing.T) {
	sleeper := start(t, "sleep", "60")
	busy := start(t, "sh", "-c", "while :; do :; done")
	parent := start(t, "sh", "-c", "sleep 60 & sleep 60 & wait")
	pids := map[string]int{"sleep": sleeper.Process.Pid, "busy": busy.Process.Pid, "parent": parent.Process.Pid}

	c := NewCollector(Options{TTL: -1})
	testutil.WaitFor(t, 5*time.Second, "two grandchildren", func() bool { return len(childrenOf(t, parent.Process.Pid)) == 2 })
	first := snapshot(t, c, pids)

	if len(first.Processes) != 3 {
		t.Fatalf("got %d entries, want 3: %+v", len(first.Processes), first.Processes)
	}
	for i, want := range []string{"busy", "parent", "sleep"} {
		if e := first.Processes[i]; e.Name != want || e.Pid != pids[want] {
			t.Errorf("entry %d = %s/%d, want %s/%d", i, e.Name, e.Pid, want, pids[want])
		}
	}
	s := entry(t, first, "sleep")
	if s.MemoryRSS == 0 || s.MemoryVMS < s.MemoryRSS || s.MemoryPercent <= 0 {
		t.Errorf("sleep memory: rss %d vms %d %.3f%%", s.MemoryRSS, s.MemoryVMS, s.MemoryPercent)
	}
	if s.NumFDs < 3 || s.NumThreads != 1 || s.CtxSwitches <= 0 || s.Procs != 1 {
		t.Errorf("sleep: fds %d threads %d ctx switches %d procs %d", s.NumFDs, s.NumThreads, s.CtxSwitches, s.Procs)
	}
	if s.Tree != s.Proc {
		t.Errorf("sleep has no children, yet its tree %+v differs from itself %+v", s.Tree, s.Proc)
	}

	// The parent's tree holds it and its two sleeps: measure those under their own names too.
	grand := childrenOf(t, parent.Process.Pid)
	both := map[string]int{"parent": parent.Process.Pid, "g1": grand[0], "g2": grand[1]}
	snap := snapshot(t, c, both)
	p, g1, g2 := entry(t, snap, "parent"), entry(t, snap, "g1"), entry(t, snap, "g2")
	if p.Procs != 3 {
		t.Errorf("parent tree holds %d processes, want 3", p.Procs)
	}
	if sum := p.NumThreads + g1.NumThreads + g2.NumThreads; p.Tree.NumThreads < sum {
		t.Errorf("tree threads %d < sum of its processes %d", p.Tree.NumThreads, sum)
	}
	if sum := p.MemoryRSS + g1.MemoryRSS + g2.MemoryRSS; p.Tree.MemoryRSS != sum {
		t.Errorf("tree rss %d, want the sum %d", p.Tree.MemoryRSS, sum)
	}
	if !sameProc(snap.Total, p.Tree) {
		t.Errorf("total counts each process once: got %+v, want the parent's tree %+v", snap.Total, p.Tree)
	}
	if snap.Gaffer.MemoryRSS == 0 || snap.Gaffer.NumThreads < 1 || snap.Gaffer.NumFDs < 3 {
		t.Errorf("own stats: %+v", snap.Gaffer)
	}

	// The busy loop uses what cpu it gets: a whole one on an idle machine, at least a fifth of
	// one when both cpus are kept busy by other loops (the suite must pass so). After a while,
	// a collection shows it.
	before := snapshot(t, c, pids)
	var b Entry
	testutil.WaitFor(t, 30*time.Second, "the busy loop to use cpu", func() bool {
		snap := snapshot(t, c, pids)
		if snap.Time.Sub(before.Time) < 300*time.Millisecond {
			return false
		}
		b = entry(t, snap, "busy")
		return b.CPUPercent > 20
	})
	if b.CPUUserS+b.CPUSystemS <= 0 || b.Tree.CPUPercent < b.CPUPercent {
		t.Errorf("busy: %+v", b)
	}
	if sl := entry(t, snapshot(t, c, pids), "sleep"); sl.CPUPercent > 10 {
		t.Errorf("sleep uses %.1f%% cpu", sl.CPUPercent)
	}
}

func TestSnapshotChildrenCPU(t *testing.T) {
	// The busy child counts to 200000 (about 0.2 s of cpu, however long the wall time on a busy
	// machine), then the shell waits for it and sleeps: the child's cpu time stays in the shell's
	// tree as cpu_children_s.
	sh := start(t, "sh", "-c", "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; exec sleep 60")
	c := NewCollector(Options{TTL: -1})
	pids := map[string]int{"sh": sh.Process.Pid}
	var e Entry
	testutil.WaitFor(t, 60*time.Second, "the waited-for child's cpu time", func() bool {
		e = entry(t, snapshot(t, c, pids), "sh")
		return e.Procs == 1 && e.CPUChildrenS >= 0.1
	})
	if e.Tree.CPUChildrenS != e.CPUChildrenS {
		t.Errorf("tree children cpu %v, want %v", e.Tree.CPUChildrenS, e.CPUChildrenS)
	}
}

func TestSnapshotSkipsVanished(t *testing.T) {
	alive := start(t, "sleep", "60")
	dead := start(t, "sleep", "60")
	late := start(t, "sleep", "60")
	if err := dead.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = dead.Wait()

	c := NewCollector(Options{TTL: -1})
	// late is in the scan, then dies before it is measured.
	c.w.afterScan = func() {
		_ = late.Process.Kill()
		_ = late.Wait()
	}
	snap := snapshot(t, c, map[string]int{"alive": alive.Process.Pid, "dead": dead.Process.Pid, "late": late.Process.Pid, "zero": 0})
	if len(snap.Processes) != 1 || snap.Processes[0].Name != "alive" {
		t.Fatalf("want only alive, got %+v", snap.Processes)
	}
	if !sameProc(snap.Total, snap.Processes[0].Tree) {
		t.Errorf("total %+v counts vanished processes", snap.Total)
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (c *Collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.collections
}

func TestSnapshotTTL(t *testing.T) {
	pids := map[string]int{"sleep": start(t, "sleep", "60").Process.Pid}
	clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := NewCollector(Options{TTL: time.Second, Now: clock.Now})

	first := snapshot(t, c, pids)
	if !first.Time.Equal(clock.Now()) {
		t.Fatalf("Time %v, want the clock's %v", first.Time, clock.Now())
	}
	clock.advance(999 * time.Millisecond)
	if again := snapshot(t, c, pids); !again.Time.Equal(first.Time) || c.count() != 1 {
		t.Fatalf("within the TTL: Time %v (want %v), %d collections", again.Time, first.Time, c.count())
	}
	clock.advance(time.Millisecond)
	// Just expired: the last one answers at once while a single refresh runs.
	if stale := snapshot(t, c, pids); !stale.Time.Equal(first.Time) || c.count() != 2 {
		t.Fatalf("just after the TTL: Time %v (want the last %v), %d collections", stale.Time, first.Time, c.count())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !snapshot(t, c, pids).Time.After(first.Time) {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never replaced the expired snapshot")
		}
		time.Sleep(time.Millisecond)
	}
	if c.count() != 2 {
		t.Fatalf("%d collections, want 2: callers during the refresh must share it", c.count())
	}
	// Long expired: the caller waits for a fresh one.
	clock.advance(3 * time.Second)
	if later := snapshot(t, c, pids); !later.Time.Equal(clock.Now()) || c.count() != 3 {
		t.Fatalf("long after the TTL: Time %v (want %v), %d collections", later.Time, clock.Now(), c.count())
	}
	// Other pids never get a cached answer for the old ones.
	if other := snapshot(t, c, map[string]int{}); len(other.Processes) != 0 || c.count() != 4 {
		t.Fatalf("other pids: %+v, %d collections", other.Processes, c.count())
	}
}

func TestSnapshotConcurrentCallersShareOneCollection(t *testing.T) {
	pids := map[string]int{"sleep": start(t, "sleep", "60").Process.Pid}
	c := NewCollector(Options{TTL: -1}) // no cache: only the single flight can share
	release := make(chan struct{})
	c.beforeCollect = func() { <-release }

	const callers = 20
	var wg sync.WaitGroup
	times := make([]time.Time, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap, err := c.Snapshot(context.Background(), pids)
			times[i], errs[i] = snap.Time, err
		}()
	}
	testutil.WaitFor(t, 5*time.Second, "every caller to wait for the collection", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.inflight != nil && c.inflight.waiters == callers
	})
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || !times[i].Equal(times[0]) {
			t.Errorf("caller %d: Time %v err %v, want Time %v", i, times[i], errs[i], times[0])
		}
	}
	if n := c.count(); n != 1 {
		t.Errorf("%d collections, want 1", n)
	}
}

func TestSnapshotTimeout(t *testing.T) {
	pids := map[string]int{"sleep": start(t, "sleep", "60").Process.Pid}
	c := NewCollector(Options{TTL: -1, Timeout: 50 * time.Millisecond})
	block := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(block) }) }
	t.Cleanup(unblock)
	var mu sync.Mutex
	blocking := true
	c.beforeCollect = func() {
		mu.Lock()
		b := blocking
		mu.Unlock()
		if b {
			<-block
		}
	}

	// Nothing collected yet: the caller gets an error, in time.
	t0 := time.Now()
	if _, err := c.Snapshot(context.Background(), pids); err == nil {
		t.Fatal("no error although the collection hangs and there is no older snapshot")
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Snapshot took %v with a timeout of 50ms", d)
	}

	// Let it finish: that one is the last snapshot now.
	mu.Lock()
	blocking = false
	mu.Unlock()
	unblock()
	var good Snapshot
	testutil.WaitFor(t, 5*time.Second, "a collection", func() bool {
		snap, err := c.Snapshot(context.Background(), pids)
		good = snap
		return err == nil && len(snap.Processes) == 1
	})

	// A hanging collection again: the caller gets the last snapshot.
	block2 := make(chan struct{})
	t.Cleanup(func() { close(block2) })
	c.beforeCollect = func() { <-block2 }
	stale, err := c.Snapshot(context.Background(), pids)
	if err != nil || !stale.Time.Equal(good.Time) {
		t.Errorf("on timeout: Time %v err %v, want the last snapshot's %v", stale.Time, err, good.Time)
	}

	// A caller whose context ends stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Snapshot(ctx, pids); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err %v", err)
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     rec
		ok       bool
	}{
		{"plain", "42 (sleep) S 7 42 42 0 -1 4194304 91 0 0 0 5 6 8 9 20 0 3 0 1234 8421376 142 18446744073709551615",
			rec{ppid: 7, utime: 5, stime: 6, cutime: 8, cstime: 9, threads: 3, start: 1234}, true},
		{"comm with spaces and parens", "42 (a) b (c) R 1 42 42 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 99 1 1 1",
			rec{ppid: 1, utime: 3, stime: 4, threads: 1, start: 99}, true},
		{"starttime last, then a newline", "5 (x) S 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 77\n",
			rec{ppid: 2, threads: 1, start: 77}, true},
		{"no paren", "42 sleep S 7", rec{}, false},
		{"short", "42 (sleep) S", rec{}, false},
		{"bad ppid", "42 (sleep) S x 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 5", rec{}, false},
		{"bad starttime", "42 (sleep) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 -5", rec{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := parseStat([]byte(tc.in))
			if ok != tc.ok || r != tc.want {
				t.Errorf("parseStat(%q) = %+v %v, want %+v %v", tc.in, r, ok, tc.want, tc.ok)
			}
		})
	}
}

// BenchmarkSnapshot100 measures one uncached collection of 100 sleeping children.
func BenchmarkSnapshot100(b *testing.B) {
	pids := make(map[string]int, 100)
	for i := range 100 {
		pids["sleep."+string(rune('a'+i/26))+string(rune('a'+i%26))] = start(b, "sleep", "600").Process.Pid
	}
	c := NewCollector(Options{TTL: -1})
	ctx := context.Background()
	if snap, err := c.Snapshot(ctx, pids); err != nil || len(snap.Processes) != 100 {
		b.Fatalf("Snapshot: %d entries, %v", len(snap.Processes), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Snapshot(ctx, pids); err != nil {
			b.Fatal(err)
		}
	}
}
