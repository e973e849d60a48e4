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

	"gaffer/core"
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
	// Drain, when not 0, holds a SIGTERM or SIGINT back that long before forwarding it, while the
	// API's readiness fails (a second one is forwarded at once).
	Drain time.Duration
	// StopTimeout, when not 0, kills the child's group that long after a forwarded SIGTERM, SIGINT
	// or SIGQUIT if the child is still alive.
	StopTimeout time.Duration
	Debugf      Logf
	Warnf       Logf
	// Serve, when set, starts the API socket once the child runs, with the child as process
	// "main"; the function it returns stops it.
	Serve func(core.Backend) func()
	// Clock is the time of the stop timeout and the sweep; nil is the system's.
	Clock Clock
}

// Run starts the child, forwards signals to it, reaps every zombie, and when the child has exited
// stops whatever it left behind. It returns the exit code gaffer should exit with; err says why
// when that code is gaffer's own (the child could not start). Process-wide settings (working
// directory, subreaper bit, signal notification) are the caller's.
func Run(ctx context.Context, cfg Config) (int, error) {
	debugf, warnf := orSilent(cfg.Debugf), orSilent(cfg.Warnf)
	r := reaper.New()
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

	l := &loop{
		cfg: cfg, r: r, isInit: reaper.IsPID1(), clock: orSystem(cfg.Clock), child: child,
		debugf: debugf, warnf: warnf, code: -1, stopFired: make(chan struct{}, 1),
		drainFired: make(chan struct{}, 1),
	}
	if cfg.Serve != nil {
		a := &runAPI{loopCalls: newLoopCalls(), l: l, startedAt: time.Now(), pid: child.Pid, argv: cfg.Child.Argv}
		l.calls, l.bus = a.calls, &a.bus
		defer cfg.Serve(a)()
		defer close(a.exited)
	}
	l.initResources() // OOM kills named (oom.go)
	defer l.res.close()
	l.allSignals = notifyLate(cfg.NotifyLate)
	return l.run(ctx), nil
}

// loop is the loop of `gaffer --`: the child, then the sweep of what it left.
type loop struct {
	cfg    Config
	r      *reaper.Reaper
	isInit bool
	clock  Clock
	child  *spawn.Process
	debugf Logf
	warnf  Logf
	code   int    // the child's exit code once it exited, else -1
	sweep  *sweep // once the child is gone: the rest of the tree being stopped
	// stopTimer: a stop signal was forwarded and --stop-timeout runs; it fires on stopFired.
	stopTimer  Timer
	stopFired  chan struct{}
	calls      <-chan func()   // API work to run on the loop, when there is an API
	bus        *eventBus       // API event followers, when there is an API
	allSignals <-chan struct{} // closed when the late signals are notified too

	// The drain (drain.go): drainTimer runs while a stop signal, drainSig, is held back.
	drainTimer Timer
	drainFired chan struct{}
	drainSig   syscall.Signal
	drained    bool // a drain happened or is not wanted: no other
	stopSent   bool // a stop signal was forwarded

	res resources // the container's cgroup: OOM kills named (oom.go)
	oom oomState  // how the child ended, OOM kills in its tree
}

func (l *loop) run(ctx context.Context) int {
	ctxDone := ctx.Done()
	for {
		select {
		case f := <-l.calls:
			f()
		case f := <-l.res.calls(): // a look for OOM kills (oom.go)
			f()
		case <-l.allSignals:
			l.allSignals = nil
			l.debugf("forwarding all signals")
		case sig := <-l.cfg.Signals:
			if l.onSignal(sig.(syscall.Signal)) {
				return l.result()
			}
		case e := <-l.childExit():
			if l.onChildExit(e) {
				return l.result()
			}
		case <-ctxDone:
			ctxDone = nil
			if l.onSignal(unix.SIGTERM) {
				return l.result()
			}
		case <-l.drainFired:
			if l.drainTimer != nil && l.sweep == nil {
				l.drainTimer = nil
				l.forward(l.drainSig, sigStop)
			}
		case <-l.stopFired:
			l.stopTimer = nil
			if l.sweep == nil {
				l.warnf("child pid %d still running %v after the stop signal: sending SIGKILL to its group", l.child.Pid, l.cfg.StopTimeout)
				_ = unix.Kill(-l.child.Pid, unix.SIGKILL)
			}
		case step := <-l.sweepFired():
			if l.sweep.onStep(step) {
				return l.result()
			}
		}
	}
}

// sweepFired is the sweep's timer channel, nil (never ready) before the sweep.
func (l *loop) sweepFired() <-chan sweepStep {
	if l.sweep == nil {
		return nil
	}
	return l.sweep.fired
}

// onSignal handles one received signal and reports whether gaffer is done.
func (l *loop) onSignal(sig syscall.Signal) bool {
	if l.sweep != nil {
		return l.sweep.onSignal(sig)
	}
	action := classify(sig)
	switch action {
	case sigReap:
		return l.reap()
	case sigIgnore:
		l.debugf("received SIG%s: not forwarded", signals.Name(sig))
		return false
	}
	if action == sigStop && l.startDrain(sig) {
		return false
	}
	l.forward(sig, action)
	return false
}

// forward sends sig, rewritten, to the child (or its group); a stop signal arms the stop timeout.
func (l *loop) forward(sig syscall.Signal, action sigAction) {
	out, ok := l.cfg.Rewrites.Apply(sig)
	if !ok {
		l.debugf("received SIG%s: dropped by rewrite", signals.Name(sig))
		return
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
	if action == sigStop {
		l.stopSent = true
	}
	if action == sigStop && l.cfg.StopTimeout > 0 && l.stopTimer == nil {
		l.stopTimer = fireAfter(l.clock, l.cfg.StopTimeout, l.stopFired)
	}
}

// fireAfter is a timer that marks fired (a channel with room for one) after d; the loop reads it.
// A mark already waiting is enough: the timer never blocks.
func fireAfter(c Clock, d time.Duration, fired chan<- struct{}) Timer {
	return c.AfterFunc(d, func() {
		select {
		case fired <- struct{}{}:
		default:
		}
	})
}

// onChildExit records the child's exit and starts the sweep; it reports whether gaffer is done.
func (l *loop) onChildExit(e reaper.Exit) bool {
	l.code = e.Code()
	l.oom.set(l.res.exited(mainName, e.Pid, e.Status, false), l.code) // exit, signal or oom (oom.go)
	l.debugf("child pid %d exited with code %d", e.Pid, l.code)
	if l.bus != nil {
		code := l.code
		l.bus.emit(core.Event{Time: time.Now(), Kind: "exit", Name: mainName, Pid: e.Pid, Code: &code})
	}
	if l.stopTimer != nil {
		l.stopTimer.Stop()
		l.stopTimer = nil
	}
	if l.drainTimer != nil {
		l.drainTimer.Stop()
		l.drainTimer = nil
	}
	l.sweep = newSweep(sweepConfig{r: l.r, isInit: l.isInit, grace: l.cfg.Grace, clock: l.clock, debugf: l.debugf, warnf: l.warnf})
	return l.sweep.begin()
}

// reap collects exited children while the child runs.
func (l *loop) reap() bool {
	orphans, _, err := l.r.Reap()
	if err != nil {
		l.warnf("%v", err)
	}
	l.res.reaped(orphans) // an OOM victim reparented to gaffer (oom.go)
	if len(orphans) > 0 {
		l.debugf("reaped %d orphans", len(orphans))
		if l.bus != nil {
			l.bus.emit(core.Event{Time: time.Now(), Kind: "reap", Detail: fmt.Sprintf("%d orphans", len(orphans))})
		}
	}
	// The child's exit may have been collected just now; take it before judging.
	select {
	case e := <-l.childExit():
		return l.onChildExit(e)
	default:
	}
	return false
}

// childExit is the channel of the child's exit; nil (never ready) once it was taken.
func (l *loop) childExit() <-chan reaper.Exit {
	if l.sweep != nil {
		return nil
	}
	return l.child.Exit
}

func (l *loop) result() int {
	if slices.Contains(l.cfg.SuccessCodes, l.code) {
		return 0
	}
	return l.code
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
