package pid1

import (
	"context"
	"fmt"
	"syscall"

	"gaffer/core"
	"gaffer/signals"
)

// loopCalls hands work from API goroutines to the loop that owns the processes, which runs each
// function it receives on calls; exited is closed when that loop is gone.
type loopCalls struct {
	calls  chan func()
	exited chan struct{}
}

func newLoopCalls() loopCalls {
	return loopCalls{calls: make(chan func()), exited: make(chan struct{})}
}

// call runs f on the loop and waits for it. It fails when the loop is gone or ctx ends first.
func (c loopCalls) call(ctx context.Context, f func()) error { return c.run(ctx, f, ctx.Done()) }

// callCommitted is call for work that must not be abandoned half way: ctx bounds only the wait
// for the loop to take f; once taken, it waits for f to finish (or the loop to end), so that
// the caller never returns while f still runs.
func (c loopCalls) callCommitted(ctx context.Context, f func()) error { return c.run(ctx, f, nil) }

// run hands f to the loop, unless the loop is gone or ctx ends first, then waits for f to finish
// unless the loop ends or abandon fires (nil: never), and reports ctx's error then.
func (c loopCalls) run(ctx context.Context, f func(), abandon <-chan struct{}) error {
	done := make(chan struct{})
	select {
	case c.calls <- func() { f(); close(done) }:
	case <-c.exited:
		return fmt.Errorf("gaffer is exiting: %w", core.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-c.exited:
		return fmt.Errorf("gaffer is exiting: %w", core.ErrUnavailable)
	case <-abandon:
		return ctx.Err()
	}
}

// do is call without a caller's deadline: the loop answers at once unless it is gone.
func (c loopCalls) do(f func()) error { return c.call(context.Background(), f) }

// notifyLate runs notify (main's signal.Notify of the late signals) off the caller's path and
// returns a channel closed once it is done; nil, which never fires, when there is nothing to run.
func notifyLate(notify func()) <-chan struct{} {
	if notify == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		notify()
		close(done)
	}()
	return done
}

// exitSignal names the signal an exit code stands for (128+n), or "" when it is a plain exit.
func exitSignal(code int) string {
	if code > 128 && code <= 128+signals.Max {
		return signals.Name(syscall.Signal(code - 128))
	}
	return ""
}
