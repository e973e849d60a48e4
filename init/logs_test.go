package pid1

import (
	"context"
	"fmt"
	"gaffer/internal/testutil"
	"strings"
	"testing"
	"time"

	"gaffer/core"
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
