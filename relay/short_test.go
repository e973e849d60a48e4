package relay

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomReader returns its data in reads of random sizes, from 1 byte to 70 KiB.
type randomReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *randomReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+r.rng.IntN(70<<10))], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestShortLines: lines of 0 to 40 bytes (short lines get word-wise newline search and 16-byte
// moves), amid a few long ones, in reads of random sizes, come out as a plain formatter would
// write them: the head, the line, a newline; for heads up to 16 bytes and longer ones.
func TestShortLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var in strings.Builder
	var lines []string
	for len(lines) < 200_000 {
		n := rng.IntN(41)
		if rng.IntN(1000) == 0 {
			n = 100 + rng.IntN(5000)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz \t\x00\x7f\xc3\xa9"[rng.IntN(32)]
		}
		lines = append(lines, string(b))
		in.WriteString(string(b) + "\n")
	}
	in.WriteString("no newline at the end")
	lines = append(lines, "no newline at the end")

	cases := []struct {
		opts Options
		name string
		head string
	}{
		{Options{}, "web", "web    | "},                            // 9 bytes
		{Options{NameWidth: 13}, "web", "web           | "},        // 16 bytes exactly
		{Options{NameWidth: 14}, "web", "web            | "},       // 17 bytes
		{Options{Format: Raw}, "web", ""},                          // none
		{Options{Color: true}, "web", "\x1b[36mweb    | \x1b[0m"},  // 18 bytes
		{Options{Timestamps: true}, "web", stamp + " web    | "},   // 34 bytes
		{Options{}, "a-much-longer-name", "a-much-longer-name | "}, // 21 bytes
	}
	for _, c := range cases {
		var want bytes.Buffer
		for _, l := range lines {
			want.WriteString(c.head + l + "\n")
		}
		c.opts.Now = clock
		var got bytes.Buffer
		r := &randomReader{data: []byte(in.String()), rng: rand.New(rand.NewPCG(5, 6))}
		if err := NewWriter(&got, c.opts).Copy(r, Source{Name: c.name}); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("head %q: line %d is %q, want %q", c.head, i, g[i], w[i])
					break
				}
			}
			t.Errorf("head %q: %d bytes out, want %d", c.head, got.Len(), want.Len())
		}
	}
}
