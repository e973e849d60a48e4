package relay

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// sizedReader returns data in reads of the given sizes, in turn (at most what p holds).
type sizedReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *sizedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.sizes[r.i%len(r.sizes)])], r.data)
	r.i++
	r.data = r.data[n:]
	return n, nil
}

// keeper is a Source's Tap, Spare and Keep, as a log ring uses them: it holds the last hold
// buffers given to Keep and hands out the older ones again, filled with '#' so that Copy using
// a stale byte shows. It checks that no buffer changes while it holds it.
type keeper struct {
	hold   int
	got    bytes.Buffer // every line given, in order, as given
	held   [][]byte     // buffers kept, oldest first
	lines  [][]byte     // the lines kept in each held buffer, as kept
	copies [][]byte     // copies of them at the time Keep had them
	pool   [][]byte
	taps   int
	keeps  int
	spares int
	t      *testing.T
}

func (k *keeper) source() Source {
	return Source{Name: "web", Tap: k.tap, Spare: k.spare, Keep: k.keep}
}

func (k *keeper) tap(lines []byte) {
	k.taps++
	k.got.Write(lines)
}

func (k *keeper) spare(size int) []byte {
	k.spares++
	var b []byte
	if n := len(k.pool); n > 0 && cap(k.pool[n-1]) >= size {
		b, k.pool = k.pool[n-1][:size], k.pool[:n-1]
	} else {
		b = make([]byte, size)
	}
	for i := range b {
		b[i] = '#'
	}
	return b
}

func (k *keeper) keep(buf, lines []byte) {
	k.keeps++
	k.got.Write(lines)
	k.held = append(k.held, buf)
	k.lines = append(k.lines, lines)
	k.copies = append(k.copies, bytes.Clone(lines))
	for len(k.held) > k.hold {
		k.check(0)
		k.pool = append(k.pool, k.held[0])
		k.held, k.lines, k.copies = k.held[1:], k.lines[1:], k.copies[1:]
	}
}

// check reports a held buffer whose lines changed after Keep took it.
func (k *keeper) check(i int) {
	k.t.Helper()
	if !bytes.Equal(k.lines[i], k.copies[i]) {
		k.t.Errorf("a buffer given to Keep was written to afterwards")
	}
}

func (k *keeper) checkAll() {
	k.t.Helper()
	for i := range k.held {
		k.check(i)
	}
}

// copyKeep relays in through a keeper, in reads of the given sizes, in Raw format; it returns the
// output and the keeper.
func copyKeep(t *testing.T, in []byte, sizes []int, hold int) (string, *keeper) {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, Options{Format: Raw})
	k := &keeper{hold: hold, t: t}
	if err := w.Copy(&sizedReader{data: in, sizes: sizes}, k.source()); err != nil {
		t.Fatal(err)
	}
	k.checkAll()
	return out.String(), k
}

// rawLines is what Copy writes in Raw format for in: each line, long ones in pieces of MaxLine
// (in ASCII), each piece ending with a newline.
func rawLines(in string) string {
	var b strings.Builder
	for line := range strings.Lines(in) {
		line = strings.TrimSuffix(line, "\n")
		for len(line) > MaxLine {
			b.WriteString(line[:MaxLine] + "\n")
			line = line[MaxLine:]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func numbered(n, size int) string {
	var b strings.Builder
	for i := range n {
		l := fmt.Sprintf("line %06d ", i)
		b.WriteString(l + strings.Repeat("x", max(size-len(l)-1, 0)) + "\n")
	}
	return b.String()
}

// TestKeepPartialLineAcrossHandoff: a line begun in a read whose buffer is given to Keep goes on
// in the buffer Spare gave, whole; every line reaches the output and the keeper once, in order,
// and no kept buffer is written to.
func TestKeepPartialLineAcrossHandoff(t *testing.T) {
	in := numbered(2000, 1000) // 2 MB of 1000-byte lines: reads of 60 KiB end amid a line
	out, k := copyKeep(t, []byte(in), []int{60 << 10}, 2)
	if out != in {
		t.Errorf("output differs from the input (%d bytes, want %d)", len(out), len(in))
	}
	if k.got.String() != in {
		t.Errorf("the keeper got %d bytes, not the input (%d)", k.got.Len(), len(in))
	}
	if k.keeps < 20 || k.spares != k.keeps {
		t.Errorf("%d reads kept, %d spares asked: want most reads kept, a spare for each", k.keeps, k.spares)
	}
}

// TestKeepLongLines: lines longer than MaxLine come out in pieces and reach the keeper in pieces,
// without newlines between them, through kept buffers too.
func TestKeepLongLines(t *testing.T) {
	in := "a\n" + strings.Repeat("L", 3*MaxLine+100) + "\nb\n" + strings.Repeat("M", MaxLine+1) + "\n" + numbered(300, 700) + "tail"
	out, k := copyKeep(t, []byte(in), []int{64 << 10, 100, 90 << 10, 64 << 10}, 1)
	if want := rawLines(in); out != want {
		t.Errorf("output differs (%d bytes, want %d)", len(out), len(want))
	}
	if k.got.String() != in {
		t.Errorf("the keeper got %d bytes, not the input (%d)", k.got.Len(), len(in))
	}
	if k.keeps == 0 {
		t.Error("no read was kept")
	}
}

// TestKeepRandomReads: lines of random lengths, long ones included, in reads of random sizes,
// through keepers that hold 1 to 3 buffers.
func TestKeepRandomReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 20 {
		var b strings.Builder
		for b.Len() < 3<<20 {
			n := rng.IntN(2000)
			if rng.IntN(200) == 0 {
				n = rng.IntN(3 * MaxLine)
			}
			b.WriteString(strings.Repeat(string(rune('a'+rng.IntN(26))), n) + "\n")
		}
		if round%2 == 1 {
			b.WriteString("no newline at the end")
		}
		in := b.String()
		sizes := make([]int, 50)
		for i := range sizes {
			sizes[i] = 1 + rng.IntN(140<<10)
		}
		out, k := copyKeep(t, []byte(in), sizes, 1+round%3)
		if want := rawLines(in); out != want {
			t.Fatalf("round %d: output differs (%d bytes, want %d)", round, len(out), len(want))
		}
		if k.got.String() != in {
			t.Fatalf("round %d: the keeper got %d bytes, not the input (%d)", round, k.got.Len(), len(in))
		}
		if k.keeps == 0 || k.taps == 0 {
			t.Fatalf("round %d: %d reads kept, %d tapped: want both", round, k.keeps, k.taps)
		}
	}
}

// TestKeepDeclined: a Spare that returns nil leaves every read to Tap; a Spare too short is
// declined as well.
func TestKeepDeclined(t *testing.T) {
	in := numbered(1000, 1000)
	for _, size := range []int{0, 1000} {
		var got bytes.Buffer
		keeps := 0
		src := Source{
			Tap:   func(b []byte) { got.Write(b) },
			Spare: func(int) []byte { return make([]byte, size)[:size:size] },
			Keep:  func(_, _ []byte) { keeps++ },
		}
		if size == 0 {
			src.Spare = func(int) []byte { return nil }
		}
		var out bytes.Buffer
		w := NewWriter(&out, Options{Format: Raw})
		if err := w.Copy(&sizedReader{data: []byte(in), sizes: []int{64 << 10}}, src); err != nil {
			t.Fatal(err)
		}
		if out.String() != in || got.String() != in || keeps != 0 {
			t.Errorf("spare of %d: output %d bytes, tapped %d, %d kept; want %d, %d, 0", size, out.Len(), got.Len(), keeps, len(in), len(in))
		}
	}
}
