package pid1

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gaffer/api"
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

type apiEvent = api.Event

func eventOf(kind string) api.Event { return api.Event{Time: time.Now(), Kind: kind} }
