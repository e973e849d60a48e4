package pid1

import (
	"context"
	"errors"
	"os"
	"slices"
	"syscall"
	"time"

	"gaffer/reaper"
	"gaffer/signals"

	"golang.org/x/sys/unix"
)

// finalWait bounds the wait for processes that were sent SIGKILL to be reaped; one stuck in the
// kernel (D state) must not keep gaffer, and the container, alive for ever.
const finalWait = 5 * time.Second

// sigAction is what a loop does with a signal it received.
type sigAction int

const (
	sigForward sigAction = iota // to the supervised processes
	sigReap                     // SIGCHLD: collect exits
	sigIgnore                   // never forwarded (DESIGN rule 3)
	sigStop                     // stop gaffer: TERM, INT, QUIT
)

// classify says what gaffer does with sig, in every mode.
func classify(sig syscall.Signal) sigAction {
	switch {
	case sig == unix.SIGCHLD:
		return sigReap
	case signals.NeverForward(sig):
		return sigIgnore
	case signals.Terminating(sig):
		return sigStop
	}
	return sigForward
}

// sweepConfig configures a sweep.
type sweepConfig struct {
	r      *reaper.Reaper // nil: there is nothing to sweep (tests)
	isInit bool
	grace  time.Duration
	clock  Clock
	// skip, when set, lists pids whose trees the sweep leaves alone (detached processes).
	skip          func() []int
	debugf, warnf Logf
}

type sweepStep int

const (
	stepKill   sweepStep = iota // grace is over: SIGKILL
	stepGiveUp                  // finalWait after SIGKILL: exit without what is still not reaped
)

// sweep stops what is left of the tree once the supervised processes are gone, in both modes:
// SIGTERM to every process left (as PID 1, all of the namespace; else gaffer's descendants),
// SIGKILL after the grace period or at a further stop signal, and done as soon as nothing is
// left.
type sweep struct {
	sweepConfig
	killed bool
	timer  Timer
	fired  chan sweepStep // the timer's step, for the loop
}

func newSweep(c sweepConfig) *sweep {
	c.clock = orSystem(c.clock)
	c.debugf, c.warnf = orSilent(c.debugf), orSilent(c.warnf)
	return &sweep{sweepConfig: c, fired: make(chan sweepStep, 1)}
}

// begin sends SIGTERM to what is left, or reports that nothing is.
func (w *sweep) begin() bool {
	if w.done() {
		return true
	}
	n := w.signalRest(unix.SIGTERM)
	w.debugf("sent SIGTERM to %d process(es) left behind, SIGKILL in %v", n, w.grace)
	w.arm(w.grace, stepKill)
	return false
}

// onSignal handles a signal during the sweep and reports whether it is over.
func (w *sweep) onSignal(sig syscall.Signal) bool {
	switch classify(sig) {
	case sigReap:
		return w.done()
	case sigStop:
		// An impatient stop request skips the rest of the grace period.
		if !w.killed {
			w.debugf("received SIG%s while stopping: sending SIGKILL now", signals.Name(sig))
			w.kill()
		}
	case sigIgnore:
		w.debugf("received SIG%s: not forwarded", signals.Name(sig))
	}
	return false
}

// onStep handles the sweep's timer and reports whether it is over.
func (w *sweep) onStep(step sweepStep) bool {
	w.timer = nil
	if step == stepKill {
		w.kill()
		return false
	}
	w.warnf("processes still not reaped %v after SIGKILL: exiting without them", finalWait)
	return true
}

// run is the loop of the sweep alone (gaffer up, once its processes are gone): it returns when
// nothing is left. API calls are still served.
func (w *sweep) run(ctx context.Context, sigs <-chan os.Signal, calls <-chan func()) {
	if w.begin() {
		return
	}
	ctxDone := ctx.Done()
	for {
		select {
		case f := <-calls:
			f()
		case sig := <-sigs:
			if w.onSignal(sig.(syscall.Signal)) {
				return
			}
		case step := <-w.fired:
			if w.onStep(step) {
				return
			}
		case <-ctxDone:
			ctxDone = nil
			if w.onSignal(unix.SIGTERM) {
				return
			}
		}
	}
}

func (w *sweep) arm(d time.Duration, step sweepStep) {
	if w.timer != nil {
		w.timer.Stop()
	}
	fired := w.fired
	w.timer = w.clock.AfterFunc(d, func() {
		select {
		case fired <- step:
		default: // an older step still waits; the loop reads it first
		}
	})
}

func (w *sweep) kill() {
	w.killed = true
	n := w.signalRest(unix.SIGKILL)
	w.debugf("sent SIGKILL to %d process(es) left behind", n)
	w.arm(finalWait, stepGiveUp)
}

// done reaps and reports whether nothing is left: no child at all, or, outside a PID namespace
// with detached processes to spare, none but those.
func (w *sweep) done() bool {
	if w.r == nil {
		return true
	}
	_, none, err := w.r.Reap()
	if err != nil {
		w.warnf("%v", err)
	}
	if none {
		return true
	}
	if w.isInit || w.skip == nil {
		return false
	}
	return len(w.rest()) == 0
}

// rest lists gaffer's descendants but the trees of the pids in skip.
func (w *sweep) rest() []int {
	pids, err := reaper.Descendants(os.Getpid())
	if err != nil {
		w.warnf("%v", err)
	}
	if w.skip == nil {
		return pids
	}
	spared := map[int]bool{}
	for _, p := range w.skip() {
		spared[p] = true
		sub, _ := reaper.Descendants(p)
		for _, c := range sub {
			spared[c] = true
		}
	}
	return slices.DeleteFunc(pids, func(p int) bool { return spared[p] })
}

// signalRest sends sig to every process left: as PID 1 all of the namespace, else gaffer's
// descendants. It returns how many it reached (-1 when kill(-1) does not say).
func (w *sweep) signalRest(sig syscall.Signal) int {
	if w.r == nil {
		return 0
	}
	if w.isInit {
		if err := unix.Kill(-1, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			w.warnf("kill(-1, SIG%s): %v", signals.Name(sig), err)
		}
		return -1
	}
	n := 0
	for _, p := range w.rest() {
		if unix.Kill(p, sig) == nil {
			n++
		}
	}
	return n
}

func errorsIsESRCH(err error) bool { return errors.Is(err, unix.ESRCH) }
