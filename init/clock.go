package pid1

import "time"

// Clock is where the loops get the time and their timers. The real one is the system's; tests give
// a fake one and move it by hand, so that backoffs and timeouts are tested in milliseconds.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed, on a goroutine of its own (the real clock) or inside
	// the call that moves a fake clock past it. f must not block: it hands an event to a loop.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened yet, and reports whether it did so.
	Stop() bool
}

// SystemClock is the real time.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// orSystem returns c, or the system clock when c is nil.
func orSystem(c Clock) Clock {
	if c == nil {
		return SystemClock{}
	}
	return c
}
