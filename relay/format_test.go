package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// clock is the fake time of the tests: 2026-11-23T21:50:01.123Z (the nanoseconds are truncated).
func clock() time.Time { return time.Date(2026, 11, 23, 21, 50, 1, 123_999_999, time.UTC) }

const stamp = "2026-11-23T21:50:01.123Z"

func copyString(t *testing.T, opts Options, src Source, in string) string {
	t.Helper()
	var out bytes.Buffer
	if opts.Now == nil {
		opts.Now = clock
	}
	w := NewWriter(&out, opts)
	if err := w.Copy(strings.NewReader(in), src); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	return out.String()
}

func TestFormat(t *testing.T) {
	web := Source{Name: "web", Pid: 42, Stream: "out"}
	tests := []struct {
		name string
		opts Options
		src  Source
		in   string
		want string
	}{
		{"prefix padded to gaffer", Options{}, web, "hello\n", "web    | hello\n"},
		{"prefix padded to width", Options{NameWidth: 8}, web, "hello\n", "web      | hello\n"},
		{"prefix name longer than width", Options{NameWidth: 3}, Source{Name: "worker.10"}, "x\n", "worker.10 | x\n"},
		{"prefix custom stream name", Options{NameWidth: 10}, Source{Name: "web:events"}, "e\n", "web:events | e\n"},
		{"prefix several and empty lines", Options{}, web, "a\n\nb\n", "web    | a\nweb    | \nweb    | b\n"},
		{"prefix partial last line", Options{}, web, "a\nb", "web    | a\nweb    | b\n"},
		{"prefix only a partial line", Options{}, web, "no newline", "web    | no newline\n"},
		{"prefix crlf kept", Options{}, web, "a\r\n", "web    | a\r\n"},
		{"empty input", Options{}, web, "", ""},
		{"prefix invalid utf-8 passes through", Options{}, web, "a\xff\xfeb\n", "web    | a\xff\xfeb\n"},
		{"prefix control chars in name", Options{}, Source{Name: "a\nb\x1b"}, "x\n", "a?b?   | x\n"},
		{"color", Options{Color: true}, web, "hi\n", "\x1b[36mweb    | \x1b[0mhi\n"},
		{"color index 1", Options{Color: true}, Source{Name: "db", Color: 1}, "hi\n", "\x1b[33mdb     | \x1b[0mhi\n"},
		{"color cycles", Options{Color: true}, Source{Name: "db", Color: 7}, "hi\n", "\x1b[33mdb     | \x1b[0mhi\n"},
		{"color of events", Options{Color: true}, Source{Name: "gaffer", Color: EventColor}, "hi\n", "\x1b[1mgaffer | \x1b[0mhi\n"},
		{"timestamps", Options{Timestamps: true}, web, "a\nb\n", stamp + " web    | a\n" + stamp + " web    | b\n"},
		{"timestamps and color", Options{Timestamps: true, Color: true}, web, "a\n", "\x1b[36m" + stamp + " web    | \x1b[0ma\n"},
		{"timestamps in UTC", Options{Timestamps: true, Now: func() time.Time { return clock().In(time.FixedZone("X", 2*3600)) }}, web, "a\n", stamp + " web    | a\n"},
		{"raw", Options{Format: Raw}, web, "a\nb", "a\nb\n"},
		{"raw ignores timestamps and color", Options{Format: Raw, Timestamps: true, Color: true}, web, "a\n", "a\n"},
		{"raw invalid utf-8", Options{Format: Raw}, web, "\xff\n", "\xff\n"},
		{"json", Options{Format: JSON}, web, "hello\n",
			`{"time":"` + stamp + `","name":"web","pid":42,"stream":"out","line":"hello"}` + "\n"},
		{"json ignores color", Options{Format: JSON, Color: true, Timestamps: true}, Source{Name: "web:events", Pid: 7, Stream: "events"}, "e",
			`{"time":"` + stamp + `","name":"web:events","pid":7,"stream":"events","line":"e"}` + "\n"},
		{"json escapes", Options{Format: JSON}, web, "q\" b\\ t\t r\r c\x01\x1f del\x7f\n",
			`{"time":"` + stamp + `","name":"web","pid":42,"stream":"out","line":"q\" b\\ t\t r\r c\u0001\u001f del` + "\x7f" + `"}` + "\n"},
		{"json utf-8 kept, invalid replaced", Options{Format: JSON}, web, "é日🙂 \xff\xc3(\xe6\x97\n",
			`{"time":"` + stamp + `","name":"web","pid":42,"stream":"out","line":"é日🙂 \ufffd\ufffd(\ufffd\ufffd"}` + "\n"},
		{"json escapes name and stream", Options{Format: JSON}, Source{Name: `a"b`, Stream: "x\ny"}, "l\n",
			`{"time":"` + stamp + `","name":"a\"b","pid":0,"stream":"x\ny","line":"l"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := copyString(t, tt.opts, tt.src, tt.in)
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			if tt.opts.Format == JSON {
				for line := range strings.Lines(got) {
					if !json.Valid([]byte(line)) {
						t.Errorf("not valid JSON: %q", line)
					}
				}
			}
		})
	}
}

// TestJSONRoundTrip decodes JSON lines with encoding/json: every valid line comes back as written.
func TestJSONRoundTrip(t *testing.T) {
	var in strings.Builder
	var want []string
	for c := range 0x80 {
		if c == '\n' {
			continue
		}
		line := string(rune(c)) + "x\\\"é🙂"
		in.WriteString(line + "\n")
		want = append(want, line)
	}
	got := copyString(t, Options{Format: JSON}, Source{Name: "n", Pid: 9, Stream: "err"}, in.String())
	i := 0
	for line := range strings.Lines(got) {
		var v struct {
			Time   string
			Name   string
			Pid    int
			Stream string
			Line   string
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if v.Time != stamp || v.Name != "n" || v.Pid != 9 || v.Stream != "err" || v.Line != want[i] {
			t.Fatalf("line %d: got %+v, want line %q", i, v, want[i])
		}
		i++
	}
	if i != len(want) {
		t.Fatalf("got %d lines, want %d", i, len(want))
	}
}

// TestReadSplits: how the input is cut into reads never changes the output.
func TestReadSplits(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 3*MaxLine/16+5) // 3 chunks and a bit
	utf := strings.Repeat("é", MaxLine/2+10)                   // a cut that falls inside a character
	in := "a\n\nshort line\n" + long + "\n" + utf + "\nmiddle\n" + long + "tail without newline"
	splits := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
	}
	for _, opts := range []Options{{}, {Format: JSON}, {Format: Raw}, {Timestamps: true, Color: true}} {
		src := Source{Name: "web", Pid: 1, Stream: "out"}
		want := copyString(t, opts, src, in)
		for _, sp := range splits {
			var got bytes.Buffer
			opts.Now = clock
			if err := NewWriter(&got, opts).Copy(sp.wrap(strings.NewReader(in)), src); err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Errorf("%v, %s reads: output differs from one read (%d bytes, want %d)", opts.Format, sp.name, got.Len(), len(want))
			}
		}
	}
}

func TestEvent(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, Options{Now: clock, NameWidth: 5})
	w.Event("web exited with code %d", 3)
	w.Event("two\nlines\n")
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	want := "gaffer | web exited with code 3\ngaffer | two\ngaffer | lines\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}

	out.Reset()
	w = NewWriter(&out, Options{Format: JSON, Now: clock})
	w.Event("restarting web in %s", time.Second)
	w.Flush(5 * time.Second)
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v["name"] != "gaffer" || v["stream"] != "event" || v["pid"] != float64(os.Getpid()) ||
		v["line"] != "restarting web in 1s" || v["time"] != stamp {
		t.Errorf("event: %v", v)
	}
}

// TestEventOrder: with a destination that moves, an event is written before Event returns, so it
// comes before what is written after it, and nothing is lost when gaffer exits right after.
func TestEventOrder(t *testing.T) {
	var out testutil.SyncBuffer
	w := NewWriter(&out, Options{})
	w.Event("web started")
	if err := w.Copy(strings.NewReader("hello\n"), Source{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	w.Event("web exited")
	if got, want := out.String(), "gaffer | web started\nweb    | hello\ngaffer | web exited\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestEventNeverBlocks: with the destination stuck, Event returns at once; the queue is bounded,
// the overflow counted, and everything queued is written, in order, once the destination moves.
func TestEventNeverBlocks(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 100), open: make(chan struct{})}
	w := NewWriter(g, Options{Format: Raw})
	const n = 10_000 // 10 bytes each: beyond the 64 KiB queue
	done := make(chan struct{})
	go func() {
		for i := range n {
			w.Event("event %04d", i)
		}
		close(done)
	}()
	within(t, done, 5*time.Second, "Event with the destination stuck")
	if w.Flush(time.Millisecond) {
		t.Fatal("Flush reported success with the destination stuck")
	}
	close(g.open)
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	lines := strings.Split(strings.TrimSuffix(g.buf.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	lines = lines[:len(lines)-1]
	for i, l := range lines {
		if l != fmt.Sprintf("event %04d", i) {
			t.Fatalf("line %d: %q", i, l)
		}
	}
	if want := fmt.Sprintf("%d events dropped: the output was blocked", n-len(lines)); last != want || len(lines) < 5000 {
		t.Errorf("%d events written, then %q", len(lines), last)
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{Prefix, JSON, Raw} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFormat("text"); err == nil {
		t.Error("ParseFormat(text): no error")
	}
}

func TestCutPoint(t *testing.T) {
	ascii := bytes.Repeat([]byte{'a'}, MaxLine+10)
	if c := cutPoint(ascii); c != MaxLine {
		t.Errorf("ascii: cut at %d", c)
	}
	for off := 1; off < 4; off++ {
		// A 4-byte character starting off bytes before MaxLine.
		b := bytes.Repeat([]byte{'a'}, MaxLine+10)
		copy(b[MaxLine-off:], "🙂")
		if c := cutPoint(b); c != MaxLine-off {
			t.Errorf("emoji %d before: cut at %d, want %d", off, c, MaxLine-off)
		}
		// Invalid bytes are cut anywhere.
		b[MaxLine-off] = 0xf0
		copy(b[MaxLine-off+1:], "zzz")
		if c := cutPoint(b); c != MaxLine {
			t.Errorf("invalid %d before: cut at %d", off, c)
		}
	}
}

// TestAppendJSON: random bytes, specials at every offset of the 8-byte words the fast path
// skips, decode back to themselves with each invalid byte as U+FFFD.
func TestAppendJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "b", " ", "~", "\"", "\\", "\x00", "\x1f", "\n", "\x7f", "\x80", "\xff", "é", "日", "🙂", "\xe6\x97", "/"}
	for range 20000 {
		var p []byte
		for n := rng.IntN(40); n > 0; n-- {
			if rng.IntN(4) == 0 {
				p = append(p, pieces[rng.IntN(len(pieces))]...)
			} else {
				p = append(p, "plain text"[rng.IntN(10)])
			}
		}
		enc := append(append([]byte{'"'}, appendJSON(nil, p)...), '"')
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q -> %s: %v", p, enc, err)
		}
		if want := replaceEach(p); got != want {
			t.Fatalf("%q -> %s -> %q, want %q", p, enc, got, want)
		}
	}
}

// replaceEach replaces every byte of invalid UTF-8 in p with U+FFFD.
func replaceEach(p []byte) string {
	var b strings.Builder
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		b.WriteRune(r)
		p = p[size:]
	}
	return b.String()
}

func TestSetStyleChangesRunningStreams(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{Format: Prefix, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC) }})
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- w.Copy(pr, Source{Name: "web", Pid: 7, Stream: "out"}) }()
	io.WriteString(pw, "one\n")
	testutil.WaitFor(t, 10*time.Second, "one", func() bool { return strings.Contains(w.snapshot(&buf), "one") })
	w.SetStyle(Style{Format: JSON})
	io.WriteString(pw, "two\n")
	testutil.WaitFor(t, 10*time.Second, "two", func() bool { return strings.Contains(w.snapshot(&buf), "two") })
	w.SetStyle(Style{Format: Prefix, Timestamps: true})
	io.WriteString(pw, "three\n")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "web    | one\n" +
		`{"time":"2026-01-02T03:04:05.006Z","name":"web","pid":7,"stream":"out","line":"two"}` + "\n" +
		"2026-01-02T03:04:05.006Z web    | three\n"
	if got := w.snapshot(&buf); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// snapshot reads buf under the Writer's lock.
func (w *Writer) snapshot(buf *bytes.Buffer) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return buf.String()
}
