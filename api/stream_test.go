package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"gaffer/core"
	"gaffer/http1"
	"gaffer/stats"
)

// openStream sends a request on a new connection and reads the head of a streamed answer; its
// body follows in br.
func openStream(t *testing.T, path, raw string) (net.Conn, *bufio.Reader, *http1.Response) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	head, err := http1.ReadResponse(br, DefaultMaxHeader)
	if err != nil {
		t.Fatalf("response head: %v", err)
	}
	return c, br, head
}

// backendCtx waits for the ctx the backend got for a stream.
func backendCtx(t *testing.T, b *fakeBackend) context.Context {
	t.Helper()
	select {
	case ctx := <-b.streamCtx:
		return ctx
	case <-time.After(5 * time.Second):
		t.Fatal("the backend was not asked for a stream")
	}
	return nil
}

func waitDone(t *testing.T, what string, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the backend's ctx was not cancelled", what)
	}
}

func TestEventsStreamEndsWhenClientLeaves(t *testing.T) {
	b := newFakeBackend(2)
	b.events = make(chan core.Event)
	s := startServer(t, b, nil)
	for _, target := range []string{"/v1/events?follow=1", "/v1/events"} {
		c, br, head := openStream(t, s.Path(), "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if head.Code != 200 || head.Header["transfer-encoding"] != "chunked" || head.Header["content-type"] != "application/x-ndjson" {
			t.Fatalf("head %+v", head)
		}
		ctx := backendCtx(t, b)
		cr := bufio.NewReader(head.Body(br))
		for i := range 3 {
			b.events <- core.Event{Kind: "spawn", Name: "web", Pid: 100 + i}
			line, err := cr.ReadString('\n')
			if err != nil || !strings.Contains(line, `"kind":"spawn"`) {
				t.Fatalf("line %d: %q %v", i, line, err)
			}
		}
		c.Close()
		waitDone(t, target, ctx)
	}
	testutil.WaitFor(t, 5*time.Second, "the connections to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
}

func TestLogsFollow(t *testing.T) {
	b := newFakeBackend(2)
	b.logs = make(chan core.LogLine)
	s := startServer(t, b, nil)
	c, br, head := openStream(t, s.Path(), "GET /v1/processes/web/logs?follow=1&tail=2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if head.Code != 200 || head.Header["transfer-encoding"] != "chunked" {
		t.Fatalf("head %+v", head)
	}
	ctx := backendCtx(t, b)
	cr := bufio.NewReader(head.Body(br))
	for _, want := range []string{"line 0", "line 1"} {
		if line, err := cr.ReadString('\n'); err != nil || !strings.Contains(line, want) {
			t.Fatalf("tail: %q %v, want %s", line, err, want)
		}
	}
	b.logs <- core.LogLine{Name: "web", Stream: "out", Line: "<new> & fresh"}
	if line, err := cr.ReadString('\n'); err != nil || !strings.Contains(line, `"line":"<new> & fresh"`) {
		t.Fatalf("followed: %q %v", line, err)
	}
	// The backend ends the stream (it closes the channel): the last chunk comes.
	close(b.logs)
	if rest, err := io.ReadAll(cr); err != nil || len(rest) != 0 {
		t.Fatalf("after the end: %q %v", rest, err)
	}
	waitDone(t, "logs", ctx)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed after the stream: %v", err)
	}
	c.Close()
}

func TestStatsWatch(t *testing.T) {
	b := newFakeBackend(3)
	calls := make(chan context.Context, 100)
	s := startServer(t, b, func(o *Options) {
		o.Stats = func(ctx context.Context, pids map[string]int) (stats.Snapshot, error) {
			calls <- ctx
			return fakeStats(ctx, pids)
		}
	})
	for _, tt := range []struct{ target, want string }{
		{"/v1/stats?watch=1&interval=100ms", `"processes":[`},
		{"/v1/processes/web/stats?watch=1&interval=0.1", `"name":"web","pid":101`},
	} {
		c, br, head := openStream(t, s.Path(), "GET "+tt.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if head.Code != 200 {
			t.Fatalf("%s: %+v", tt.target, head)
		}
		cr := bufio.NewReader(head.Body(br))
		start := time.Now()
		for i := range 3 {
			line, err := cr.ReadString('\n')
			if err != nil || !strings.Contains(line, tt.want) || !json.Valid([]byte(line)) {
				t.Fatalf("%s line %d: %q %v", tt.target, i, line, err)
			}
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("%s: three lines in %v with interval 100ms", tt.target, d)
		}
		var ctx context.Context
		for len(calls) > 0 {
			ctx = <-calls
		}
		c.Close()
		waitDone(t, tt.target, ctx)
	}
}

func TestStatsWatchProcessGoes(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	// web.2 does not run: its entry is zeros. A process that does not exist ends the stream with
	// an error line.
	code, body, err := (&Client{Path: s.Path()}).Do(context.Background(), "GET", "/v1/processes/web.2/stats", nil)
	if err != nil || code != 200 || !strings.Contains(string(body), `"pid":0`) {
		t.Errorf("%d %s %v", code, body, err)
	}
}

func TestStreamEndsWhenServerCloses(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	got := make(chan error, 1)
	go func() {
		_, err := c.Stream(context.Background(), "GET", "/v1/events?follow=1", nil, func([]byte) error { return nil })
		got <- err
	}()
	ctx := backendCtx(t, b)
	go s.Close()
	waitDone(t, "server close", ctx)
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("Stream: %v, want a clean end (the last chunk)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
}

func TestHTTP10Stream(t *testing.T) {
	b := newFakeBackend(2)
	b.events = make(chan core.Event)
	s := startServer(t, b, nil)
	c, br, head := openStream(t, s.Path(), "GET /v1/events HTTP/1.0\r\n\r\n")
	if head.Code != 200 || head.Header["transfer-encoding"] != "" || head.Header["connection"] != "close" {
		t.Fatalf("head %+v", head)
	}
	ctx := backendCtx(t, b)
	b.events <- core.Event{Kind: "reap"}
	if line, err := br.ReadString('\n'); err != nil || line != `{"time":"0001-01-01T00:00:00Z","kind":"reap"}`+"\n" {
		t.Fatalf("%q %v", line, err)
	}
	c.Close()
	waitDone(t, "1.0 stream", ctx)
}

func TestClientStream(t *testing.T) {
	b := newFakeBackend(2)
	b.events = make(chan core.Event)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan string)
	done := make(chan error, 1)
	go func() {
		_, err := c.Stream(ctx, "GET", "/v1/events?follow=1", nil, func(l []byte) error {
			lines <- string(l)
			return nil
		})
		done <- err
	}()
	bctx := backendCtx(t, b)
	b.events <- core.Event{Kind: "exit", Name: "web"}
	if l := <-lines; l != `{"time":"0001-01-01T00:00:00Z","kind":"exit","name":"web"}` {
		t.Errorf("line %q", l)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Stream after cancel: %v", err)
	}
	waitDone(t, "client cancel", bctx)

	// fn's error ends the stream and is returned.
	stop := errors.New("enough")
	go func() {
		_, err := c.Stream(context.Background(), "GET", "/v1/processes/web/logs", nil, func([]byte) error { return stop })
		done <- err
	}()
	if err := <-done; err != stop {
		t.Errorf("Stream with fn error: %v", err)
	}
	// A non-2xx answer is a StatusError.
	code, err := c.Stream(context.Background(), "GET", "/v1/processes/nope/logs?follow=1", nil, func([]byte) error { return nil })
	var se *StatusError
	if code != 404 || !errors.As(err, &se) || se.Code != 404 || se.Message != `no process "nope": not found` {
		t.Errorf("Stream 404: %d %v", code, err)
	}
}

// A follower that fell behind is told in-band: {"dropped": N} before the next line it gets, for
// logs and for events.
func TestStreamSaysDropped(t *testing.T) {
	b := newFakeBackend(2)
	b.logs = make(chan core.LogLine)
	b.events = make(chan core.Event)
	s := startServer(t, b, nil)
	for _, tt := range []struct {
		target string
		send   func(dropped int, text string)
		want   string
	}{
		{"/v1/processes/web/logs?follow=1&tail=0", func(n int, text string) {
			b.logs <- core.LogLine{Name: "web", Stream: "out", Line: text, Dropped: n}
		}, `"line":"%s"`},
		{"/v1/events?follow=1", func(n int, text string) {
			b.events <- core.Event{Kind: "exit", Name: "web", Detail: text, Dropped: n}
		}, `"detail":"%s"`},
	} {
		c, br, head := openStream(t, s.Path(), "GET "+tt.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if head.Code != 200 {
			t.Fatalf("%s: %+v", tt.target, head)
		}
		ctx := backendCtx(t, b)
		if core.StreamBudgetFrom(ctx) != s.streams {
			t.Errorf("%s: the backend's ctx does not carry the server's stream budget", tt.target)
		}
		cr := bufio.NewReader(head.Body(br))
		expect := func(want string) {
			t.Helper()
			line, err := cr.ReadString('\n')
			if err != nil || !strings.Contains(line, want) {
				t.Fatalf("%s: %q %v, want %s", tt.target, line, err, want)
			}
		}
		tt.send(0, "first")
		expect(fmt.Sprintf(tt.want, "first"))
		tt.send(7, "after seven lost")
		expect(`{"dropped":7}` + "\n")
		expect(fmt.Sprintf(tt.want, "after seven lost"))
		tt.send(0, "next")
		expect(fmt.Sprintf(tt.want, "next"))
		c.Close()
		waitDone(t, tt.target, ctx)
	}
}
