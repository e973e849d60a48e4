package relay

import (
	"bufio"
	"bytes"
	"errors"
	"gaffer/internal/testutil"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// within fails the test unless ch delivers within d.
func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timeout: %s", what)
		panic("unreachable")
	}
}

// pipeCopy runs Copy on the read end of a new pipe; it returns both ends and Copy's result. Copy
// closes the read end when it returns.
func pipeCopy(t *testing.T, w *Writer, src Source) (r, pw *os.File, done <-chan error) {
	t.Helper()
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() {
		err := w.Copy(r, src)
		r.Close()
		ch <- err
	}()
	t.Cleanup(func() { pw.Close() })
	return r, pw, ch
}

// TestLongLines sends 1 MiB lines through a pipe: each comes out as lines of at most MaxLine bytes
// with the prefix, cut between characters, which put back together are the line.
func TestLongLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ascii := make([]byte, 1<<20)
	for i := range ascii {
		ascii[i] = 'a' + byte(rng.IntN(26))
	}
	var mixed []byte
	for len(mixed) < 1<<20 {
		mixed = append(mixed, []string{"a", "é", "日", "🙂"}[rng.IntN(4)]...)
	}
	tests := []struct {
		name string
		line []byte
		nl   bool
	}{
		{"ascii", ascii, true},
		{"utf-8", mixed, true},
		{"ascii without newline", ascii, false},
		{"exactly MaxLine", ascii[:MaxLine], true},
		{"MaxLine+1", ascii[:MaxLine+1], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out, Options{})
			_, pw, done := pipeCopy(t, w, Source{Name: "big"})
			in := append(append([]byte("before\n"), tt.line...), "\nafter"...)
			if !tt.nl {
				in = in[:len(in)-len("\nafter")]
			}
			go func() {
				pw.Write(in)
				pw.Close()
			}()
			if err := within(t, done, 10*time.Second, "Copy"); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			var got []byte
			for i, l := range lines {
				body, ok := strings.CutPrefix(l, "big    | ")
				if !ok {
					t.Fatalf("line %d has no prefix: %.40q", i, l)
				}
				if len(body) > MaxLine {
					t.Fatalf("line %d has %d bytes", i, len(body))
				}
				if i > 0 && i < len(lines)-1 && !utf8.ValidString(body) {
					t.Fatalf("chunk %d cut inside a character", i)
				}
				if i == 0 || (tt.nl && i == len(lines)-1) {
					continue
				}
				got = append(got, body...)
			}
			if lines[0] != "big    | before" || (tt.nl && lines[len(lines)-1] != "big    | after") {
				t.Errorf("first or last line wrong: %q, %.40q", lines[0], lines[len(lines)-1])
			}
			if !bytes.Equal(got, tt.line) {
				t.Errorf("reassembled %d bytes differ from the %d sent", len(got), len(tt.line))
			}
			if want := (len(tt.line)+MaxLine-1)/MaxLine + 1 + btoi(tt.nl); len(lines) > want+1 || len(lines) < want {
				t.Errorf("%d lines out, want about %d", len(lines), want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAtomicity: 20 producers write 100k numbered lines each, in 64 KiB writes cutting lines
// anywhere, through pipes into one Writer on a pipe. Every line out must parse back to one
// producer and its next number: 0 lost, 0 mixed, in order.
func TestAtomicity(t *testing.T) {
	const producers, lines = 20, 100_000
	dr, dw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	w := NewWriter(dw, Options{NameWidth: 3})

	type result struct {
		counts      [producers]int // lines of each producer
		next        [producers]int // the number expected next
		bad, badSeq int
		first       string
	}
	res := make(chan result, 1)
	go func() {
		var r result
		br := bufio.NewReaderSize(dr, 1<<20)
		for {
			l, err := br.ReadSlice('\n')
			if err != nil {
				break
			}
			// "p07    | p07 0000123 xxxx\n"
			name, body, ok := bytes.Cut(l, []byte("    | "))
			id, err1 := strconv.Atoi(string(bytes.TrimPrefix(name, []byte("p"))))
			f := bytes.Fields(body)
			if !ok || err1 != nil || id < 0 || id >= producers || len(f) < 2 || string(f[0]) != string(name) {
				if r.bad == 0 {
					r.first = string(l)
				}
				r.bad++
				continue
			}
			seq, err2 := strconv.Atoi(string(f[1]))
			if err2 != nil || seq != r.next[id] || len(f) != 2+btoi(seq%37 > 0) || (len(f) == 3 && len(f[2]) != seq%37) {
				r.badSeq++
			}
			r.next[id] = seq + 1 // count each gap once
			r.counts[id]++
		}
		res <- r
	}()

	var wg sync.WaitGroup
	for p := range producers {
		_, pw, done := pipeCopy(t, w, Source{Name: "p" + twoDigits(p)})
		wg.Go(func() {
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		go func() {
			bw := bufio.NewWriterSize(pw, 64<<10)
			var b []byte
			for seq := range lines {
				b = append(b[:0], 'p')
				b = append(b, twoDigits(p)...)
				b = append(b, ' ')
				b = strconv.AppendInt(b, int64(seq), 10)
				if seq%37 > 0 {
					b = append(b, ' ')
					b = append(b, strings.Repeat("x", seq%37)...)
				}
				b = append(b, '\n')
				bw.Write(b)
			}
			bw.Flush()
			pw.Close()
		}()
	}
	wg.Wait()
	dw.Close()
	r := within(t, res, 30*time.Second, "reader")
	if r.bad > 0 || r.badSeq > 0 {
		t.Errorf("%d mixed lines (first %q), %d out of sequence", r.bad, r.first, r.badSeq)
	}
	for p, n := range r.counts {
		if n != lines {
			t.Errorf("producer %d: %d lines, want %d", p, n, lines)
		}
	}
	if err := w.Err(); err != nil {
		t.Error(err)
	}
}

func twoDigits(i int) string { return string([]byte{'0' + byte(i/10), '0' + byte(i%10)}) }

// gate is a destination whose writes block until it is opened.
type gate struct {
	entered chan struct{} // receives at the start of every Write
	open    chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// TestBackPressure: while the destination blocks, Copy reads nothing more, so the pipe fills and
// the child's write would block (EAGAIN on a non-blocking write); nothing is buffered beyond.
func TestBackPressure(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 1000), open: make(chan struct{})}
	w := NewWriter(g, Options{Format: Raw})
	_, pw, done := pipeCopy(t, w, Source{Name: "slow"})
	if _, err := pw.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	within(t, g.entered, 5*time.Second, "first write to the destination")

	// Copy is stuck in the destination's Write. Fill the pipe with non-blocking writes of whole
	// 64-byte lines (4096 bytes = PIPE_BUF: all or nothing) until the kernel refuses.
	chunk := bytes.Repeat([]byte(strings.Repeat("y", 63)+"\n"), 64)
	rc, err := pw.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var written, capacity int
	var werr error
	rc.Write(func(fd uintptr) bool {
		capacity, _ = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
		for written <= 64<<20 {
			n, err := syscall.Write(int(fd), chunk)
			if err != nil {
				werr = err
				break
			}
			written += n
		}
		return true
	})
	if !errors.Is(werr, syscall.EAGAIN) {
		t.Fatalf("after %d bytes: %v, want EAGAIN", written, werr)
	}
	if written > capacity {
		t.Fatalf("%d bytes went into a pipe of %d: Copy kept reading", written, capacity)
	}
	rc.Write(func(fd uintptr) bool {
		_, werr = syscall.Write(int(fd), chunk)
		return true
	})
	if !errors.Is(werr, syscall.EAGAIN) {
		t.Fatalf("the full pipe took more: %v", werr)
	}

	close(g.open)
	pw.Close()
	if err := within(t, done, 5*time.Second, "Copy after the destination opened"); err != nil {
		t.Fatal(err)
	}
	if got, want := g.buf.Len(), len("first\n")+written; got != want {
		t.Errorf("%d bytes out, want %d", got, want)
	}
}

// TestSlowReader: gaffer's stdout is a pipe nobody reads. Both pipes fill up, and the child's
// write of 8 MiB cannot complete: all Copy holds is its bounded buffers. Once the reader reads,
// every byte arrives.
func TestSlowReader(t *testing.T) {
	dr, dw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	w := NewWriter(dw, Options{Format: Raw})
	r, pw, done := pipeCopy(t, w, Source{Name: "web"})
	const total = 8 << 20
	wrote := make(chan error, 1)
	go func() {
		_, err := pw.Write(bytes.Repeat([]byte(strings.Repeat("z", 127)+"\n"), total/128))
		pw.Close()
		wrote <- err
	}()
	// Full: every page of the pipe is taken. Copy reads less than a grown pipe holds, so the
	// oldest page may be partly read already.
	full := func(f *os.File) bool {
		var n, size int
		rc, _ := f.SyscallConn()
		rc.Control(func(fd uintptr) {
			n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
			size, _ = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
		})
		return n > size-os.Getpagesize()
	}
	testutil.WaitFor(t, 5*time.Second, "both pipes full", func() bool { return full(dr) && full(r) })
	select {
	case <-wrote:
		t.Fatal("the child's 8 MiB write completed while nobody read gaffer's stdout")
	default:
	}
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, dr)
		got <- n
	}()
	if err := within(t, wrote, 5*time.Second, "the child's write"); err != nil {
		t.Error(err)
	}
	if err := within(t, done, 5*time.Second, "Copy"); err != nil {
		t.Error(err)
	}
	dw.Close()
	if n := within(t, got, 5*time.Second, "the reader"); n != total {
		t.Errorf("%d bytes out, want %d", n, total)
	}
}

// TestDrainDeadline: a grandchild keeps the pipe open after the child exited; the read deadline
// ends Copy, after the pending partial line was emitted.
func TestDrainDeadline(t *testing.T) {
	var out testutil.SyncBuffer
	w := NewWriter(&out, Options{})
	r, pw, done := pipeCopy(t, w, Source{Name: "web"})
	if _, err := pw.Write([]byte("line\npartial")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the complete line", func() bool { return strings.Contains(out.String(), "line\n") })
	// pw stays open, as a grandchild would keep it.
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	err := within(t, done, 5*time.Second, "Copy to end at the deadline")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Copy: %v, want a deadline error", err)
	}
	if got, want := out.String(), "web    | line\nweb    | partial\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestDrainAfterBackPressure: the deadline passes while Copy is stuck writing; what the pipe held
// at the deadline is still relayed, nothing written before it is lost.
func TestDrainAfterBackPressure(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 1000), open: make(chan struct{})}
	w := NewWriter(g, Options{Format: Raw})
	r, pw, done := pipeCopy(t, w, Source{Name: "web"})
	pw.Write([]byte("first\n"))
	within(t, g.entered, 5*time.Second, "first write to the destination")
	body := strings.Repeat("0123456789abcde\n", 2048) + "partial" // 32 KiB: fits in the pipe
	if _, err := pw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(-time.Second)) // already passed when Copy gets to read
	close(g.open)
	err := within(t, done, 5*time.Second, "Copy to end at the deadline")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Copy: %v, want a deadline error", err)
	}
	g.mu.Lock()
	got := g.buf.String()
	g.mu.Unlock()
	if want := "first\n" + body + "\n"; got != want {
		t.Errorf("got %d bytes, want %d", len(got), len(want))
	}
}

// failing is a destination that fails every write, as gaffer's stdout does once it was closed.
type failing struct{ calls int }

func (f *failing) Write(p []byte) (int, error) {
	f.calls++
	return 0, syscall.EPIPE
}

// TestWriteError: a broken destination never stops Copy from draining the child's pipe.
func TestWriteError(t *testing.T) {
	dst := &failing{}
	w := NewWriter(dst, Options{})
	_, pw, done := pipeCopy(t, w, Source{Name: "web"})
	wrote := make(chan error, 1)
	go func() {
		_, err := pw.Write(bytes.Repeat([]byte("some output\n"), 1<<18)) // 3 MiB, far beyond the pipe
		pw.Close()
		wrote <- err
	}()
	if err := within(t, wrote, 5*time.Second, "the child's write"); err != nil {
		t.Fatal(err)
	}
	if err := within(t, done, 5*time.Second, "Copy"); err != nil {
		t.Errorf("Copy: %v", err)
	}
	if !errors.Is(w.Err(), syscall.EPIPE) {
		t.Errorf("Err: %v", w.Err())
	}
	if dst.calls != 1 {
		t.Errorf("%d writes to a broken destination, want 1", dst.calls)
	}
}

// stepReader hands out one chunk per Read and reports each Read it enters.
type stepReader struct {
	reading chan struct{}
	chunks  chan string
}

func (r *stepReader) Read(p []byte) (int, error) {
	r.reading <- struct{}{}
	c, ok := <-r.chunks
	if !ok {
		return 0, io.EOF
	}
	return copy(p, c), nil
}

// TestSetNameWidth: a running Copy picks up a new name width at its next read.
func TestSetNameWidth(t *testing.T) {
	var out testutil.SyncBuffer
	w := NewWriter(&out, Options{})
	r := &stepReader{reading: make(chan struct{}), chunks: make(chan string)}
	done := make(chan error, 1)
	go func() { done <- w.Copy(r, Source{Name: "web"}) }()
	<-r.reading
	r.chunks <- "a\n"
	<-r.reading // "a" was written
	w.SetNameWidth(8)
	r.chunks <- "b\n"
	<-r.reading
	close(r.chunks)
	if err := within(t, done, 5*time.Second, "Copy"); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "web    | a\nweb      | b\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if w.SetNameWidth(2); w.NameWidth() != len(EventName) {
		t.Errorf("NameWidth %d, want at least len(EventName)", w.NameWidth())
	}
}
