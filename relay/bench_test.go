package relay

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// repeatReader returns block over and over, total bytes in all, in reads of at most 64 KiB as a
// pipe gives them.
type repeatReader struct {
	block []byte
	left  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 64<<10, r.left)], r.block)
	r.left -= n
	return n, nil
}

func benchCopy(b *testing.B, lineLen int, opts Options) {
	line := strings.Repeat("x", lineLen-1) + "\n"
	block := []byte(strings.Repeat(line, (64<<10)/lineLen))
	const total = 64 << 20
	opts.Now = time.Now
	w := NewWriter(io.Discard, opts)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Copy(&repeatReader{block: block, left: total}, Source{Name: "bench", Pid: 1, Stream: "out"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total/lineLen)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlines/s")
}

func BenchmarkCopy16Prefix(b *testing.B)  { benchCopy(b, 16, Options{}) }
func BenchmarkCopy16TSColor(b *testing.B) { benchCopy(b, 16, Options{Timestamps: true, Color: true}) }
func BenchmarkCopy16JSON(b *testing.B)    { benchCopy(b, 16, Options{Format: JSON}) }
func BenchmarkCopy1KPrefix(b *testing.B)  { benchCopy(b, 1024, Options{}) }
func BenchmarkCopy1KJSON(b *testing.B)    { benchCopy(b, 1024, Options{Format: JSON}) }
func BenchmarkCopy1KRaw(b *testing.B)     { benchCopy(b, 1024, Options{Format: Raw}) }

// benchRing keeps the lines of the last reads, as gaffer's log ring does: within max bytes of
// arrays, the newest always, evicted arrays reused.
type benchRing struct {
	mu     sync.Mutex
	max    int
	size   int
	chunks [][]byte // arrays, from their start
	spare  []byte
}

func (r *benchRing) push(mem []byte) {
	r.chunks = append(r.chunks, mem)
	r.size += cap(mem)
	for r.size > r.max && len(r.chunks) > 1 {
		r.size -= cap(r.chunks[0])
		r.spare = r.chunks[0]
		r.chunks = append(r.chunks[:0], r.chunks[1:]...)
	}
}

// tap copies lines, into an evicted array when one fits.
func (r *benchRing) tap(lines []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var data []byte
	if len(lines) <= cap(r.spare) && cap(r.spare) <= 2*len(lines) {
		data, r.spare = append(r.spare[:0], lines...), nil
	} else {
		data = bytes.Clone(lines)
	}
	r.push(data)
}

func (r *benchRing) spareBuf(size int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cap(r.spare) >= size {
		b := r.spare[:size]
		r.spare = nil
		return b
	}
	return make([]byte, size)
}

func (r *benchRing) keep(buf, _ []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.push(buf[:0])
}

// benchRelay is benchCopy with the lines of each read going to a ring of 256 KiB, copied (Tap
// only) or kept (Spare and Keep as well).
func benchRelay(b *testing.B, lineLen int, keep bool) {
	line := strings.Repeat("x", lineLen-1) + "\n"
	block := []byte(strings.Repeat(line, (64<<10)/lineLen))
	const total = 64 << 20
	w := NewWriter(io.Discard, Options{Now: time.Now})
	r := &benchRing{max: 256 << 10}
	src := Source{Name: "bench", Pid: 1, Stream: "out", Tap: r.tap}
	if keep {
		src.Spare, src.Keep = r.spareBuf, r.keep
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Copy(&repeatReader{block: block, left: total}, src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total/lineLen)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlines/s")
}

func BenchmarkCopy16PrefixTap(b *testing.B)  { benchRelay(b, 16, false) }
func BenchmarkCopy16PrefixKeep(b *testing.B) { benchRelay(b, 16, true) }
func BenchmarkCopy1KPrefixTap(b *testing.B)  { benchRelay(b, 1024, false) }
func BenchmarkCopy1KPrefixKeep(b *testing.B) { benchRelay(b, 1024, true) }
