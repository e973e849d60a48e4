package pid1

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gaffer/config"
	"gaffer/core"
	"gaffer/internal/testutil"
	"gaffer/relay"
)

func lineTexts(t *testing.T, r *logRing, stream string, n int) []string {
	t.Helper()
	lines, _ := r.tail(context.Background(), stream, n, false)
	var out []string
	for _, l := range lines {
		out = append(out, l.Stream+":"+l.Line)
	}
	return out
}

func TestLogRingTailAcrossChunksAndStreams(t *testing.T) {
	r := newLogRing("web", 1<<20)
	r.add("out", []byte("a\nb\n"))
	r.add("err", []byte("x\n"))
	r.add("out", []byte("c\nd\ne\n"))
	cases := []struct {
		stream string
		n      int
		want   string
	}{
		{"", 3, "out:c out:d out:e"},
		{"", 4, "err:x out:c out:d out:e"},
		{"out", 4, "out:b out:c out:d out:e"},
		{"err", 10, "err:x"},
		{"", 100, "out:a out:b err:x out:c out:d out:e"},
		{"nope", 5, ""},
	}
	for _, c := range cases {
		if got := strings.Join(lineTexts(t, r, c.stream, c.n), " "); got != c.want {
			t.Errorf("tail(%q, %d) = %q, want %q", c.stream, c.n, got, c.want)
		}
	}
}

func TestLogRingIsBoundedInBytes(t *testing.T) {
	r := newLogRing("web", 100)
	for i := 0; i < 100; i++ {
		r.add("out", []byte(fmt.Sprintf("line %03d\n", i)))
	}
	if r.size > 100 {
		t.Fatalf("ring holds %d bytes, limit 100", r.size)
	}
	got := lineTexts(t, r, "", 1000)
	if len(got) == 0 || got[len(got)-1] != "out:line 099" || len(got) > 12 {
		t.Fatalf("ring kept %q", got)
	}
}

func TestLogRingFollowGetsNewLinesAndEnds(t *testing.T) {
	r := newLogRing("web", 1<<20)
	r.add("out", []byte("old\n"))
	ctx, cancel := context.WithCancel(context.Background())
	lines, ch := r.tail(ctx, "out", 10, true)
	if len(lines) != 1 || lines[0].Line != "old" || lines[0].Name != "web" {
		t.Fatalf("tail before follow: %+v", lines)
	}
	r.add("err", []byte("other stream\n"))
	r.add("out", []byte("new 1\nnew 2"))
	for _, want := range []string{"new 1", "new 2"} {
		select {
		case l := <-ch:
			if l.Line != want || l.Stream != "out" {
				t.Fatalf("followed %+v, want %q", l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no followed line %q", want)
		}
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a line arrived after the follower left")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow channel not closed after ctx ended")
	}
	r.add("out", []byte("after\n")) // must not panic on the closed follower
}

func TestEventBusFansOutAndUnsubscribes(t *testing.T) {
	var b eventBus
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	c1, c2 := b.subscribe(ctx1), b.subscribe(ctx2)
	b.emit(eventOf("spawn"))
	for _, c := range []<-chan apiEvent{c1, c2} {
		if e := <-c; e.Kind != "spawn" {
			t.Fatalf("got %+v", e)
		}
	}
	cancel1()
	for range c1 {
	}
	b.emit(eventOf("exit")) // c1 is gone; c2 still hears
	if e := <-c2; e.Kind != "exit" {
		t.Fatalf("got %+v", e)
	}
	// A follower that never reads loses events instead of blocking the emitter.
	for i := 0; i < 5000; i++ {
		b.emit(eventOf("reap"))
	}
}

type apiEvent = core.Event

func eventOf(kind string) core.Event { return core.Event{Time: time.Now(), Kind: kind} }

// bigLine returns one line of 64 KiB (the relay's longest line), its newline included.
func bigLine() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = 'x'
	}
	b[len(b)-1] = '\n'
	return b
}

// A follower that never reads holds at most the per-stream bound of lines, however many lines
// of 64 KiB the process writes: before the bound, four such followers held 256 MiB.
func TestLogFollowerIsBoundedInBytes(t *testing.T) {
	r := newLogRing("web", 256<<10)
	_, ch := r.tail(context.Background(), "", 0, true)
	line := bigLine()
	for range 2000 { // 125 MiB
		r.add("out", line)
	}
	r.close() // the follower now gets what it had queued, then the end
	queued := 0
	for l := range ch {
		queued += len(l.Line)
	}
	if limit := core.StreamBytes + 64<<10; queued > limit {
		t.Fatalf("a follower that never read had %d bytes queued; the bound is %d", queued, limit)
	}
}

// A follower that lost lines is told how many with the next line it gets, and only then.
func TestLogFollowerCountsDropped(t *testing.T) {
	r := newLogRing("web", 256<<10)
	_, ch := r.tail(context.Background(), "", 0, true)
	line := bigLine()
	const pushed = 2000
	for range pushed {
		r.add("out", line)
	}
	r.add("out", []byte("next\n")) // small: it fits beside the big lines queued
	r.add("out", []byte("after\n"))
	r.close()
	var got []core.LogLine
	for l := range ch {
		got = append(got, l)
	}
	if len(got) < 3 {
		t.Fatalf("got %d lines", len(got))
	}
	kept := len(got) - 2
	for _, l := range got[:kept] {
		if len(l.Line) != len(line)-1 || l.Dropped != 0 {
			t.Fatalf("queued line: %d bytes, dropped %d", len(l.Line), l.Dropped)
		}
	}
	next, after := got[kept], got[kept+1]
	if next.Line != "next" || next.Dropped != pushed-kept {
		t.Errorf("after %d lines kept: %q with dropped %d, want %q with %d", kept, next.Line, next.Dropped, "next", pushed-kept)
	}
	if after.Line != "after" || after.Dropped != 0 {
		t.Errorf("then %q with dropped %d, want %q with 0", after.Line, after.Dropped, "after")
	}
}

// waitClosed drains ch until it is closed.
func waitClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the follower's channel was not closed")
		}
	}
}

// Followers share the server's budget; a follower that leaves gives back what was queued for it
// and is unsubscribed.
func TestLogFollowersShareTheBudget(t *testing.T) {
	budget := core.NewStreamBudget(300 << 10)
	ctx, cancel := context.WithCancel(core.WithStreamBudget(context.Background(), budget))
	r := newLogRing("web", 256<<10)
	_, ch1 := r.tail(ctx, "", 0, true)
	_, ch2 := r.tail(ctx, "out", 0, true)
	for range 100 {
		r.add("out", bigLine())
	}
	if used := budget.Used(); used > 300<<10 || used < 256<<10 {
		t.Errorf("two followers that do not read hold %d bytes of a budget of %d", used, 300<<10)
	}
	cancel()
	waitClosed(t, ch1)
	waitClosed(t, ch2)
	testutil.WaitFor(t, 10*time.Second, "the followers to be unsubscribed", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.subs) == 0
	})
	if used := budget.Used(); used != 0 {
		t.Errorf("%d bytes still counted after the followers left", used)
	}
	// Deleting by append(subs[:i], subs[i+1:]...) left the last follower in the array past len:
	// its closed channel, with 64 MiB unread, stayed reachable after the client left.
	for i, s := range r.subs[:cap(r.subs)] {
		if s != nil {
			t.Errorf("the ring still references a follower that left, at %d past its subscribers", i)
		}
	}
	r.add("out", []byte("nobody follows\n"))
}

// An event follower that never reads holds a bounded number of bytes, and hears how many events
// it lost.
func TestEventFollowerIsBounded(t *testing.T) {
	var b eventBus
	budget := core.NewStreamBudget(core.StreamTotalBytes)
	ctx, cancel := context.WithCancel(core.WithStreamBudget(context.Background(), budget))
	defer cancel()
	ch := b.subscribe(ctx)
	const emitted = 100000
	for range emitted {
		b.emit(core.Event{Kind: "restart", Name: "web", Detail: strings.Repeat("d", 1000)})
	}
	if used := budget.Used(); used > core.StreamBytes {
		t.Fatalf("an event follower that never read holds %d bytes", used)
	}
	b.emit(eventOf("last")) // small: it fits beside the events queued
	kept := 0
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Kind != "last" {
				kept++
				continue
			}
			if e.Dropped+kept != emitted {
				t.Fatalf("kept %d events, then %q said %d dropped; %d were emitted", kept, e.Kind, e.Dropped, emitted)
			}
			return
		case <-deadline:
			t.Fatalf("the last event never came; %d before it", kept)
		}
	}
}

// Followers that do not read and use up the server's budget do not starve one that keeps up: a
// follower with nothing queued can always queue a line.
func TestLogFollowerThatKeepsUpIsNotStarved(t *testing.T) {
	budget := core.NewStreamBudget(100 << 10) // one big line and a half
	ctx, cancel := context.WithCancel(core.WithStreamBudget(context.Background(), budget))
	defer cancel()
	r := newLogRing("web", 256<<10)
	_, stuck := r.tail(ctx, "", 0, true)
	_, reader := r.tail(ctx, "", 0, true)
	held := 0
	for i := range 10 {
		r.add("out", bigLine())
		if i == 0 {
			held = int(budget.Used()) / 2
		}
		select {
		case l := <-reader:
			if l.Dropped != 0 || len(l.Line) != 64<<10-1 {
				t.Fatalf("line %d: dropped %d, %d bytes", i, l.Dropped, len(l.Line))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("line %d did not come", i)
		}
		// The reader's line is given back once handed over.
		testutil.WaitFor(t, 10*time.Second, "the reader's bytes to be released", func() bool { return int(budget.Used()) == held })
	}
	cancel()
	waitClosed(t, stuck)
	waitClosed(t, reader)
	testutil.WaitFor(t, 10*time.Second, "the budget to be given back", func() bool { return budget.Used() == 0 })
}

// TestLogRingFollowAfterClose: a follower that subscribes after its instance was removed (the API
// looked the ring up, then the scale-down removed the instance) ends at once instead of waiting
// for lines that never come (found in review).
func TestLogRingFollowAfterClose(t *testing.T) {
	r := newLogRing("web", 1<<20)
	r.add("out", []byte("a\n"))
	r.close()
	lines, ch := r.tail(context.Background(), "", 10, true)
	if len(lines) != 1 {
		t.Fatalf("tail %+v", lines)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a line came after close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower of a closed ring never ended")
	}
}

// relayBuf is the size of a busy stream's read buffer in package relay, which the ring is given.
const relayBuf = 128 << 10

// numberedLines returns n lines of size bytes, newlines included, numbered from first.
func numberedLines(first, n, size int) []byte {
	var b bytes.Buffer
	for i := first; i < first+n; i++ {
		l := fmt.Sprintf("line %07d ", i)
		b.WriteString(l + strings.Repeat("x", size-len(l)-1) + "\n")
	}
	return b.Bytes()
}

// TestLogRingKeepsBusyReadsWithoutAllocating: the read buffers of a busy stream go into the ring
// and come back out of it as spares: a steady stream allocates nothing per read (fewer than one
// allocation per 100 reads, the list of chunks included), and the ring holds at most its bound,
// counted in arrays.
func TestLogRingKeepsBusyReadsWithoutAllocating(t *testing.T) {
	r := newLogRing("web", 256<<10)
	line := 0
	read := func() {
		buf := r.spareBuf(relayBuf)
		if len(buf) < relayBuf {
			t.Fatalf("spare of %d bytes, want %d", len(buf), relayBuf)
		}
		n := copy(buf, numberedLines(line, 60, 1000))
		line += 60
		r.keep("out", buf, buf[:n])
	}
	for range 10 {
		read()
	}
	line = 0
	lines := numberedLines(0, 60, 1000) // what read writes, made before counting
	read = func() {
		buf := r.spareBuf(relayBuf)
		r.keep("out", buf, buf[:copy(buf, lines)])
	}
	if n := testing.AllocsPerRun(20, func() {
		for range 100 {
			read()
		}
	}); n > 0 {
		t.Errorf("%.0f allocations per 100 reads of a busy stream, want 0", n)
	}
	if r.size > r.max || len(r.chunks)-r.head != 2 {
		t.Errorf("ring holds %d bytes in %d chunks, limit %d: want 2 buffers", r.size, len(r.chunks)-r.head, r.max)
	}
	if got := lineTexts(t, r, "", 121); len(got) != 120 || got[119] != "out:"+strings.TrimSuffix(string(lines[len(lines)-1000:]), "\n") {
		t.Errorf("tail: %d lines", len(got))
	}
}

// TestLogRingCountsCapacity: a ring of short chunks in big arrays holds no more arrays than its
// bound; copied chunks count their capacity too.
func TestLogRingCountsCapacity(t *testing.T) {
	r := newLogRing("web", 256<<10)
	for i := range 10 {
		buf := r.spareBuf(relayBuf)
		r.keep("out", buf, append(buf[:0], fmt.Sprintf("short %d\n", i)...))
	}
	if got := lineTexts(t, r, "", 100); r.size > r.max || len(got) != 2 || got[1] != "out:short 9" {
		t.Errorf("ring of %d bytes, limit %d, keeps %q: want 2 chunks", r.size, r.max, got)
	}
	r = newLogRing("web", 1024)
	for i := range 200 {
		r.add("out", []byte(fmt.Sprintf("%d\n", i))) // 2 to 4 bytes, in arrays of 8
	}
	if got := lineTexts(t, r, "", 1000); r.size > r.max || len(got) > 1024/8 || got[len(got)-1] != "out:199" {
		t.Errorf("ring of %d bytes, limit %d, keeps %d lines", r.size, r.max, len(got))
	}
}

// TestLogRingSmallerThanBuffers: a ring that cannot hold two read buffers declines them; a busy
// stream's reads are then copied, and the ring keeps the newest one, whole, beyond its bound.
func TestLogRingSmallerThanBuffers(t *testing.T) {
	for _, size := range []int{1024, 200 << 10} {
		r := newLogRing("web", size)
		if b := r.spareBuf(relayBuf); b != nil {
			t.Errorf("ring of %d bytes gave a spare of %d", size, len(b))
		}
		in := numberedLines(0, 1000, 1000)
		var out testutil.SyncBuffer
		w := relay.NewWriter(&out, relay.Options{Format: relay.Raw})
		src := relay.Source{Name: "web", Tap: func(b []byte) { r.add("out", b) }, Spare: r.spareBuf,
			Keep: func(buf, lines []byte) { r.keep("out", buf, lines) }}
		if err := w.Copy(&readSizes{data: in, size: 64 << 10}, src); err != nil {
			t.Fatal(err)
		}
		got := lineTexts(t, r, "", 2000)
		if len(got) == 0 || got[len(got)-1] != "out:"+strings.TrimSuffix(string(in[len(in)-1000:]), "\n") {
			t.Errorf("ring of %d bytes: tail of %d lines, ending %q", size, len(got), got[len(got)-1:])
		}
		if out.String() != string(in) {
			t.Errorf("ring of %d bytes: output differs", size)
		}
	}
}

// readSizes returns data in reads of at most size bytes.
type readSizes struct {
	data []byte
	size int
}

func (r *readSizes) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestRelayToRingAllocatesNothingPerRead: a busy stream relayed into its ring as gaffer wires it
// allocates the same whether it lasts 500 reads or 2500: nothing per read.
func TestRelayToRingAllocatesNothingPerRead(t *testing.T) {
	r := newLogRing("web", 256<<10)
	w := relay.NewWriter(io.Discard, relay.Options{})
	src := relay.Source{Name: "web", Stream: "out", Tap: func(b []byte) { r.add("out", b) }, Spare: r.spareBuf,
		Keep: func(buf, lines []byte) { r.keep("out", buf, lines) }}
	block := bytes.Repeat(numberedLines(0, 1, 1024), 64)
	allocs := func(reads int) float64 {
		return testing.AllocsPerRun(3, func() {
			_ = w.Copy(&repeatBlock{block: block, left: reads}, src)
		})
	}
	allocs(100) // the ring's chunk list, its spare
	short, long := allocs(500), allocs(2500)
	if long-short >= 5 {
		t.Errorf("%.0f allocations for 500 reads, %.0f for 2500: want no more", short, long)
	}
}

// repeatBlock returns block, left times, a read each.
type repeatBlock struct {
	block []byte
	left  int
}

func (r *repeatBlock) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.left--
	return copy(p, r.block), nil
}

// TestRelayToRing: a process's output, relayed as gaffer wires it (big reads kept, small ones
// copied, a line split across two reads and one longer than relay.MaxLine), reaches gaffer's
// output, a follower and the tail line for line, once each, and the readiness watch sees its line
// once, in order.
func TestRelayToRing(t *testing.T) {
	var in bytes.Buffer
	in.Write(numberedLines(0, 200, 1000))
	in.WriteString("almost ready\n")
	in.Write(numberedLines(200, 200, 700))
	in.WriteString("ready\n" + strings.Repeat("L", relay.MaxLine+10) + "\n")
	in.Write(numberedLines(400, 300, 1000))
	in.WriteString("ready\nlast without newline")
	data := in.Bytes()
	readyAt := bytes.Index(data, []byte("\nready\n")) + 1

	var out testutil.SyncBuffer
	wr := relay.NewWriter(&out, relay.Options{Format: relay.Raw})
	var wg sync.WaitGroup
	l := &osLauncher{out: wr, errOut: wr, relays: &wg, warnf: func(string, ...any) {}}
	fired := make(chan int, 10)
	var sent atomic.Int64 // bytes written to the pipe
	in1 := &instance{name: "web", cfg: &config.Process{RedirectOutput: []string{"out", "err"}}, logs: newLogRing("web", 256<<10)}
	in1.logReady = &logWatch{re: regexp.MustCompile(`^ready$`), fire: func() { fired <- int(sent.Load()) }}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, follow := in1.logs.tail(ctx, "", 0, true)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l.relay(in1, 1, output{f: pr, stream: "out"})

	var followed []string
	followedBytes := 0
	next := func() {
		select {
		case ln := <-follow:
			if ln.Dropped > 0 {
				t.Fatalf("follower lost %d lines", ln.Dropped)
			}
			followed = append(followed, ln.Line)
			followedBytes += len(ln.Line)
		case <-time.After(10 * time.Second):
			t.Fatalf("no line followed after %d", len(followed))
		}
	}
	// Writes of 64 KiB, each once the follower had the lines before it: each is a read of its
	// own, big enough to be kept.
	for off := 0; off < len(data); {
		end := min(off+64<<10, len(data))
		sent.Store(int64(end))
		if _, err := pw.Write(data[off:end]); err != nil {
			t.Fatal(err)
		}
		off = end
		complete := data[:bytes.LastIndexByte(data[:end], '\n')+1]
		for followedBytes < len(complete)-bytes.Count(complete, []byte{'\n'}) {
			next()
		}
	}
	pw.Close()
	wg.Wait()
	for followedBytes < len(data)-bytes.Count(data, []byte{'\n'}) {
		next()
	}
	// A line longer than relay.MaxLine comes whole when one read has it all, else in pieces.
	want := strings.Split(string(data), "\n")
	if strings.Join(followed, "") != strings.Join(want, "") || len(followed) < len(want) || len(followed) > len(want)+1 {
		t.Errorf("follower got %d lines, want %d (+1 for a piece of the long line)", len(followed), len(want))
	}
	if got := out.String(); got != rawOf(string(data)) {
		t.Errorf("output differs (%d bytes, want %d)", len(got), len(rawOf(string(data))))
	}
	in1.logs.mu.Lock()
	kept := slices.ContainsFunc(in1.logs.chunks[in1.logs.head:], func(c logChunk) bool { return cap(c.mem) == relayBuf })
	in1.logs.mu.Unlock()
	if !kept {
		t.Error("no read buffer in the ring: every read was copied")
	}
	tail, _ := in1.logs.tail(ctx, "", 50, false)
	var tailed []string
	for _, ln := range tail {
		tailed = append(tailed, ln.Line)
	}
	if !slices.Equal(tailed, want[len(want)-50:]) {
		t.Errorf("tail differs from the last 50 lines at %d", firstDiff(tailed, want[len(want)-50:]))
	}
	select {
	case at := <-fired:
		if at < readyAt {
			t.Errorf("ready fired with %d bytes written, before its line at %d", at, readyAt)
		}
	default:
		t.Error("the readiness watch did not fire")
	}
	if len(fired) > 0 {
		t.Error("the readiness watch fired twice")
	}
}

// rawOf is what relay writes for s in Raw format: lines longer than relay.MaxLine (ASCII) in
// pieces, a newline after the last one.
func rawOf(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		for len(line) > relay.MaxLine {
			b.WriteString(line[:relay.MaxLine] + "\n")
			line = line[relay.MaxLine:]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRelayTwoStreamsShareRing: stdout and stderr of a process, both busy, share its ring, which
// hands the buffers one relay gave it to the other: the output stays intact, and under the race
// detector no buffer is written while another relay still reads it.
func TestRelayTwoStreamsShareRing(t *testing.T) {
	var out, errOut testutil.SyncBuffer
	var wg sync.WaitGroup
	l := &osLauncher{out: relay.NewWriter(&out, relay.Options{Format: relay.Raw}),
		errOut: relay.NewWriter(&errOut, relay.Options{Format: relay.Raw}), relays: &wg, warnf: func(string, ...any) {}}
	in1 := &instance{name: "web", cfg: &config.Process{RedirectOutput: []string{"out", "err"}}, logs: newLogRing("web", 256<<10)}
	in1.logReady = &logWatch{re: regexp.MustCompile(`^never$`), fire: func() {}}
	data := map[string][]byte{"out": numberedLines(0, 3000, 1000), "err": numberedLines(5000, 3000, 900)}
	var writers sync.WaitGroup
	for _, stream := range []string{"out", "err"} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		l.relay(in1, 1, output{f: pr, stream: stream})
		writers.Go(func() {
			defer pw.Close()
			if _, err := pw.Write(data[stream]); err != nil {
				t.Error(err)
			}
		})
	}
	writers.Wait()
	wg.Wait()
	if out.String() != string(data["out"]) || errOut.String() != string(data["err"]) {
		t.Errorf("output differs: %d and %d bytes, want %d and %d", out.Len(), errOut.Len(), len(data["out"]), len(data["err"]))
	}
	for _, ln := range lineTextsAll(t, in1.logs) {
		if !strings.HasPrefix(ln, "line ") || strings.Trim(ln[13:], "x") != "" || len(ln) != 999 && len(ln) != 899 {
			t.Fatalf("ring holds a line that was not written: %.40q (%d bytes)", ln, len(ln))
		}
	}
}

func lineTextsAll(t *testing.T, r *logRing) []string {
	t.Helper()
	lines, _ := r.tail(context.Background(), "", 1<<20, false)
	var out []string
	for _, l := range lines {
		out = append(out, l.Line)
	}
	return out
}
