package pid1

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gaffer/reaper"
	"gaffer/sdnotify"

	"golang.org/x/sys/unix"
)

// Scenarios of the systemd protocols on fake time: messages go straight to the loop as the
// notify socket's reader would hand them over, with the sender's chain of ancestors.

// gafferPid stands for gaffer's own pid at the end of every chain.
const gafferPid = 1

// send hands text to the loop as a message from sender, whose parents (nearest first) lead to
// gaffer; sender 0 means the current process of the instance name.
func (h *harness) send(name string, text string, parents ...int) {
	h.t.Helper()
	chain := append([]int{h.current(name).pid}, parents...)
	h.sendFrom(append(chain, gafferPid), text, nil)
}

// sendFrom hands text from chain (the sender first, gaffer last) with a MAINPID handle.
func (h *harness) sendFrom(chain []int, text string, main *fakePid) {
	h.t.Helper()
	n := note{chain: chain, msg: sdnotify.Parse([]byte(text))}
	if main != nil {
		n.main, n.mainChain = main, main.chain
	}
	h.s.onNotify(n)
	h.settle()
}

func TestNotifyReadyGatesDependents(t *testing.T) {
	h := newHarness(t, `
[process.db]
cmd = "x"
ready = "notify"
ready_timeout = "5s"
on_end = "ignore"
[process.web]
cmd = "x"
after = ["db"]
[process.plain]
cmd = "x"
`, nil).run()
	h.wantState("db", stateStarting)
	h.wantState("web", statePending)
	if n := len(h.l.probes["db"]); n != 0 {
		t.Fatalf("%d probe processes for ready = notify", n)
	}
	// Someone else's message and one from a process without notify count as ignored.
	h.sendFrom([]int{999, gafferPid}, "READY=1", nil)
	h.send("plain", "READY=1")
	h.wantState("db", stateStarting)
	if n := h.s.sd.ignored.Load(); n != 2 {
		t.Fatalf("ignored %d, want 2", n)
	}
	// A forked worker's READY counts: it is in db's tree.
	h.advance(time.Second)
	h.send("db", "STATUS=warming up\nREADY=1", 5001, 5000)
	h.wantState("db", stateReady)
	h.wantState("web", stateRunning)
	h.wantEvent("db status: warming up")
	h.wantEvent("db ready")
	if v := h.s.view(h.inst("db")); v.StatusText != "warming up" || !v.Ready {
		t.Fatalf("view %+v", v)
	}
	// The old ready timeout is forgotten.
	h.advance(time.Minute)
	h.wantState("db", stateReady)
	// A status repeated is no new event; a new one is.
	h.send("db", "STATUS=warming up")
	h.send("db", "STATUS=serving")
	if n := strings.Count(h.events(), "db status:"); n != 2 {
		t.Fatalf("%d status events:\n%s", n, h.events())
	}
	// RELOADING then READY.
	h.send("db", "RELOADING=1\nMONOTONIC_USEC=1")
	h.send("db", "READY=1")
	h.wantEvent("db reloading")
	h.wantEvent("db reloaded")
	h.send("db", "ERRNO=2")
	h.wantEvent("db reports errno 2 (no such file or directory)")
	// The last status stays after the exit (it may say why); a new run starts without it.
	h.exit("db", 1)
	h.wantState("db", stateFatal)
	if v := h.s.view(h.inst("db")); v.StatusText != "serving" {
		t.Fatalf("status after the exit: %q", v.StatusText)
	}
	h.start("db")
	if v := h.s.view(h.inst("db")); v.StatusText != "" {
		t.Fatalf("status of the new run: %q", v.StatusText)
	}
}

func TestNotifyReadyTimeoutExtended(t *testing.T) {
	h := newHarness(t, `
[process.db]
cmd = "x"
ready = "notify"
ready_timeout = "5s"
on_end = "ignore"
[process.keep]
cmd = "x"
`, nil).run()
	h.advance(4 * time.Second)
	h.send("db", "EXTEND_TIMEOUT_USEC=3000000") // until 7s
	h.advance(time.Second)
	h.wantState("db", stateStarting)
	h.advance(2*time.Second - time.Millisecond)
	h.wantState("db", stateStarting)
	h.send("db", "EXTEND_TIMEOUT_USEC=1000") // shorter than what is left: no change
	h.advance(time.Millisecond)
	h.wantState("db", stateFatal)
	h.wantEvent("db not ready after 5s (no answer yet): stopping it")
	// And ready within the extension.
	h.start("db")
	h.advance(4 * time.Second)
	h.send("db", "EXTEND_TIMEOUT_USEC=10000000")
	h.advance(8 * time.Second)
	h.send("db", "READY=1")
	h.wantState("db", stateReady)
}

func TestNotifyWatchdog(t *testing.T) {
	h := newHarness(t, `
[process.w]
cmd = "x"
watchdog = "1s"
restart = "on-failure"
max_restarts = 2
restart_window = "1m"
backoff = "100ms"
`, nil).run()
	h.wantState("w", stateRunning)
	// Pings keep it: none misses the deadline.
	for range 5 {
		h.advance(999 * time.Millisecond)
		h.send("w", "WATCHDOG=1")
	}
	h.wantState("w", stateRunning)
	if n := len(h.inst("w").timers); n != 1 {
		t.Fatalf("%d timers after 5 pings, want 1", n)
	}
	// No ping: restarted, though it never exited by itself, under its backoff.
	first := h.current("w")
	h.advance(time.Second)
	h.wantEvent("w watchdog: no ping for 1s")
	if !slices.Equal(first.signals, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("signals %v", first.signals)
	}
	h.wantState("w", stateBackoff)
	h.advance(100 * time.Millisecond)
	h.wantState("w", stateRunning)
	if in := h.inst("w"); in.restarts != 1 || h.starts("w") != 2 {
		t.Fatalf("restarts %d, starts %d", in.restarts, h.starts("w"))
	}
	// WATCHDOG=trigger: at once.
	h.send("w", "WATCHDOG=trigger")
	h.wantEvent("w watchdog: triggered by the process")
	h.advance(200 * time.Millisecond)
	h.wantState("w", stateRunning)
	// It counts toward max_restarts: the third time it gives up.
	h.advance(time.Second)
	h.wantState("w", stateFatal)
	h.wantEvent("w gave up: 2 restarts within 1m0s")
}

func TestNotifyWatchdogUsecAndStopping(t *testing.T) {
	h := newHarness(t, `
[process.db]
cmd = "x"
ready = "notify"
watchdog = "1s"
on_end = "ignore"
[process.keep]
cmd = "x"
`, nil).run()
	// Not armed while starting: readiness has its own timeout.
	h.advance(3 * time.Second)
	h.wantState("db", stateStarting)
	h.send("db", "READY=1")
	// WATCHDOG_USEC moves the deadline: 3s from now.
	h.send("db", "WATCHDOG_USEC=3000000")
	h.advance(2999 * time.Millisecond)
	h.wantState("db", stateReady)
	h.send("db", "WATCHDOG=1")
	h.advance(2999 * time.Millisecond)
	h.wantState("db", stateReady)
	// STOPPING=1: no more watchdog.
	h.send("db", "STOPPING=1")
	h.wantEvent("db stopping")
	h.advance(time.Minute)
	h.wantState("db", stateReady)
	// The next run has the configured watchdog again; WATCHDOG_USEC=0 turns it off.
	h.exit("db", 0)
	h.start("db")
	h.send("db", "READY=1\nWATCHDOG_USEC=0")
	h.advance(time.Minute)
	h.wantState("db", stateReady)
	h.exit("db", 0)
	h.start("db")
	h.send("db", "READY=1")
	h.advance(time.Second)
	h.wantEvent("db watchdog: no ping for 1s")
}

// fakePid is a process that gaffer did not start, as a pidfd holds it.
type fakePid struct {
	pid, pgid int
	chain     []int // its ancestors, itself first
	signals   []syscall.Signal
	gone      chan struct{}
	closed    chan struct{}
	once      sync.Once
}

func newFakePid(pid int, chain ...int) *fakePid {
	return &fakePid{pid: pid, chain: append([]int{pid}, chain...), gone: make(chan struct{}), closed: make(chan struct{})}
}

func (f *fakePid) PID() int { return f.pid }
func (f *fakePid) Signal(sig syscall.Signal) error {
	f.signals = append(f.signals, sig)
	return nil
}
func (f *fakePid) Pgid() int { return f.pgid }
func (f *fakePid) Exited() bool {
	select {
	case <-f.gone:
		return true
	default:
		return false
	}
}
func (f *fakePid) Wait() error {
	select {
	case <-f.gone:
		return nil
	case <-f.closed:
		return errors.New("closed")
	}
}
func (f *fakePid) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

// serveCall runs the next function handed to the loop, as the loop would.
func (h *harness) serveCall() {
	h.t.Helper()
	select {
	case f := <-h.s.calls:
		f()
	case <-time.After(10 * time.Second):
		h.t.Fatal("nothing was handed to the loop")
	}
	h.settle()
}

func TestNotifyMainPID(t *testing.T) {
	conf := `
[process.d]
cmd = "x"
ready = "notify"
restart = "on-failure"
backoff = "1s"
on_end = "ignore"
[process.keep]
cmd = "x"
`
	h := newHarness(t, conf, nil).run()
	origin := h.current("d")
	// Not in its tree: refused.
	stranger := newFakePid(700, gafferPid)
	h.sendFrom([]int{origin.pid, gafferPid}, "MAINPID=700", stranger)
	h.wantEvent("d MAINPID=700 ignored: not in its process tree")
	if h.inst("d").proc != child(origin) {
		t.Fatal("adopted a stranger")
	}
	select {
	case <-stranger.closed:
	default:
		t.Fatal("the refused pidfd is still open")
	}
	// A grandchild: adopted; the API shows it, signals go to it (and to the started group).
	main := newFakePid(800, 750, origin.pid, gafferPid)
	h.sendFrom([]int{origin.pid, gafferPid}, "MAINPID=800\nREADY=1", main)
	h.wantEvent("d main process is now 800")
	h.wantState("d", stateReady)
	if v := h.s.view(h.inst("d")); v.Pid != 800 {
		t.Fatalf("pid %d in the API, want 800", v.Pid)
	}
	// Its own messages count now, also once the started process is gone.
	origin.die(0)
	h.settle()
	h.wantEvent("d: process 101 exited with code 0; main process 800 goes on")
	h.wantState("d", stateReady)
	h.sendFrom([]int{800, gafferPid}, "STATUS=adopted", nil)
	h.wantEvent("d status: adopted")
	// Its exit, reaped by gaffer as an orphan, is the instance's, with its code.
	left := h.s.claimOrphans([]reaper.Exit{{Pid: 800, Status: unix.WaitStatus(3 << 8)}, {Pid: 801}})
	if len(left) != 1 || left[0].Pid != 801 {
		t.Fatalf("orphans left %v", left)
	}
	h.settle()
	h.wantEvent("d exited with code 3")
	h.wantState("d", stateBackoff)
	select {
	case <-main.closed:
	default:
		t.Fatal("the pidfd of the main process is still open")
	}

	// Stopped while adopted: the stop signal reaches the main process and the started group.
	h.advance(time.Second)
	origin = h.current("d")
	main = newFakePid(900, origin.pid, gafferPid)
	h.sendFrom([]int{origin.pid, gafferPid}, "MAINPID=900", main)
	h.stop("d")
	if !slices.Equal(main.signals, []syscall.Signal{syscall.SIGTERM}) || !slices.Equal(origin.signals, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("main got %v, started process %v", main.signals, origin.signals)
	}
	// The started process died of it; the main process exits, collected by someone else: the
	// code is the started process's.
	close(main.gone)
	h.serveCall()
	h.wantEvent("d main process 900 exited: another process collected it; the code is that of")
	h.wantState("d", stateHeld)

	// The main process exits while the started one runs (and collects it): back to the started
	// one, whose exit is the instance's.
	h.start("d")
	origin = h.current("d")
	main = newFakePid(950, origin.pid, gafferPid)
	h.sendFrom([]int{origin.pid, gafferPid}, "MAINPID=950\nREADY=1", main)
	close(main.gone)
	h.serveCall()
	h.wantEvent("d main process 950 exited; the main process is")
	if h.inst("d").proc != child(origin) {
		t.Fatal("not supervising the started process again")
	}
	h.wantState("d", stateReady)
	h.exit("d", 7)
	h.wantState("d", stateBackoff)

	// MAINPID back to the started process, and one that could not be opened.
	h.advance(time.Second)
	origin = h.current("d")
	main = newFakePid(990, origin.pid, gafferPid)
	h.sendFrom([]int{origin.pid, gafferPid}, "MAINPID=990", main)
	h.sendFrom([]int{990, gafferPid}, "MAINPID="+strconv.Itoa(origin.pid), nil)
	h.wantEvent("d main process is " + strconv.Itoa(origin.pid) + " again")
	if h.inst("d").proc != child(origin) {
		t.Fatal("MAINPID back to the started process was not taken")
	}
	h.sendFrom([]int{origin.pid, gafferPid}, "MAINPID=4242", nil)
	h.wantEvent("d MAINPID=4242 ignored")
}

// TestPolicyUnhealthy: an unhealthy process restarts whatever its policy, as a failure that counts
// toward max_restarts.
func TestPolicyUnhealthy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t, "[process.a]\ncmd = \"x\"\n[process.b]\ncmd = \"x\"\nrestart = \"on-failure\"\nmax_restarts = 1\n", nil)
	a, b := h.s.cfg.Config.Processes[0], h.s.cfg.Config.Processes[1]
	d := decideExit(&a, history{delay: time.Second}, exitFacts{code: 143, stop: stopUnhealthy}, now)
	if d.next != stateBackoff || d.success {
		t.Fatalf("restart never, unhealthy: %+v", d)
	}
	d = decideExit(&b, history{delay: time.Second, recent: []time.Time{now}}, exitFacts{code: 0, stop: stopUnhealthy}, now)
	if d.next != stateFatal || !d.gaveUp {
		t.Fatalf("max_restarts reached: %+v", d)
	}
	d = decideExit(&a, history{}, exitFacts{code: 143, stop: stopUnhealthy, stopping: true}, now)
	if d.next != stateExited {
		t.Fatalf("during the shutdown: %+v", d)
	}
}

// TestNotifyWatchdogUsecWithoutWatchdog: WATCHDOG_USEC turns a watchdog on for the run, as systemd
// does, though none is configured.
func TestNotifyWatchdogUsecWithoutWatchdog(t *testing.T) {
	h := newHarness(t, "[process.a]\ncmd = \"x\"\nready = \"notify\"\n", nil).run()
	h.send("a", "WATCHDOG_USEC=2000000") // starting: armed once ready
	h.advance(30 * time.Second)
	h.send("a", "READY=1")
	h.advance(2*time.Second - time.Millisecond)
	h.wantState("a", stateReady)
	h.advance(time.Millisecond)
	h.wantEvent("a watchdog: no ping for 2s")
}
