package pid1

import (
	"context"
	"gaffer/internal/testutil"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gaffer/config"
	"gaffer/reaper"

	"golang.org/x/sys/unix"
)

// fakeClock is a Clock that moves only when a test says so.
type fakeClock struct {
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func (t *fakeTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// advance moves the clock by d, firing due timers in the order of their instants; each fires
// at its own instant, and step runs after each, so that what it arms is seen in time.
func (c *fakeClock) advance(d time.Duration, step func()) {
	end := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.fired && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		c.now = next.at
		next.fired = true
		next.f()
		step()
	}
	c.now = end
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.stopped || t.fired })
}

// fakeChild is a process that exists only in the test.
type fakeChild struct {
	pid     int
	exit    chan reaper.Exit
	signals []syscall.Signal
	// stubborn: it ignores every signal but SIGKILL; unkillable: that too (stuck in the kernel).
	stubborn   bool
	unkillable bool
	dead       bool
}

func (c *fakeChild) PID() int                 { return c.pid }
func (c *fakeChild) Exit() <-chan reaper.Exit { return c.exit }
func (c *fakeChild) Release()                 {}

func (c *fakeChild) Signal(sig syscall.Signal) error {
	c.signals = append(c.signals, sig)
	return nil
}

func (c *fakeChild) SignalGroup(sig syscall.Signal) error {
	c.signals = append(c.signals, sig)
	if c.unkillable {
		return nil
	}
	if sig == syscall.SIGKILL || (!c.stubborn && sig != syscall.SIGUSR1 && sig != syscall.SIGHUP) {
		c.die(128 + int(sig))
	}
	return nil
}

// die makes the process exit with code; the supervisor sees it at its next reap.
func (c *fakeChild) die(code int) {
	if c.dead {
		return
	}
	c.dead = true
	ws := unix.WaitStatus(code << 8)
	if code > 128 {
		ws = unix.WaitStatus(code - 128)
	}
	c.exit <- reaper.Exit{Pid: c.pid, Status: ws}
}

// fakeLauncher starts fake children.
type fakeLauncher struct {
	next       int
	children   map[string][]*fakeChild // by instance name, oldest first
	probes     map[string][]*fakeChild
	fail       map[string]error // start of these processes (config names) fails
	stubborn   map[string]bool
	stuck      map[string]bool // processes that not even SIGKILL ends
	endedNames []string
}

func newFakeLauncher() *fakeLauncher {
	return &fakeLauncher{next: 100, children: map[string][]*fakeChild{}, probes: map[string][]*fakeChild{}, fail: map[string]error{}, stubborn: map[string]bool{}, stuck: map[string]bool{}}
}

func (l *fakeLauncher) newChild() *fakeChild {
	l.next++
	return &fakeChild{pid: l.next, exit: make(chan reaper.Exit, 1)}
}

func (l *fakeLauncher) start(in *instance) (child, error) {
	if err := l.fail[in.cfg.Name]; err != nil {
		return nil, err
	}
	c := l.newChild()
	c.stubborn = l.stubborn[in.cfg.Name]
	c.unkillable = l.stuck[in.cfg.Name]
	l.children[in.name] = append(l.children[in.name], c)
	return c, nil
}

func (l *fakeLauncher) startProbe(in *instance, _ string) (child, error) {
	c := l.newChild()
	l.probes[in.name] = append(l.probes[in.name], c)
	return c, nil
}

func (l *fakeLauncher) check(context.Context, config.Probe) error { return nil }

func (l *fakeLauncher) ended(in *instance) { l.endedNames = append(l.endedNames, in.name) }

// transitions records the moves made, across harnesses.
type transitions struct {
	mu   sync.Mutex
	seen map[[2]state]bool
}

func (tr *transitions) add(from, to state) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.seen == nil {
		tr.seen = map[[2]state]bool{}
	}
	tr.seen[[2]state{from, to}] = true
}

// harness drives a supervisor on fake time with fake processes, on the test's goroutine.
type harness struct {
	t     *testing.T
	s     *supervisor
	clock *fakeClock
	l     *fakeLauncher
	out   *testutil.SyncBuffer
}

// newHarness loads toml as gaffer.toml and builds its supervisor; nothing starts before run.
func newHarness(t *testing.T, toml string, tr *transitions) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gaffer.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Settings.Output = "raw"
	h := &harness{t: t, clock: newFakeClock(), l: newFakeLauncher(), out: &testutil.SyncBuffer{}}
	s, err := newSupervisor(UpConfig{Config: cfg, Stdout: h.out, Stderr: h.out, Clock: h.clock,
		Warnf: func(f string, a ...any) { t.Errorf("warning: "+f, a...) }}, nil, func(*supervisor) launcher { return h.l })
	if err != nil {
		t.Fatal(err)
	}
	if tr != nil {
		s.trace = func(_ *instance, from, to state) { tr.add(from, to) }
	}
	h.s = s
	return h
}

// run starts what is startable and settles.
func (h *harness) run() *harness {
	h.s.startReady()
	h.s.checkDone()
	h.settle()
	return h
}

// settle does what the loop would do until nothing is left to do now: exits collected, starts
// made, timer events handled.
func (h *harness) settle() {
	for range 10000 {
		h.s.collect()
		if h.s.starting {
			h.s.startSome()
			continue
		}
		select {
		case ev := <-h.s.events:
			h.s.onEvent(ev)
			continue
		default:
		}
		if !h.pendingExits() {
			return
		}
	}
	h.t.Fatal("the supervisor never settled")
}

// pendingExits reports whether an exit waits in a channel the supervisor still reads.
func (h *harness) pendingExits() bool {
	for _, in := range h.s.insts {
		if in.proc != nil && len(in.proc.Exit()) > 0 || in.probe != nil && len(in.probe.Exit()) > 0 ||
			in.health.probe != nil && len(in.health.probe.Exit()) > 0 {
			return true
		}
	}
	return false
}

func (h *harness) advance(d time.Duration) {
	h.clock.advance(d, h.settle)
	h.settle()
}

func (h *harness) inst(name string) *instance {
	h.t.Helper()
	for _, in := range h.s.insts {
		if in.name == name {
			return in
		}
	}
	h.t.Fatalf("no instance %s; have %v", name, h.names())
	return nil
}

func (h *harness) names() []string {
	var out []string
	for _, in := range h.s.insts {
		out = append(out, in.name)
	}
	return out
}

func (h *harness) state(name string) state { h.t.Helper(); return h.inst(name).state }

func (h *harness) wantState(name string, want state) {
	h.t.Helper()
	if got := h.state(name); got != want {
		h.t.Fatalf("%s is %v (%d), want %v (%d)\nevents:\n%s", name, got, got, want, want, h.events())
	}
}

// current is the fake process of an instance now.
func (h *harness) current(name string) *fakeChild {
	h.t.Helper()
	in := h.inst(name)
	if in.proc == nil {
		h.t.Fatalf("%s has no process (it is %v)", name, in.state)
	}
	return in.proc.(*fakeChild)
}

// exit makes name's process exit with code and lets the supervisor see it.
func (h *harness) exit(name string, code int) {
	h.t.Helper()
	h.current(name).die(code)
	h.settle()
}

// starts counts the processes started for an instance name.
func (h *harness) starts(name string) int { return len(h.l.children[name]) }

func (h *harness) events() string {
	h.s.out.Flush(time.Second)
	return h.out.String()
}

func (h *harness) wantEvent(text string) {
	h.t.Helper()
	if !strings.Contains(h.events(), text) {
		h.t.Fatalf("no event %q in:\n%s", text, h.events())
	}
}

// done reports whether the supervisor has handed over to the sweep, and its exit code.
func (h *harness) done() (bool, int) { return h.s.sweep != nil, h.s.code() }

// sortedPairs lists transitions for messages.
func sortedPairs(m map[[2]state]bool) []string {
	var out []string
	for p := range m {
		out = append(out, p[0].String()+"("+strconv.Itoa(int(p[0]))+")->"+p[1].String()+"("+strconv.Itoa(int(p[1]))+")")
	}
	sort.Strings(out)
	return out
}

// stop and start are the API's stop and start of one instance, then what follows.
func (h *harness) stop(name string) {
	h.t.Helper()
	if err := h.tryStop(name); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) start(name string) {
	h.t.Helper()
	if err := h.tryStart(name); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) tryStop(name string) error {
	err := h.s.stopOne(h.inst(name))
	h.settle()
	return err
}

func (h *harness) tryStart(name string) error {
	err := h.s.startOne(h.inst(name))
	h.settle()
	return err
}
