package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"gaffer/core"
)

func TestClientReachErrors(t *testing.T) {
	path := socketPath(t)
	c := Client{Path: path, Timeout: time.Second}
	_, _, err := c.Do(context.Background(), "GET", "/v1/info", nil)
	if err == nil || err.Error() != "cannot reach gaffer at "+path+": no such file or directory" || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("missing socket: %v", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	_, _, err = c.Do(context.Background(), "GET", "/v1/info", nil)
	if err == nil || err.Error() != "cannot reach gaffer at "+path+": connection refused" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused: %v", err)
	}
	_, err = c.Stream(context.Background(), "GET", "/v1/events", nil, nil)
	if err == nil || err.Error() != "cannot reach gaffer at "+path+": connection refused" {
		t.Errorf("Stream refused: %v", err)
	}
	if _, _, err := c.Do(context.Background(), "GET", "v1/info", nil); err == nil {
		t.Error("a path without / accepted")
	}
	if _, _, err := c.Do(context.Background(), "GET", "/v1/info x", nil); err == nil {
		t.Error("a path with a space accepted")
	}
}

func TestClientTimeout(t *testing.T) {
	// A server that accepts and never answers.
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := Client{Path: path, Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, _, err = c.Do(context.Background(), "GET", "/v1/info", nil)
	if err == nil || err.Error() != "no answer from gaffer at "+path+": context deadline exceeded" {
		t.Errorf("Do: %v", err)
	}
	_, err = c.Stream(context.Background(), "GET", "/v1/events", nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "no answer from gaffer at ") {
		t.Errorf("Stream: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestClientJSON(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path()}
	var info core.Info
	if err := c.JSON(context.Background(), "GET", "/v1/info", nil, &info); err != nil || info.Version != "test" || info.Socket != s.Path() {
		t.Errorf("%+v %v", info, err)
	}
	err := c.JSON(context.Background(), "POST", "/v1/processes/web/scale", map[string]int{"numprocesses": -2}, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 400 || err.Error() != "numprocesses must not be negative" {
		t.Errorf("%v", err)
	}
	if err := c.JSON(context.Background(), "POST", "/v1/processes/web/signal", map[string]any{"signal": "TERM"}, nil); err != nil {
		t.Error(err)
	}
	// A body over the limit: the 413 comes back, not a broken pipe.
	code, body, err := c.Do(context.Background(), "POST", "/v1/processes/web/stdin", make([]byte, 3*DefaultMaxBody))
	if err != nil || code != 413 {
		t.Errorf("big body: %d %s %v", code, body, err)
	}
}

func TestNetHTTPClient(t *testing.T) {
	b := newFakeBackend(2)
	b.events = make(chan core.Event)
	s := startServer(t, b, nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s.Path())
	}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	// Several requests over kept-alive connections.
	for range 3 {
		resp, err := hc.Get("http://gaffer/v1/processes")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"web.2"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	resp, err := hc.Post("http://gaffer/v1/processes/web/stdin", "application/octet-stream", strings.NewReader("from net/http"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if stdin, _ := b.writes(); resp.StatusCode != 200 || string(stdin[0]) != "from net/http" {
		t.Errorf("POST: %d %q", resp.StatusCode, stdin)
	}
	// A chunked request body (unknown length).
	resp, err = hc.Post("http://gaffer/v1/processes/web/stdin", "", io.MultiReader(strings.NewReader("chunk"), strings.NewReader("ed")))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if stdin, _ := b.writes(); resp.StatusCode != 200 || len(stdin) != 2 || string(stdin[1]) != "chunked" {
		t.Errorf("chunked POST: %d %q", resp.StatusCode, stdin)
	}
	// A stream.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://gaffer/v1/events?follow=1", nil)
	resp, err = (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bctx := backendCtx(t, b)
	b.events <- core.Event{Kind: "ready", Name: "web"}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"kind":"ready"`) {
		t.Errorf("stream: %q %v", line, err)
	}
	cancel()
	resp.Body.Close()
	waitDone(t, "net/http stream", bctx)
}

func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	out, err := exec.Command("curl", args...).Output()
	return string(out), err
}

func TestCurl(t *testing.T) {
	b := newFakeBackend(2)
	b.events = make(chan core.Event, 1)
	s := startServer(t, b, nil)
	sock := s.Path()
	out, err := curl(t, "-sS", "--fail-with-body", "--unix-socket", sock, "http://gaffer/v1/info")
	if err != nil || !strings.Contains(out, `"version":"test"`) {
		t.Errorf("GET: %q %v", out, err)
	}
	out, err = curl(t, "-sS", "--unix-socket", sock, "-d", `{"signal":"HUP"}`, "http://gaffer/v1/processes/web/signal")
	if err != nil || out != "{\"ok\":true}\n" {
		t.Errorf("POST: %q %v", out, err)
	}
	// curl -T - sends stdin chunked.
	cmd := exec.Command("curl", "-sS", "--unix-socket", sock, "-T", "-", "-X", "POST", "http://gaffer/v1/processes/web/stdin")
	cmd.Stdin = strings.NewReader("piped\n")
	out2, err := cmd.Output()
	if stdin, _ := b.writes(); err != nil || !strings.Contains(string(out2), `"bytes":6`) || string(stdin[len(stdin)-1]) != "piped\n" {
		t.Errorf("curl -T -: %q %v %q", out2, err, stdin)
	}
	// A big body: curl asks with Expect: 100-continue and gets 413 at once.
	big := strings.Repeat("x", DefaultMaxBody+1)
	cmd = exec.Command("curl", "-sS", "-w", "%{http_code}", "-o", "/dev/null", "--unix-socket", sock, "--data-binary", "@-", "http://gaffer/v1/processes/web/stdin")
	cmd.Stdin = strings.NewReader(big)
	if out, err := cmd.Output(); err != nil || string(out) != "413" {
		t.Errorf("big body: %q %v", out, err)
	}
	// Without Expect, curl sends the body while the 413 comes; gaffer drains it before closing.
	cmd = exec.Command("curl", "-sS", "-H", "Expect:", "-w", "%{http_code}", "-o", "/dev/null", "--unix-socket", sock, "--data-binary", "@-", "http://gaffer/v1/processes/web/stdin")
	cmd.Stdin = strings.NewReader(big)
	if out, err := cmd.Output(); err != nil || string(out) != "413" {
		t.Errorf("big body without Expect: %q %v", out, err)
	}
	out, _ = curl(t, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock, "http://gaffer/v1/nothing")
	if out != "404" {
		t.Errorf("404: %q", out)
	}
	// A stream: the event sent before curl connects is buffered by the fake; curl shows it at once
	// (-N) and ends at --max-time with exit 28.
	b.events <- core.Event{Kind: "spawn", Name: "web"}
	out, err = curl(t, "-sN", "--max-time", "1", "--unix-socket", sock, "http://gaffer/v1/events?follow=1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 28 || !strings.Contains(out, `"kind":"spawn"`) {
		t.Errorf("stream: %q %v", out, err)
	}
	ctx := backendCtx(t, b)
	waitDone(t, "curl stream", ctx)
}

// TestPeerUID connects as uid 65534 (as root, through setpriv) to a socket anyone may open: the
// peer check answers 403, unless the uid is allowed.
func TestPeerUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	for _, tt := range []struct {
		allow []int
		want  string
	}{
		{nil, "403"},
		{[]int{65534}, "200"},
	} {
		s := startServer(t, newFakeBackend(2), func(o *Options) { o.Mode = 0o666; o.AllowUIDs = tt.allow })
		os.Chmod(strings.TrimSuffix(s.Path(), "/s.sock"), 0o755)
		out, err := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
			"curl", "-s", "-w", "\n%{http_code}", "--unix-socket", s.Path(), "http://gaffer/v1/info").Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		i := strings.LastIndexByte(string(out), '\n')
		body, code := strings.TrimSpace(string(out[:i])), string(out[i+1:])
		if code != tt.want {
			t.Errorf("allow %v: got %s %s, want %s", tt.allow, code, body, tt.want)
		}
		if tt.want == "403" && body != `{"error":"permission denied: uid not allowed by socket_allow_uids"}` {
			t.Errorf("403 body %q", body)
		}
	}
}
