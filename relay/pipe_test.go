package relay

import (
	"bytes"
	"gaffer/internal/testutil"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipeSize returns the capacity of the pipe f belongs to.
func pipeSize(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); cerr != nil || err != nil {
		t.Fatalf("F_GETPIPE_SZ: %v %v", cerr, err)
	}
	return n
}

// needGrowablePipes skips the test where this process may not make a pipe of busyPipe bytes
// (an unprivileged user beyond fs.pipe-max-size or its share of pipe pages).
func needGrowablePipes(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := growPipe(w, busyPipe); err != nil {
		t.Skipf("cannot grow a pipe to %d bytes here: %v", busyPipe, err)
	}
}

// drain reads f to EOF in the background; it returns the bytes read, once f is closed.
func drain(f *os.File) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(f)
		ch <- b
	}()
	return ch
}

// TestBusyPipesGrow: a stream that writes more than its first read takes gets a pipe of busyPipe
// bytes, and the destination too when it is a pipe; a quiet stream keeps its pipe as it was.
func TestBusyPipesGrow(t *testing.T) {
	needGrowablePipes(t)
	dr, dw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	out := drain(dr)
	w := NewWriter(dw, Options{Format: Raw})
	before := pipeSize(t, dw)

	quiet, qw, qdone := pipeCopy(t, w, Source{Name: "quiet"})
	if _, err := qw.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	busy, bw, bdone := pipeCopy(t, w, Source{Name: "busy"})
	line := strings.Repeat("x", 99) + "\n"
	if _, err := bw.Write([]byte(strings.Repeat(line, 640))); err != nil { // 64000 bytes
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the busy stream's pipe grown", func() bool { return pipeSize(t, busy) == busyPipe })
	if got := pipeSize(t, dw); got != busyPipe {
		t.Errorf("destination pipe: %d bytes, want %d (was %d)", got, busyPipe, before)
	}
	if got := pipeSize(t, quiet); got >= busyPipe {
		t.Errorf("quiet stream's pipe: %d bytes, want it as it was", got)
	}
	qw.Close()
	bw.Close()
	for _, done := range []<-chan error{qdone, bdone} {
		if err := within(t, done, 10*time.Second, "Copy at EOF"); err != nil {
			t.Error(err)
		}
	}
	if n := w.busyPipes.Load(); n != 0 {
		t.Errorf("%d grown pipes still counted after every Copy returned", n)
	}
	dw.Close()
	b := within(t, out, 10*time.Second, "the destination's reader")
	if want := 6 + 64000; len(b) != want {
		t.Errorf("%d bytes out, want %d", len(b), want)
	}
}

// TestBusyPipesBudget: at most maxBusyPipes streams of one Writer have grown pipes at a time; a
// stream that ends gives its share back.
func TestBusyPipesBudget(t *testing.T) {
	needGrowablePipes(t)
	w := NewWriter(io.Discard, Options{Format: Raw})
	chunk := bytes.Repeat([]byte(strings.Repeat("y", 63)+"\n"), 256) // 16 KiB: busy
	type copying struct {
		r, w *os.File
		done <-chan error
	}
	var cs []copying
	for range maxBusyPipes + 2 {
		r, pw, done := pipeCopy(t, w, Source{Name: "busy"})
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, copying{r, pw, done})
	}
	grown := func() int {
		n := 0
		for _, c := range cs {
			if pipeSize(t, c.w) == busyPipe {
				n++
			}
		}
		return n
	}
	// Every stream has read its chunk once its pipe is empty: then each has decided.
	testutil.WaitFor(t, 10*time.Second, "every stream busy", func() bool {
		for _, c := range cs {
			n, err := unix.IoctlGetInt(int(c.w.Fd()), unix.TIOCINQ)
			if err != nil || n > 0 {
				return false
			}
		}
		return w.busyPipes.Load() == maxBusyPipes
	})
	if n := grown(); n != maxBusyPipes {
		t.Fatalf("%d pipes grown, want %d", n, maxBusyPipes)
	}

	// One grown stream ends; a new busy stream may grow its pipe.
	for i, c := range cs {
		if pipeSize(t, c.w) == busyPipe {
			c.w.Close()
			if err := within(t, c.done, 10*time.Second, "Copy at EOF"); err != nil {
				t.Fatal(err)
			}
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	r, pw, done := pipeCopy(t, w, Source{Name: "late"})
	if _, err := pw.Write(chunk); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the late stream's pipe grown", func() bool { return pipeSize(t, r) == busyPipe })
	cs = append(cs, copying{r, pw, done})
	for _, c := range cs {
		c.w.Close()
		if err := within(t, c.done, 10*time.Second, "Copy at EOF"); err != nil {
			t.Error(err)
		}
	}
	if n := w.busyPipes.Load(); n != 0 {
		t.Errorf("%d grown pipes still counted after every Copy returned", n)
	}
}
