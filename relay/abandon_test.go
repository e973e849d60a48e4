package relay

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// stuckWriter blocks every Write until release is closed, like a pipe nobody reads.
type stuckWriter struct {
	entered chan struct{}
	release chan struct{}
}

func (s *stuckWriter) Write(p []byte) (int, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return len(p), nil
}

func TestAbandonCountsWhatCouldNotBeWritten(t *testing.T) {
	sw := &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(sw.release)
	w := NewWriter(sw, Options{Format: Raw})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Copy(strings.NewReader("hello\nworld\n"), Source{Name: "p"})
	}()
	select {
	case <-sw.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Copy never wrote")
	}
	if busy, _ := w.Busy(); !busy {
		t.Fatal("Busy is false while a write is stuck")
	}
	w.Abandon()
	if got := w.Dropped(); got != int64(len("hello\nworld\n")) {
		t.Fatalf("Dropped after Abandon = %d, want the %d stuck bytes", got, len("hello\nworld\n"))
	}
	// Everything offered later is dropped at once, never blocking the caller.
	start := time.Now()
	w.Event("an event")
	_ = w.Copy(strings.NewReader("more\n"), Source{Name: "q"})
	if time.Since(start) > 5*time.Second {
		t.Fatal("a write after Abandon blocked")
	}
	if got, want := w.Dropped(), int64(len("hello\nworld\nmore\n")+len("an event\n")); got != want {
		t.Fatalf("Dropped = %d, want %d", got, want)
	}
	// Nothing is queued behind the stuck write any more: Flush does not wait for it.
	start = time.Now()
	w.Flush(time.Hour)
	if time.Since(start) > 5*time.Second {
		t.Fatal("Flush waited for a stuck write after Abandon")
	}
}

func TestWriteErrorsAreCountedAsDropped(t *testing.T) {
	w := NewWriter(errWriter{}, Options{Format: Raw})
	_ = w.Copy(strings.NewReader("abc\n"), Source{Name: "p"})
	_ = w.Copy(strings.NewReader("de\n"), Source{Name: "p"})
	if got := w.Dropped(); got != 7 {
		t.Fatalf("Dropped = %d, want 7", got)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// gateWriter holds each Write until the test releases it with an error (nil: success).
type gateWriter struct {
	entered chan struct{}
	release chan error
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	if err := <-g.release; err != nil {
		return 0, err
	}
	return len(p), nil
}

// TestAbandonThenTheStuckWriteEnds: a write stuck when Abandon is called counts as dropped once
// if it then fails, and not at all if it then goes through (found in review: it was counted
// twice, or dropped though written).
func TestAbandonThenTheStuckWriteEnds(t *testing.T) {
	for _, fail := range []bool{true, false} {
		g := &gateWriter{entered: make(chan struct{}), release: make(chan error)}
		w := NewWriter(g, Options{Format: Raw})
		line := []byte("0123456789\n")
		done := make(chan struct{})
		go func() { w.write(line); close(done) }()
		<-g.entered
		w.Abandon()
		if got := w.Dropped(); got != int64(len(line)) {
			t.Errorf("fail=%v: while stuck after Abandon, dropped %d, want %d", fail, got, len(line))
		}
		var err error
		if fail {
			err = errors.New("broken pipe")
		}
		g.release <- err
		<-done
		want := int64(0)
		if fail {
			want = int64(len(line))
		}
		if got := w.Dropped(); got != want {
			t.Errorf("fail=%v: dropped %d, want %d", fail, got, want)
		}
	}
}
