package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"gaffer/core"
	"gaffer/stats"
)

func TestRoutes(t *testing.T) {
	b := newFakeBackend(3)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	tests := []struct {
		method, path, body string
		code               int
		want               string // a substring of the body
		call               string // a call the backend must have seen
	}{
		{"GET", "/v1/info", "", 200, `"version":"test"`, ""},
		{"GET", "/v1/info", "", 200, `"socket":"` + s.Path() + `"`, ""},
		{"GET", "/v1/processes", "", 200, `"name":"web.2"`, ""},
		{"GET", "/v1/processes/web", "", 200, `"config":{"cmd":"serve web"}`, ""},
		{"GET", "/v1/processes/web.2", "", 200, `"name":"web.2"`, ""},
		{"GET", "/v1/processes/web%2E2", "", 200, `"name":"web.2"`, ""},
		{"GET", "/v1/processes/nope", "", 404, `{"error":"no process \"nope\": not found"}`, ""},
		{"GET", "/v1/processes/broken", "", 500, `something broke`, ""},
		{"GET", "/v1/stats", "", 200, `"processes":[`, ""},
		{"GET", "/v1/stats?interval=bogus", "", 400, `malformed interval`, ""},
		{"GET", "/v1/stats?interval=10ms", "", 400, `below the minimum`, ""},
		{"GET", "/v1/stats?watch=maybe", "", 400, `watch must be`, ""},
		{"GET", "/v1/processes/web/stats", "", 200, `"memory_rss":103424`, ""},
		{"GET", "/v1/processes/web.2/stats", "", 200, `"name":"web.2","pid":0`, ""},
		{"GET", "/v1/processes/nope/stats", "", 404, `not found`, ""},
		{"POST", "/v1/processes/web/signal", `{"signal":"HUP","group":true}`, 200, `{"ok":true}`, "signal web 1 true"},
		{"POST", "/v1/processes/web/signal", `{"signal":"SIGUSR1"}`, 200, `{"ok":true}`, "signal web 10 false"},
		{"POST", "/v1/processes/web/signal", `{"signal":15}`, 200, `{"ok":true}`, "signal web 15 false"},
		{"POST", "/v1/processes/web/signal", `{"signal":"9"}`, 200, `{"ok":true}`, "signal web 9 false"},
		{"POST", "/v1/processes/web/signal", `{"signal":"NOPE"}`, 400, `unknown signal`, ""},
		{"POST", "/v1/processes/web/signal", `{"signal":99}`, 400, `out of range`, ""},
		{"POST", "/v1/processes/web/signal", `{"signal":1.5}`, 400, `name or a number`, ""},
		{"POST", "/v1/processes/web/signal", `{"signal":"HUP"`, 400, `malformed JSON`, ""},
		{"POST", "/v1/processes/web/signal", `{"signal":"HUP"} {}`, 400, `data after`, ""},
		{"POST", "/v1/processes/web/signal", `{"sig":"HUP"}`, 400, `unknown field`, ""},
		{"POST", "/v1/processes/web/signal", `{}`, 400, `needs \"signal\"`, ""},
		{"POST", "/v1/processes/web/signal", ``, 400, `needs a JSON body`, ""},
		{"POST", "/v1/processes/nope/signal", `{"signal":"HUP"}`, 404, `not found`, ""},
		{"POST", "/v1/processes/web/start", "", 200, `{"ok":true}`, "start web false"},
		{"POST", "/v1/processes/web/start?wait=1", "", 200, `{"ok":true}`, "start web true"},
		{"POST", "/v1/processes/web/stop?wait=true", "", 200, `{"ok":true}`, "stop web true"},
		{"POST", "/v1/processes/web/restart?wait", "", 200, `{"ok":true}`, "restart web true"},
		{"POST", "/v1/processes/web/restart?wait=0", "", 200, `{"ok":true}`, "restart web false"},
		{"POST", "/v1/processes/web/restart?wait=x", "", 400, `wait must be`, ""},
		{"POST", "/v1/processes/busy/start", "", 409, `already running`, ""},
		{"POST", "/v1/processes/leaving/stop", "", 409, `gaffer is exiting`, ""},
		{"POST", "/v1/processes/bad/stop", "", 400, `cannot do that`, ""},
		{"POST", "/v1/processes/nope/restart", "", 404, `not found`, ""},
		{"POST", "/v1/processes/web/stdin", "hello\n", 200, `{"ok":true,"bytes":6}`, ""},
		{"POST", "/v1/processes/busy/stdin", "hello\n", 409, `already running`, ""},
		{"POST", "/v1/processes/web/streams/audit", "a line\n", 200, `"bytes":7`, ""},
		{"POST", "/v1/processes/web/streams/other", "x", 404, `no stream \"other\"`, ""},
		{"POST", "/v1/processes/web/scale", `{"numprocesses": 3}`, 200, `{"ok":true}`, "scale web 3"},
		{"POST", "/v1/processes/web/scale", `{"numprocesses": 0}`, 200, `{"ok":true}`, "scale web 0"},
		{"POST", "/v1/processes/web/scale", `{"numprocesses": -1}`, 400, `must not be negative`, ""},
		{"POST", "/v1/processes/web/scale", `{"numprocesses": 2.5}`, 400, `malformed JSON`, ""},
		{"POST", "/v1/processes/web/scale", `{"numprocesses": "3"}`, 400, `malformed JSON`, ""},
		{"POST", "/v1/processes/web/scale", `{}`, 400, `needs \"numprocesses\"`, ""},
		{"POST", "/v1/processes/nope/scale", `{"numprocesses": 1}`, 404, `not found`, ""},
		{"GET", "/v1/processes/web/logs", "", 200, `"line":"line 2"`, `logs web "" 100 false`},
		{"GET", "/v1/processes/web/logs?stream=err&tail=1", "", 200, `"line":"line 0"`, `logs web "err" 1 false`},
		{"GET", "/v1/processes/web/logs?tail=-1", "", 400, `tail must be`, ""},
		{"GET", "/v1/processes/web/logs?stream=nope", "", 404, `no stream`, ""},
		{"GET", "/v1/processes/nope/logs", "", 404, `not found`, ""},
		{"GET", "/v1/events?follow=x", "", 400, `follow must be`, ""},
		{"GET", "/healthz", "", 200, `{"ok":true}`, ""},
		{"GET", "/metrics", "", 200, "gaffer_", ""},
		{"GET", "/v1/nothing", "", 404, `no such route`, ""},
		{"GET", "/v1/processes/", "", 404, `no such route`, ""},
		{"GET", "/v1/processes/web/", "", 404, `no such route`, ""},
		{"GET", "/v1/processes/web/streams/", "", 404, `no such route`, ""},
		{"GET", "/v1//info", "", 404, `no such route`, ""},
		{"GET", "/", "", 404, `no such route`, ""},
		{"GET", "/v1/processes/web%zz", "", 400, `malformed path`, ""},
		{"GET", "/v1/info?a=%zz", "", 400, `malformed query`, ""},
		{"POST", "/v1/info", "", 405, `use GET`, ""},
		{"GET", "/v1/shutdown", "", 405, `use POST`, ""},
		{"DELETE", "/v1/processes/web", "", 405, `use GET`, ""},
		{"GET", "/v1/processes/web/signal", "", 405, `use POST`, ""},
	}
	for _, tt := range tests {
		var body []byte
		if tt.body != "" || tt.method == "POST" {
			body = []byte(tt.body)
		}
		code, resp, err := c.Do(context.Background(), tt.method, tt.path, body)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		if code != tt.code || !strings.Contains(string(resp), tt.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %s", tt.method, tt.path, tt.body, code, resp, tt.code, tt.want)
		}
		if code >= 400 {
			var eb map[string]any
			if err := json.Unmarshal(resp, &eb); err != nil || len(eb) != 1 || eb["error"] == nil {
				t.Errorf("%s %s: error body %s is not {\"error\": ...}", tt.method, tt.path, resp)
			}
		}
		if tt.call != "" && !slices.Contains(b.called(), tt.call) {
			t.Errorf("%s %s: backend calls %q lack %q", tt.method, tt.path, b.called(), tt.call)
		}
	}
	stdin, streams := b.writes()
	if got := stdin; len(got) != 1 || string(got[0]) != "hello\n" {
		t.Errorf("stdin writes %q", got)
	}
	if got := streams; len(got) != 1 || got[0] != "web/audit:a line\n" {
		t.Errorf("stream writes %q", got)
	}
}

func TestMethodNotAllowedHeader(t *testing.T) {
	s := startServer(t, newFakeBackend(2), nil)
	for _, tt := range []struct{ req, allow string }{
		{"PUT /v1/info HTTP/1.1\r\nHost: x\r\n\r\n", "GET"},
		{"GET /v1/processes/web/restart HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "POST"},
		{"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET"},
	} {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(tt.req))
		r := readRawResponse(t, bufio.NewReader(c))
		c.Close()
		if r.code != 405 || r.header["allow"] != tt.allow || r.header["content-type"] != "application/json" {
			t.Errorf("%q: %d %v %s", tt.req, r.code, r.header, r.body)
		}
	}
}

func TestHealth(t *testing.T) {
	b := newFakeBackend(2)
	b.mu.Lock()
	b.healthy = false
	b.mu.Unlock()
	s := startServer(t, b, nil)
	code, body, err := (&Client{Path: s.Path()}).Do(context.Background(), "GET", "/healthz", nil)
	if err != nil || code != 503 || strings.TrimSpace(string(body)) != `{"ok":false,"reasons":["web.2 is exited","draining"]}` {
		t.Errorf("got %d %s %v", code, body, err)
	}
}

// TestHealthReport: GET /v1/health asks the Backend at the level and for the names asked (alive
// and every process by default), answers 200 or 503 with the report, 400 for a bad level or an
// empty name, 404 for an unknown name; /healthz asks at ready.
func TestHealthReport(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	for _, tt := range []struct {
		healthy bool
		path    string
		code    int
		want    string // the whole body, or with a leading ~ a part of it
		call    string
	}{
		{true, "/v1/health", 200, `{"ok":true,"level":"alive","draining":false,"stopping":false,"failing":[],"checked":2}`, `health alive []`},
		{true, "/v1/health?level=ready", 200, `{"ok":true,"level":"ready","draining":false,"stopping":false,"failing":[],"checked":2}`, `health ready []`},
		{true, "/v1/health?level=alive&name=web&name=web.2", 200, `~"ok":true`, `health alive ["web" "web.2"]`},
		{true, "/v1/health?name=web", 200, `~"level":"alive"`, `health alive ["web"]`},
		{false, "/v1/health", 503, `{"ok":false,"level":"alive","draining":false,"stopping":false,"failing":[{"name":"web.2","reason":"is exited"}],"checked":2}`, ""},
		{false, "/v1/health?level=ready", 503, `{"ok":false,"level":"ready","draining":true,"stopping":false,"failing":[{"name":"web.2","reason":"is exited"},{"reason":"draining"}],"checked":2}`, ""},
		{false, "/healthz", 503, `{"ok":false,"reasons":["web.2 is exited","draining"]}`, "health ready []"},
		{true, "/v1/health?level=dead", 400, `{"error":"level must be alive or ready, not \"dead\""}`, ""},
		{true, "/v1/health?level=", 200, `~"level":"alive"`, ""},
		{true, "/v1/health?name=", 400, `{"error":"empty name"}`, ""},
		{true, "/v1/health?name=web&name=nope", 404, `{"error":"no process \"nope\": not found"}`, ""},
		{true, "/v1/health?name=%zz", 400, `~malformed query`, ""},
	} {
		b.mu.Lock()
		b.healthy = tt.healthy
		b.mu.Unlock()
		code, body, err := c.Do(context.Background(), "GET", tt.path, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		got := strings.TrimSuffix(string(body), "\n")
		match := got == tt.want
		if strings.HasPrefix(tt.want, "~") {
			match = strings.Contains(got, tt.want[1:])
		}
		if code != tt.code || !match {
			t.Errorf("%s (healthy %v): %d %s, want %d %s", tt.path, tt.healthy, code, got, tt.code, tt.want)
		}
		if tt.call != "" && !slices.Contains(b.called(), tt.call) {
			t.Errorf("%s: backend calls %q lack %q", tt.path, b.called(), tt.call)
		}
	}
	if code, _, _ := c.Do(context.Background(), "POST", "/v1/health", []byte{}); code != 405 {
		t.Errorf("POST /v1/health: %d, want 405", code)
	}
}

// TestReload: POST /v1/reload applies (or with dry_run=1 plans) through the Reloader and answers
// its result, 200, or 422 with the same shape when the configuration has errors.
func TestReload(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	plan := `"plan":[{"name":"web","action":"restart","why":"cmd changed"},{"name":"web.2","action":"keep"}],"needs_restart":["socket"]}`
	for _, tt := range []struct {
		path   string
		errors []string
		code   int
		want   string
		call   string
	}{
		{"/v1/reload", nil, 200, `{"applied":true,"dry_run":false,` + plan, "reload false"},
		{"/v1/reload?dry_run=1", nil, 200, `{"applied":false,"dry_run":true,` + plan, "reload true"},
		{"/v1/reload?dry_run", nil, 200, `{"applied":false,"dry_run":true,`, "reload true"},
		{"/v1/reload?dry_run=0", nil, 200, `{"applied":true,"dry_run":false,`, "reload false"},
		{"/v1/reload", []string{"gaffer.toml:3: unknown key \"cmdd\""}, 422,
			`{"applied":false,"dry_run":false,"plan":[],"errors":["gaffer.toml:3: unknown key \"cmdd\""]}`, ""},
		{"/v1/reload?dry_run=yes", nil, 400, `{"error":"dry_run must be 1 or 0, not \"yes\""}`, ""},
	} {
		b.mu.Lock()
		b.reloadErrors = tt.errors
		b.mu.Unlock()
		code, body, err := c.Do(context.Background(), "POST", tt.path, []byte{})
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if got := strings.TrimSuffix(string(body), "\n"); code != tt.code || !strings.HasPrefix(got, tt.want) {
			t.Errorf("POST %s: %d %s, want %d %s", tt.path, code, got, tt.code, tt.want)
		}
		if tt.call != "" && !slices.Contains(b.called(), tt.call) {
			t.Errorf("%s: backend calls %q lack %q", tt.path, b.called(), tt.call)
		}
	}
	if code, _, _ := c.Do(context.Background(), "GET", "/v1/reload", nil); code != 405 {
		t.Errorf("GET /v1/reload: %d, want 405", code)
	}
}

func TestMetrics(t *testing.T) {
	s := startServer(t, newFakeBackend(3), nil)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
	r := readRawResponse(t, bufio.NewReader(c))
	if r.code != 200 || r.header["content-type"] != "text/plain; version=0.0.4; charset=utf-8" || !strings.Contains(r.body, `version="test"`) {
		t.Errorf("got %d %v\n%s", r.code, r.header, r.body)
	}
}

func TestStatsUnavailable(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) { o.Stats = nil })
	c := Client{Path: s.Path()}
	for _, p := range []string{"/v1/stats", "/v1/processes/web/stats"} {
		if code, body, err := c.Do(context.Background(), "GET", p, nil); err != nil || code != 409 {
			t.Errorf("%s: %d %s %v", p, code, body, err)
		}
	}
	// /metrics still answers, without resource metrics.
	if code, body, err := c.Do(context.Background(), "GET", "/metrics", nil); err != nil || code != 200 {
		t.Errorf("/metrics: %d %s %v", code, body, err)
	}
}

func TestStatsError(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) {
		o.Stats = func(context.Context, map[string]int) (stats.Snapshot, error) {
			return stats.Snapshot{}, errors.New("proc is gone")
		}
	})
	code, body, err := (&Client{Path: s.Path()}).Do(context.Background(), "GET", "/v1/stats", nil)
	if err != nil || code != 500 || !strings.Contains(string(body), "cannot collect stats: proc is gone") {
		t.Errorf("got %d %s %v", code, body, err)
	}
}

func TestShutdown(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	code, body, err := (&Client{Path: s.Path()}).Do(context.Background(), "POST", "/v1/shutdown", nil)
	if err != nil || code != 202 || strings.TrimSpace(string(body)) != `{"ok":true}` {
		t.Errorf("got %d %s %v", code, body, err)
	}
	select {
	case <-b.shutdown:
	case <-time.After(5 * time.Second):
		t.Fatal("Backend.Shutdown not called")
	}
}

func TestPanicIsRecovered(t *testing.T) {
	var logged strings.Builder
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	s := startServer(t, newFakeBackend(2), func(o *Options) {
		o.Logf = func(format string, args ...any) {
			<-mu
			logged.WriteString(format)
			mu <- struct{}{}
		}
	})
	c := Client{Path: s.Path()}
	code, body, err := c.Do(context.Background(), "POST", "/v1/processes/panic/start", nil)
	if err != nil || code != 500 || !strings.Contains(string(body), "internal error") {
		t.Errorf("got %d %s %v", code, body, err)
	}
	if code, _, err := c.Do(context.Background(), "GET", "/v1/info", nil); err != nil || code != 200 {
		t.Errorf("after a panic: %d %v", code, err)
	}
	<-mu
	if !strings.Contains(logged.String(), "panic") {
		t.Errorf("panic not logged: %q", logged.String())
	}
	mu <- struct{}{}
}

// TestBackendWithoutCapabilities: a Backend with only the base methods (gaffer --) answers 409 on
// the routes of the capabilities it lacks, after the request itself was checked, and serves the
// rest.
func TestBackendWithoutCapabilities(t *testing.T) {
	b := newFakeBackend(1)
	s := startServer(t, struct{ core.Backend }{b}, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	const unsupported = `{"error":"not available in gaffer -- mode (use gaffer up): conflict"}` + "\n"
	for _, tt := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/processes/web/start", "", 409, unsupported},
		{"POST", "/v1/processes/nope/start?wait=1", "", 409, unsupported},
		{"POST", "/v1/processes/web/restart", "", 409, unsupported},
		{"POST", "/v1/processes/web/scale", `{"numprocesses": 2}`, 409, unsupported},
		{"POST", "/v1/processes/web/stdin", "x", 409, unsupported},
		{"POST", "/v1/processes/web/streams/audit", "x", 409, unsupported},
		{"GET", "/v1/processes/web/logs", "", 409, unsupported},
		{"GET", "/v1/processes/web/logs?follow=1", "", 409, unsupported},
		{"POST", "/v1/reload", "", 409, unsupported},
		{"POST", "/v1/reload?dry_run=1", "", 409, unsupported},
		// The request is checked first, as before the capability.
		{"POST", "/v1/processes/web/restart?wait=x", "", 400, `wait must be`},
		{"POST", "/v1/processes/web/scale", `{}`, 400, `needs \"numprocesses\"`},
		{"GET", "/v1/processes/web/logs?tail=-1", "", 400, `tail must be`},
		{"POST", "/v1/reload?dry_run=x", "", 400, `dry_run must be`},
		// What every Backend does.
		{"POST", "/v1/processes/web/stop", "", 200, `{"ok":true}`},
		{"POST", "/v1/processes/web/signal", `{"signal":"HUP"}`, 200, `{"ok":true}`},
		{"GET", "/v1/processes/web", "", 200, `"name":"web"`},
		{"GET", "/v1/health?level=ready", "", 200, `"ok":true`},
	} {
		var body []byte
		if tt.body != "" || tt.method == "POST" {
			body = []byte(tt.body)
		}
		code, resp, err := c.Do(context.Background(), tt.method, tt.path, body)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		if code != tt.code || !strings.Contains(string(resp), tt.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %s", tt.method, tt.path, tt.body, code, resp, tt.code, tt.want)
		}
	}
	if calls := b.called(); slices.ContainsFunc(calls, func(c string) bool {
		return strings.HasPrefix(c, "start ") || strings.HasPrefix(c, "restart ") || strings.HasPrefix(c, "scale ") || strings.HasPrefix(c, "logs ") || strings.HasPrefix(c, "reload ")
	}) {
		t.Errorf("the backend was called for a capability it lacks: %q", calls)
	}
}
