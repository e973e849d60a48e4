// Package pid1 is gaffer's event loop: one goroutine owns the child, the reaping results, signal
// forwarding and the shutdown of the tree. It lives in the folder init/ because a package named
// init cannot be imported; import it as pid1 "gaffer/init".
package pid1

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"gaffer/api"
	"gaffer/reaper"
	"gaffer/signals"
	"gaffer/spawn"

	"golang.org/x/sys/unix"
)

// Logf prints one of gaffer's own diagnostics; nil prints nothing.
type Logf func(format string, args ...any)

// Config is one `gaffer -- CMD` run.
type Config struct {
	Child spawn.Spec
	// Signals carries every signal gaffer receives. main calls signal.Notify before anything else,
	// because a Go PID 1 dies of a signal it has not asked for.
	Signals <-chan os.Signal
	// NotifyLate, when set, makes Signals carry the signals main did not notify first (signals.Late).
	// Each Notify costs a round trip to the runtime's signal thread, so Run calls it once the
	// child has started, off the child's start path.
	NotifyLate func()
	// Group forwards signals to the child's whole process group instead of the child alone.
	Group    bool
	Rewrites signals.Rewrites
	// SuccessCodes are exit codes reported as 0 (the JVM's 143 after SIGTERM).
	SuccessCodes []int
	// Grace is how long processes left behind by the child have between SIGTERM and SIGKILL.
	Grace time.Duration
	// StopTimeout, when not 0, kills the child's group that long after a forwarded SIGTERM, SIGINT
	// or SIGQUIT if the child is still alive.
	StopTimeout time.Duration
	Debugf      Logf
	Warnf       Logf
	// Serve, when set, starts the API socket once the child runs, with the child as process
	// "main"; the function it returns stops it.
	Serve func(api.Backend) func()
}

// finalWait bounds the wait for processes that were sent SIGKILL to be reaped; one stuck in the
// kernel (D state) must not keep gaffer, and the container, alive for ever.
const finalWait = 5 * time.Second

// Run starts the child, forwards signals to it, reaps every zombie, and when the child has exited
// stops whatever it left behind. It returns the exit code gaffer should exit with; err says why
// when that code is gaffer's own (the child could not start).
func Run(ctx context.Context, cfg Config) (int, error) {
	debugf, warnf := orSilent(cfg.Debugf), orSilent(cfg.Warnf)
	r := reaper.New()
	isInit := reaper.IsPID1()
	if !isInit {
		if err := reaper.SetSubreaper(); err != nil {
			warnf("not PID 1 and %v: orphans of the child will not be reaped by gaffer", err)
		}
	}
	if orphans, _, err := r.Reap(); err != nil {
		warnf("%v", err)
	} else if len(orphans) > 0 {
		debugf("reaped %d zombies inherited at start", len(orphans))
	}

	child, err := spawn.Start(r, cfg.Child)
	if err != nil {
		var se *spawn.StartError
		if errors.As(err, &se) {
			return se.Code, err
		}
		return spawn.CodeNotExecutable, err
	}
	defer child.Release()
	debugf("started pid %d: %q", child.Pid, cfg.Child.Argv)
	// The child has its own working directory now; gaffer keeps none busy.
	if err := os.Chdir("/"); err != nil {
		debugf("chdir /: %v", err)
	}

	l := &loop{cfg: cfg, r: r, isInit: isInit, child: child, debugf: debugf, warnf: warnf, code: -1}
	if cfg.Serve != nil {
		a := &runAPI{loopCalls: newLoopCalls(), l: l, startedAt: time.Now(), pid: child.Pid, argv: cfg.Child.Argv}
		l.calls, l.bus = a.calls, &a.bus
		defer cfg.Serve(a)()
		defer close(a.exited)
	}
	l.allSignals = notifyLate(cfg.NotifyLate)
	return l.run(ctx), nil
}

type loop struct {
	cfg           Config
	r             *reaper.Reaper
	isInit        bool
	child         *spawn.Process
	debugf, warnf Logf
	code          int  // the child's exit code once it exited, else -1
	draining      bool // the child is gone; the rest of the tree is being stopped
	killed        bool // SIGKILL has gone to the rest of the tree
	stopTimer     *time.Timer
	graceTimer    *time.Timer
	finalTimer    *time.Timer
	ctxDone       <-chan struct{}
	// skip, when set, lists pids whose trees the sweep leaves alone (detached processes).
	skip       func() []int
	calls      <-chan func()   // API work to run on the loop, when there is an API
	bus        *eventBus       // API event followers, when there is an API
	allSignals <-chan struct{} // closed when the late signals are notified too
}

func (l *loop) run(ctx context.Context) int {
	l.ctxDone = ctx.Done()
	for {
		select {
		case f := <-l.calls:
			f()
		case <-l.allSignals:
			l.allSignals = nil
			l.debugf("forwarding all signals")
		case sig := <-l.cfg.Signals:
			if l.onSignal(sig.(syscall.Signal)) {
				return l.result()
			}
		case e := <-l.childExit():
			l.onChildExit(e)
			if l.drain() {
				return l.result()
			}
		case <-l.ctxDone:
			l.ctxDone = nil
			if l.onSignal(unix.SIGTERM) {
				return l.result()
			}
		case <-timerC(l.stopTimer):
			l.stopTimer = nil
			if l.code < 0 && l.child != nil {
				l.warnf("child pid %d still running %v after the stop signal: sending SIGKILL to its group", l.child.Pid, l.cfg.StopTimeout)
				_ = unix.Kill(-l.child.Pid, unix.SIGKILL)
			}
		case <-timerC(l.graceTimer):
			l.graceTimer = nil
			l.killRest()
		case <-timerC(l.finalTimer):
			l.warnf("processes still not reaped %v after SIGKILL: exiting without them", finalWait)
			return l.result()
		}
	}
}

// onSignal handles one received signal and reports whether gaffer is done.
func (l *loop) onSignal(sig syscall.Signal) bool {
	if sig == unix.SIGCHLD {
		return l.reap()
	}
	if signals.NeverForward(sig) {
		l.debugf("received SIG%s: not forwarded", signals.Name(sig))
		return false
	}
	if l.draining {
		// The child is gone; an impatient stop request skips the rest of the grace period.
		if signals.Terminating(sig) && !l.killed {
			l.debugf("received SIG%s while stopping: sending SIGKILL now", signals.Name(sig))
			l.killRest()
		}
		return false
	}
	out, ok := l.cfg.Rewrites.Apply(sig)
	if !ok {
		l.debugf("received SIG%s: dropped by rewrite", signals.Name(sig))
		return false
	}
	target := l.child.Pid
	if l.cfg.Group {
		target = -target
	}
	if err := unix.Kill(target, out); err != nil && !errors.Is(err, unix.ESRCH) {
		l.warnf("forward SIG%s to %d: %v", signals.Name(out), target, err)
	} else {
		l.debugf("forwarded SIG%s as SIG%s to %d", signals.Name(sig), signals.Name(out), target)
	}
	if signals.Terminating(sig) && l.cfg.StopTimeout > 0 && l.stopTimer == nil {
		l.stopTimer = time.NewTimer(l.cfg.StopTimeout)
	}
	return false
}

func (l *loop) onChildExit(e reaper.Exit) {
	l.code = e.Code()
	l.debugf("child pid %d exited with code %d", e.Pid, l.code)
	if l.bus != nil {
		code := l.code
		l.bus.emit(api.Event{Time: time.Now(), Kind: "exit", Name: mainName, Pid: e.Pid, Code: &code})
	}
	if l.stopTimer != nil {
		l.stopTimer.Stop()
		l.stopTimer = nil
	}
	l.draining = true
}

// reap collects exited children and reports whether gaffer is done: the child has exited and no
// process is left.
func (l *loop) reap() bool {
	orphans, none, err := l.r.Reap()
	if err != nil {
		l.warnf("%v", err)
	}
	if len(orphans) > 0 {
		l.debugf("reaped %d orphans", len(orphans))
		if l.bus != nil {
			l.bus.emit(api.Event{Time: time.Now(), Kind: "reap", Detail: fmt.Sprintf("%d orphans", len(orphans))})
		}
	}
	// The child's exit may have been collected just now; take it before judging.
	select {
	case e := <-l.childExit():
		l.onChildExit(e)
		return l.drain()
	default:
	}
	return l.draining && l.noneLeft(none)
}

// childExit is the channel of the child's exit; nil (never ready) when the loop has no child.
func (l *loop) childExit() <-chan reaper.Exit {
	if l.child == nil {
		return nil
	}
	return l.child.Exit
}

// noneLeft reports whether the sweep is over: no child at all, or, outside a PID namespace with
// detached processes to spare, none but those.
func (l *loop) noneLeft(noChildren bool) bool {
	if noChildren {
		return true
	}
	if l.isInit || l.skip == nil {
		return false
	}
	return len(l.rest()) == 0
}

// rest lists gaffer's descendants but the trees of the pids in skip.
func (l *loop) rest() []int {
	pids, err := reaper.Descendants(os.Getpid())
	if err != nil {
		l.warnf("%v", err)
	}
	if l.skip == nil {
		return pids
	}
	spared := map[int]bool{}
	for _, p := range l.skip() {
		spared[p] = true
		sub, _ := reaper.Descendants(p)
		for _, c := range sub {
			spared[c] = true
		}
	}
	return slices.DeleteFunc(pids, func(p int) bool { return spared[p] })
}

// drain starts the stop of what the child left behind, or reports that nothing is left.
func (l *loop) drain() bool {
	if _, none, _ := l.r.Reap(); l.noneLeft(none) {
		return true
	}
	if l.graceTimer != nil || l.killed {
		return false
	}
	n := l.signalRest(unix.SIGTERM)
	l.debugf("child gone; sent SIGTERM to %d process(es) left behind, SIGKILL in %v", n, l.cfg.Grace)
	l.graceTimer = time.NewTimer(l.cfg.Grace)
	return false
}

func (l *loop) killRest() {
	if l.graceTimer != nil {
		l.graceTimer.Stop()
		l.graceTimer = nil
	}
	l.killed = true
	n := l.signalRest(unix.SIGKILL)
	l.debugf("sent SIGKILL to %d process(es) left behind", n)
	l.finalTimer = time.NewTimer(finalWait)
}

// signalRest sends sig to every process left: as PID 1 all of the namespace, else gaffer's
// descendants. It returns how many it reached (-1 when kill(-1) does not say).
func (l *loop) signalRest(sig syscall.Signal) int {
	if l.isInit {
		if err := unix.Kill(-1, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			l.warnf("kill(-1, SIG%s): %v", signals.Name(sig), err)
		}
		return -1
	}
	n := 0
	for _, p := range l.rest() {
		if unix.Kill(p, sig) == nil {
			n++
		}
	}
	return n
}

func (l *loop) result() int {
	if slices.Contains(l.cfg.SuccessCodes, l.code) {
		return 0
	}
	return l.code
}

// timerC is the channel of t, or nil (which never fires in a select) when there is no timer.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func orSilent(f Logf) Logf {
	if f == nil {
		return func(string, ...any) {}
	}
	return f
}

// Describe is a one-line summary of a configuration, for gaffer's debug output.
func (c Config) Describe() string {
	return fmt.Sprintf("group=%v grace=%v stop-timeout=%v rewrites=%d success=%v", c.Group, c.Grace, c.StopTimeout, len(c.Rewrites), c.SuccessCodes)
}
