package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"gaffer/core"
	"gaffer/http1"
	"gaffer/stats"
)

// fakeBackend answers by process name: "web" and "web.2" exist, "busy" is in conflict, "leaving"
// unavailable, "bad" a bad request, "broken" fails, "panic" panics, anything else is not found.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string // guarded by mu
	stdin    [][]byte // guarded by mu
	streams  []string // guarded by mu: "name/label:data"
	shutdown chan struct{}
	healthy  bool // guarded by mu once a server runs
	// streamCtx receives the ctx of every Events and Logs(follow) call.
	streamCtx chan context.Context
	events    chan core.Event   // what Events sends, when not nil
	logs      chan core.LogLine // what Logs(follow) sends, when not nil
	procs     []core.Process
	// reloadErrors, when set, are what Reload refuses the configuration for.
	reloadErrors []string // guarded by mu
}

func newFakeBackend(n int) *fakeBackend {
	b := &fakeBackend{shutdown: make(chan struct{}, 1), healthy: true, streamCtx: make(chan context.Context, 16)}
	code := 0
	b.procs = []core.Process{
		{Name: "web", Group: "web", Instance: 1, Pid: 101, State: "running", Ready: true, StartedAt: time.Unix(1700000000, 0), Streams: []string{"out", "err"}},
		{Name: "web.2", Group: "web", Instance: 2, State: "exited", ExitCode: &code},
	}
	for i := 3; i <= n; i++ {
		b.procs = append(b.procs, core.Process{Name: fmt.Sprintf("p%d", i), Group: "p", Instance: i, Pid: 100 + i, State: "running"})
	}
	return b
}

func (b *fakeBackend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *fakeBackend) called() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

// writes returns what WriteStdin and WriteStream received.
func (b *fakeBackend) writes() (stdin [][]byte, streams []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.stdin...), append([]string(nil), b.streams...)
}

func (b *fakeBackend) check(name string) error {
	switch name {
	case "busy":
		return fmt.Errorf("%q is already running: %w", name, core.ErrConflict)
	case "leaving":
		return fmt.Errorf("gaffer is exiting: %w", core.ErrUnavailable)
	case "bad":
		return fmt.Errorf("cannot do that: %w", core.ErrBadRequest)
	case "broken":
		return fmt.Errorf("something broke")
	case "panic":
		panic("fake backend panics")
	}
	for _, p := range b.procs {
		if p.Name == name {
			return nil
		}
	}
	return fmt.Errorf("no process %q: %w", name, core.ErrNotFound)
}

func (b *fakeBackend) Info() core.Info {
	return core.Info{Pid: 1, Mode: "up", Processes: map[string]int{"running": 1, "total": len(b.procs)}}
}

func (b *fakeBackend) Processes() []core.Process { return b.procs }

func (b *fakeBackend) Process(name string) (core.Process, map[string]any, error) {
	if err := b.check(name); err != nil {
		return core.Process{}, nil, err
	}
	for _, p := range b.procs {
		if p.Name == name {
			return p, map[string]any{"cmd": "serve " + name}, nil
		}
	}
	return core.Process{}, nil, core.ErrNotFound
}

func (b *fakeBackend) Signal(name string, sig syscall.Signal, group bool) error {
	if err := b.check(name); err != nil {
		return err
	}
	b.record("signal %s %d %v", name, sig, group)
	return nil
}

func (b *fakeBackend) action(verb string, ctx context.Context, name string, wait bool) error {
	if err := b.check(name); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		return fmt.Errorf("no deadline on the ctx of %s", verb)
	}
	b.record("%s %s %v", verb, name, wait)
	return nil
}

func (b *fakeBackend) Start(ctx context.Context, name string, wait bool) error {
	return b.action("start", ctx, name, wait)
}

func (b *fakeBackend) Stop(ctx context.Context, name string, wait bool) error {
	return b.action("stop", ctx, name, wait)
}

func (b *fakeBackend) Restart(ctx context.Context, name string, wait bool) error {
	return b.action("restart", ctx, name, wait)
}

func (b *fakeBackend) WriteStdin(name string, data []byte) error {
	if err := b.check(name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stdin = append(b.stdin, append([]byte(nil), data...))
	return nil
}

func (b *fakeBackend) WriteStream(name, label string, data []byte) error {
	if err := b.check(name); err != nil {
		return err
	}
	if label != "audit" {
		return fmt.Errorf("no stream %q: %w", label, core.ErrNotFound)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.streams = append(b.streams, name+"/"+label+":"+string(data))
	return nil
}

func (b *fakeBackend) Scale(ctx context.Context, name string, n int) error {
	if err := b.check(name); err != nil {
		return err
	}
	b.record("scale %s %d", name, n)
	return nil
}

func (b *fakeBackend) Logs(ctx context.Context, name, stream string, tail int, follow bool) ([]core.LogLine, <-chan core.LogLine, error) {
	if err := b.check(name); err != nil {
		return nil, nil, err
	}
	if stream != "" && stream != "out" && stream != "err" {
		return nil, nil, fmt.Errorf("no stream %q: %w", stream, core.ErrNotFound)
	}
	b.record("logs %s %q %d %v", name, stream, tail, follow)
	var lines []core.LogLine
	for i := range min(tail, 3) {
		lines = append(lines, core.LogLine{Name: name, Stream: "out", Line: fmt.Sprintf("line %d", i)})
	}
	if !follow {
		return lines, nil, nil
	}
	b.sawStream(ctx)
	ch := make(chan core.LogLine)
	go func() {
		defer close(ch)
		for {
			var l core.LogLine
			var open bool
			select {
			case <-ctx.Done():
				return
			case l, open = <-b.logs: // nil: blocks until ctx ends
				if !open {
					return
				}
			}
			select {
			case ch <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines, ch, nil
}

// sawStream hands the ctx of a stream to the test, if it listens.
func (b *fakeBackend) sawStream(ctx context.Context) {
	select {
	case b.streamCtx <- ctx:
	default:
	}
}

func (b *fakeBackend) Events(ctx context.Context) <-chan core.Event {
	b.sawStream(ctx)
	ch := make(chan core.Event)
	go func() {
		defer close(ch)
		for {
			var e core.Event
			var open bool
			select {
			case <-ctx.Done():
				return
			case e, open = <-b.events:
				if !open {
					return
				}
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (b *fakeBackend) Shutdown(bool) {
	select {
	case b.shutdown <- struct{}{}:
	default:
	}
}

func (b *fakeBackend) Health(level string, names []string) (core.HealthReport, error) {
	if level != core.LevelAlive && level != core.LevelReady {
		return core.HealthReport{}, fmt.Errorf("level %q: %w", level, core.ErrBadRequest)
	}
	for _, n := range names {
		if err := b.check(n); err != nil {
			return core.HealthReport{}, err
		}
	}
	b.record("health %s %q", level, names)
	b.mu.Lock()
	healthy := b.healthy
	b.mu.Unlock()
	if healthy {
		return core.HealthReport{OK: true, Level: level, Failing: []core.HealthFailure{}, Checked: 2}, nil
	}
	r := core.HealthReport{Level: level, Failing: []core.HealthFailure{{Name: "web.2", Reason: "is exited"}}, Checked: 2}
	if level == core.LevelReady {
		r.Draining = true
		r.Failing = append(r.Failing, core.HealthFailure{Reason: "draining"})
	}
	return r, nil
}

// Reload plans a restart of web and keeps web.2; with b.reloadErrors it refuses.
func (b *fakeBackend) Reload(ctx context.Context, dryRun bool) (core.ReloadResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		return core.ReloadResult{}, fmt.Errorf("no deadline on the ctx of Reload")
	}
	b.record("reload %v", dryRun)
	b.mu.Lock()
	errs := b.reloadErrors
	b.mu.Unlock()
	if errs != nil {
		return core.ReloadResult{DryRun: dryRun, Errors: errs}, nil
	}
	return core.ReloadResult{
		Applied: !dryRun, DryRun: dryRun,
		Plan:         []core.ReloadStep{{Name: "web", Action: "restart", Why: "cmd changed"}, {Name: "web.2", Action: "keep"}},
		NeedsRestart: []string{"socket"},
	}, nil
}

func (b *fakeBackend) Pids() map[string]int {
	pids := map[string]int{}
	for _, p := range b.procs {
		if p.Pid != 0 && p.State == "running" {
			pids[p.Name] = p.Pid
		}
	}
	return pids
}

// fakeStats measures nothing: one entry per pid, numbers derived from it.
func fakeStats(_ context.Context, pids map[string]int) (stats.Snapshot, error) {
	snap := stats.Snapshot{Time: time.Unix(1700000000, 0)}
	for name, pid := range pids {
		e := stats.Entry{Name: name, Pid: pid, Procs: 1}
		e.MemoryRSS = uint64(pid) << 10
		e.Tree = e.Proc
		snap.Processes = append(snap.Processes, e)
		snap.Total.MemoryRSS += e.MemoryRSS
	}
	return snap, nil
}

// socketPath returns a short socket path in a fresh directory (sun_path holds 108 bytes, too few
// for t.TempDir under long test names).
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "gapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// startServer listens on a fresh socket and serves until the test ends.
func startServer(t testing.TB, b core.Backend, edit func(*Options)) *Server {
	t.Helper()
	opts := Options{Path: socketPath(t), Group: -1, Backend: b, Stats: fakeStats, Version: "test", Logf: t.Logf}
	if edit != nil {
		edit(&opts)
	}
	s, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s
}

// roundTrip sends raw bytes on a new connection and returns everything the server sends until
// it closes the connection.
func roundTrip(t testing.TB, path, raw string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite() // the server sees the end of what we send
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v (so far %q)", raw, err, out)
	}
	return string(out)
}

// rawResponse is a response read by readRawResponse.
type rawResponse struct {
	code   int
	header map[string]string // lower-case names
	body   string
}

// readRawResponse reads one response (Content-Length, chunked or to the close) from br.
func readRawResponse(t testing.TB, br *bufio.Reader) rawResponse {
	t.Helper()
	resp, err := http1.ReadResponse(br, DefaultMaxHeader)
	if err != nil {
		t.Fatalf("response head: %v", err)
	}
	body, err := io.ReadAll(resp.Body(br))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return rawResponse{resp.Code, resp.Header, string(body)}
}

// status returns the code of a raw response's status line, or -1.
func status(raw string) int {
	var code int
	if _, err := fmt.Sscanf(raw, "HTTP/1.1 %d ", &code); err != nil {
		return -1
	}
	return code
}
