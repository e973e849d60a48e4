package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"gaffer/cgroup"
	"gaffer/core"
	"gaffer/internal/testutil"
	"gaffer/reaper"

	"golang.org/x/sys/unix"
)

// oomHarness drives resources on a fixture cgroup v2 directory, fake time and fake trees; the
// test goroutine is the loop: it runs what resources posts.
type oomHarness struct {
	t      *testing.T
	dir    string
	clock  *fakeClock
	r      resources
	posted chan func()
	mu     sync.Mutex
	tree   map[int]string // what the next scan finds
	roots  map[string]int
	alive  map[int]bool // running: exit not collected yet
	lines  []string
	events []core.Event
	kills  map[string]int
}

func newOOMHarness(t *testing.T, count int) *oomHarness {
	h := &oomHarness{t: t, dir: t.TempDir(), clock: newFakeClock(), posted: make(chan func(), 16),
		tree: map[int]string{100: "web"}, roots: map[string]int{"web": 100}, alive: map[int]bool{}, kills: map[string]int{}}
	h.write("memory.max", "268435456\n")
	h.write("memory.current", "270000000\n")
	h.write("memory.stat", fmt.Sprintf("anon 1\ninactive_file %d\n", 270000000-255<<20))
	h.setCount(count)
	h.r.init(resourcesConfig{
		cg: cgroup.V2(h.dir, h.dir), clock: h.clock,
		say:  func(format string, args ...any) { h.lines = append(h.lines, fmt.Sprintf(format, args...)) },
		emit: func(e core.Event) { h.events = append(h.events, e) },
		post: func(f func()) { h.posted <- f },
		roots: func() map[string]int {
			out := map[string]int{}
			for k, v := range h.roots {
				out[k] = v
			}
			return out
		},
		running: func(name string, pid int) bool { return h.alive[pid] },
		scan: func(_ map[string]int, _ map[int]string) (map[int]string, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			out := map[int]string{}
			for k, v := range h.tree {
				out[k] = v
			}
			return out, nil
		},
		onKill: func(name string) { h.kills[name]++ },
	})
	h.r.begin()
	return h
}

func (h *oomHarness) write(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *oomHarness) setCount(n int) {
	h.write("memory.events", fmt.Sprintf("low 0\nhigh 0\nmax 9\noom %d\noom_kill %d\noom_group_kill 0\n", n, n))
}

func (h *oomHarness) setTree(tree map[int]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tree = tree
}

// look moves the clock by d and runs, as the loop, what that brings: a look begins, runs on its
// goroutine, and is applied.
func (h *oomHarness) look(d time.Duration) {
	h.t.Helper()
	h.clock.advance(d, func() {})
	for range 2 { // startLook, then apply
		select {
		case f := <-h.posted:
			f()
		case <-time.After(10 * time.Second):
			h.t.Fatal("no look within 10s")
		}
	}
}

func (h *oomHarness) takeLines() []string {
	l := h.lines
	h.lines = nil
	return l
}

const (
	statusExit0   = unix.WaitStatus(0)
	statusExit137 = unix.WaitStatus(137 << 8)
	statusTERM    = unix.WaitStatus(unix.SIGTERM)
	statusKILL    = unix.WaitStatus(unix.SIGKILL)
)

func TestExitReason(t *testing.T) {
	h := newOOMHarness(t, 3)
	for _, tc := range []struct {
		st       unix.WaitStatus
		byGaffer bool
		want     string
	}{
		{statusExit0, false, core.ExitReasonExit},
		{statusExit137, false, core.ExitReasonExit}, // exit(137) is no SIGKILL
		{statusTERM, false, core.ExitReasonSignal},
		{statusKILL, false, core.ExitReasonSignal}, // the count did not rise
	} {
		if got := h.r.exited("web", 100, tc.st, tc.byGaffer); got != tc.want {
			t.Errorf("status %#x: %q, want %q", tc.st, got, tc.want)
		}
	}
	h.setCount(4)
	if got := h.r.exited("web", 100, statusKILL, true); got != core.ExitReasonSignal {
		t.Errorf("SIGKILL sent by gaffer while the count rose: %q, want signal (the look judges the rise)", got)
	}
	if got := h.r.exited("web", 100, statusKILL, false); got != core.ExitReasonOOM {
		t.Errorf("SIGKILL with the count risen: %q, want oom", got)
	}
	want := []string{"web was killed by the OOM killer (memory limit 256 MiB, working set 255 MiB)"}
	if got := h.takeLines(); !reflect.DeepEqual(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	if len(h.events) != 1 || h.events[0].Kind != "oom" || h.events[0].Name != "web" || h.events[0].Pid != 100 {
		t.Errorf("events %+v, want one oom event of web", h.events)
	}
	// The rise was taken: the next SIGKILL is a signal again, and the look says nothing.
	if got := h.r.exited("web", 100, statusKILL, false); got != core.ExitReasonSignal {
		t.Errorf("second SIGKILL without a new rise: %q", got)
	}
	h.look(oomLookSoon)
	if got := h.takeLines(); got != nil || h.kills["web"] != 1 {
		t.Errorf("after the look: lines %q, kills %v", got, h.kills)
	}
}

// TestOOMLook: a rise that no supervised process died of is said with what the trees lost.
func TestOOMLook(t *testing.T) {
	h := newOOMHarness(t, 3)
	h.setTree(map[int]string{100: "web", 812: "web", 813: "web", 200: "db"})
	h.roots["db"] = 200
	h.look(oomLookEvery)
	if got := h.takeLines(); got != nil {
		t.Fatalf("a look without a rise said %q", got)
	}
	// 812 was OOM-killed and its parent reaped it; gaffer reaped 900, an orphan, of SIGKILL.
	h.setCount(5)
	h.setTree(map[int]string{100: "web", 813: "web", 200: "db"})
	h.r.reaped([]reaper.Exit{{Pid: 900, Status: statusKILL}, {Pid: 901, Status: statusExit0}})
	h.look(oomLookSoon) // a SIGKILLed orphan brings the look forward
	want := []string{"the OOM killer killed a process in the container (oom_kill 3 -> 5); web's tree lost pid 812; gaffer reaped pid 900, killed by SIGKILL"}
	if got := h.takeLines(); !reflect.DeepEqual(got, want) {
		t.Errorf("lines\n%q\nwant\n%q", got, want)
	}
	if h.kills["web"] != 1 || h.kills["db"] != 0 {
		t.Errorf("kills %v, want web 1", h.kills)
	}
	if e := h.events[len(h.events)-1]; e.Kind != "oom" || e.Name != "web" || e.Detail != want[0] {
		t.Errorf("event %+v", e)
	}

	// The count read before a kill that an exit already took must not take the count back.
	h.r.last = 7
	h.look(oomLookEvery)
	if h.r.last != 7 {
		t.Errorf("last went back to %d", h.r.last)
	}
	if got := h.takeLines(); got != nil {
		t.Errorf("stale look said %q", got)
	}
}

// TestOOMLookWaitsForTheExit: a look that finds a supervised process gone before the loop
// collected its exit leaves the rise to that exit.
func TestOOMLookWaitsForTheExit(t *testing.T) {
	h := newOOMHarness(t, 0)
	h.look(oomLookEvery)
	h.setCount(1)
	h.setTree(map[int]string{})
	h.alive[100] = true
	h.look(oomLookEvery)
	if got := h.takeLines(); got != nil || h.r.last != 0 {
		t.Fatalf("look before the exit: lines %q, last %d", got, h.r.last)
	}
	delete(h.alive, 100)
	if got := h.r.exited("web", 100, statusKILL, false); got != core.ExitReasonOOM {
		t.Errorf("exit after the look: %q, want oom", got)
	}
	delete(h.roots, "web")
	h.look(oomLookSoon)
	if got := h.takeLines(); len(got) != 1 || got[0] != "web was killed by the OOM killer (memory limit 256 MiB, working set 255 MiB)" {
		t.Errorf("lines %q: want the exit's line only", got)
	}
}

func TestOOMState(t *testing.T) {
	var o oomState
	if r, _ := o.view(-1); r != "" {
		t.Errorf("before the first exit: %q", r)
	}
	o.set(core.ExitReasonOOM, 137)
	o.kills = 2
	if r, n := o.view(137); r != core.ExitReasonOOM || n != 2 {
		t.Errorf("view(137) = %q, %d", r, n)
	}
	// A start that failed afterwards (127) is an exit.
	if r, _ := o.view(127); r != core.ExitReasonExit {
		t.Errorf("view(127) = %q", r)
	}
}

func TestMiB(t *testing.T) {
	for n, want := range map[uint64]string{
		256 << 20: "256 MiB", 255<<20 + 1<<19: "256 MiB", 1 << 19: "512 KiB", 0: "0 KiB",
		3 << 29: "1536 MiB", 12 << 30: "12.0 GiB",
	} {
		if got := mib(n); got != want {
			t.Errorf("mib(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTrees: the walk down from the roots and the scan of /proc find the same trees: a child
// and its grandchild, not a zombie, nothing of a root that does not exist; with few allocations.
func TestTrees(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 100 & (exit 3) & sleep 100")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	roots := map[string]int{"sh": cmd.Process.Pid, "gone": 1 << 30}
	var tr treeReader
	if _, err := tr.read(roots, nil); err != nil { // the buffers
		t.Fatal(err)
	}
	scanned := map[int]string{}
	testutil.WaitFor(t, 10*time.Second, "sh and its two sleeps", func() bool {
		clear(scanned)
		if err := tr.scan(roots, scanned); err != nil {
			t.Fatal(err)
		}
		return len(scanned) == 3
	})
	walked := map[int]string{}
	err := tr.walk(roots, walked)
	if errors.Is(err, errNoChildren) {
		t.Skip("this kernel has no /proc/PID/task/TID/children")
	}
	if err != nil || !reflect.DeepEqual(walked, scanned) {
		t.Errorf("walk %v (%v), scan %v: want the same three processes of sh", walked, err, scanned)
	}
	// The paths handed to the kernel are the allocations: a few per process, none per /proc entry.
	into := map[int]string{}
	if n := testing.AllocsPerRun(10, func() { _, _ = tr.read(roots, into) }); n > 40 {
		t.Errorf("%.0f allocations per read of a tree of 3", n)
	}
}

// BenchmarkTrees is the cost of one look's read of the trees on this machine: a scan of /proc
// (as PID 1), and the walk down from a small tree (a process and its children).
func BenchmarkTrees(b *testing.B) {
	cmd := exec.Command("sh", "-c", "sleep 100 & sleep 100 & sleep 100")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	roots := map[string]int{"sh": cmd.Process.Pid}
	entries, _ := os.ReadDir("/proc")
	var tr treeReader
	into, _ := tr.read(roots, nil)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(into)
			if err := tr.scan(roots, into); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(entries)), "proc-entries")
	})
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(into)
			if err := tr.walk(roots, into); err != nil {
				b.Skip(err)
			}
		}
	})
}
