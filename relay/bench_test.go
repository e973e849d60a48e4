package relay

import (
	"io"
	"strings"
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
