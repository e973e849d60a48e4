package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gaffer/api"
	"gaffer/core"
)

// TestClientUsageErrors: numbers the server would refuse anyway are usage errors of the client:
// exit 2 with one line, before it connects (found in review: these exited 1 with "cannot reach
// gaffer" when no gaffer ran). An unknown signal name stays the server's answer (exit 1), as
// tests/api_test.go has it.
func TestClientUsageErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"logs", "-n", "-1", "web"}, "gaffer: logs: -n -1: want 0 or more lines"},
		{[]string{"stats", "-w", "--interval", "10ms"}, "gaffer: stats: --interval 10ms: want at least 100ms"},
		{[]string{"scale", "web", "5000"}, "gaffer: scale: 5000 instances: at most 1024"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		args := append([]string{"gaffer", c.args[0], "--socket", sock}, c.args[1:]...)
		code := Run(args, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
		if got := strings.TrimSpace(stderr.String()); code != 2 || got != c.want {
			t.Errorf("%q: exit %d, stderr %q; want 2, %q", c.args, code, got, c.want)
		}
	}
}

// ctlBackend is a gaffer for the client commands: health and reload as the test sets them, and
// what it was asked.
type ctlBackend struct {
	mu       sync.Mutex
	health   core.HealthReport // guarded by mu
	reload   core.ReloadResult // guarded by mu
	asked    []string          // guarded by mu
	procs    []core.Process
	shutdown chan bool
}

func (b *ctlBackend) ask(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked = append(b.asked, fmt.Sprintf(format, args...))
}

func (b *ctlBackend) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.asked)
}

func (b *ctlBackend) Info() core.Info { return core.Info{Mode: "up"} }
func (b *ctlBackend) Processes() []core.Process {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.procs
}
func (b *ctlBackend) Pids() map[string]int { return nil }
func (b *ctlBackend) Events(ctx context.Context) <-chan core.Event {
	ch := make(chan core.Event)
	close(ch)
	return ch
}
func (b *ctlBackend) Process(name string) (core.Process, map[string]any, error) {
	return core.Process{}, nil, fmt.Errorf("no process %q: %w", name, core.ErrNotFound)
}
func (b *ctlBackend) Signal(string, syscall.Signal, bool) error { return nil }
func (b *ctlBackend) Stop(context.Context, string, bool) error  { return nil }
func (b *ctlBackend) Shutdown(drain bool)                       { b.shutdown <- drain }
func (b *ctlBackend) Reload(_ context.Context, dry bool) (core.ReloadResult, error) {
	b.ask("reload %v", dry)
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reload
	r.DryRun, r.Applied = dry, !dry && len(r.Errors) == 0
	return r, nil
}

func (b *ctlBackend) Health(level string, names []string) (core.HealthReport, error) {
	b.ask("health %s %q", level, names)
	if slices.Contains(names, "nope") {
		return core.HealthReport{}, fmt.Errorf("no process %q: %w", "nope", core.ErrNotFound)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.health
	r.Level = level
	return r, nil
}

// serveCtl serves b on a fresh socket until the test ends and returns the socket's path.
func serveCtl(t *testing.T, b core.Backend) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := api.Listen(api.Options{Path: filepath.Join(dir, "g.sock"), Group: -1, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(context.Background())
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv.Path()
}

// runCtl runs gaffer with args and returns its exit code, stdout and stderr.
func runCtl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	saved := os.Stdout
	os.Stdout = out
	var stderr bytes.Buffer
	code := Run(append([]string{"gaffer"}, args...), testVersion, Signals{}, &stderr)
	os.Stdout = saved
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b), stderr.String()
}

// TestHealthCommand: exit 0, 1 or 2 with exactly one line on stdout and nothing on stderr, for
// every answer and every mistake.
func TestHealthCommand(t *testing.T) {
	clearGafferEnv(t)
	b := &ctlBackend{}
	sock := serveCtl(t, b)
	missing := filepath.Join(t.TempDir(), "missing.sock")
	unhealthy := core.HealthReport{Draining: true, Checked: 3, Failing: []core.HealthFailure{
		{Name: "web", Reason: "unhealthy: connect: connection refused"},
		{Reason: "draining"},
	}}
	for _, tt := range []struct {
		report core.HealthReport
		args   []string
		code   int
		out    string // the line, without its newline; a leading ~ means "starts with"
		call   string
	}{
		{core.HealthReport{OK: true, Checked: 3}, nil, 0, "healthy (alive: 3 processes)", `health alive []`},
		{core.HealthReport{OK: true, Checked: 1}, []string{"--level", "ready"}, 0, "healthy (ready: 1 process)", `health ready []`},
		{core.HealthReport{OK: true}, []string{"-l", "ready", "web", "db"}, 0, "healthy (ready: web, db)", `health ready ["web" "db"]`},
		{core.HealthReport{OK: true}, nil, 0, "healthy (alive)", ""},
		{unhealthy, []string{"--level", "ready"}, 1, "unhealthy (ready): web unhealthy: connect: connection refused; draining", ""},
		{core.HealthReport{Stopping: true, Failing: []core.HealthFailure{{Name: "db", Reason: "is fatal\n(gave up)"}}}, nil, 1, "unhealthy (alive): db is fatal (gave up); stopping", ""},
		{core.HealthReport{}, nil, 1, "unhealthy (alive): not ok", ""},
		{unhealthy, []string{"--json"}, 1, `{"ok":false,"level":"alive","draining":true,"stopping":false,"failing":[{"name":"web","reason":"unhealthy: connect: connection refused"},{"reason":"draining"}],"checked":3}`, ""},
		{core.HealthReport{OK: true}, []string{"nope"}, 2, `error: no process "nope": not found`, ""},
		{core.HealthReport{OK: true}, []string{"--level", "dead"}, 2, `error: --level "dead": want alive or ready`, ""},
		{core.HealthReport{OK: true}, []string{"--timeout", "0s"}, 2, `error: --timeout 0s: want a positive duration`, ""},
		{core.HealthReport{OK: true}, []string{""}, 2, `error: an empty process name`, ""},
		{core.HealthReport{OK: true}, []string{"--bogus"}, 2, `error: flag provided but not defined: -bogus`, ""},
	} {
		b.mu.Lock()
		b.health = tt.report
		b.mu.Unlock()
		code, out, errs := runCtl(t, append([]string{"health", "--socket", sock}, tt.args...)...)
		if code != tt.code || out != tt.out+"\n" || errs != "" {
			t.Errorf("gaffer health %q: exit %d, stdout %q, stderr %q; want %d, %q and nothing", tt.args, code, out, errs, tt.code, tt.out+"\n")
		}
		if tt.call != "" && !slices.Contains(b.calls(), tt.call) {
			t.Errorf("gaffer health %q: gaffer was asked %q, not %q", tt.args, b.calls(), tt.call)
		}
	}
	// Nobody to ask: exit 2.
	code, out, errs := runCtl(t, "health", "--socket", missing)
	if want := "error: cannot reach gaffer at " + missing + ": no such file or directory\n"; code != 2 || out != want || errs != "" {
		t.Errorf("no socket: exit %d, stdout %q, stderr %q; want 2, %q", code, out, errs, want)
	}
	refused := filepath.Join(t.TempDir(), "refused.sock")
	staleSocket(t, refused)
	if code, out, _ := runCtl(t, "health", "--socket", refused); code != 2 || !strings.HasSuffix(out, "connection refused\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("refused: exit %d, stdout %q", code, out)
	}
	// GAFFER_SOCKET= (empty) is a usage error.
	t.Setenv("GAFFER_SOCKET", "")
	if code, out, _ := runCtl(t, "health"); code != 2 || out != "error: health: --socket (or GAFFER_SOCKET) is empty\n" {
		t.Errorf("empty GAFFER_SOCKET: exit %d, stdout %q", code, out)
	}
}

// staleSocket leaves a socket file at path that nobody listens on.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

// TestReloadCommand: the plan one line per process, then applied or dry run; errors each on stderr
// and exit 2; gaffer -- (no Reloader) is gaffer's 409 in one line, exit 1.
func TestReloadCommand(t *testing.T) {
	clearGafferEnv(t)
	b := &ctlBackend{reload: core.ReloadResult{
		Plan:         []core.ReloadStep{{Name: "web", Action: "restart", Why: "cmd changed"}, {Name: "db", Action: "keep"}, {Name: "cron", Action: "add"}},
		NeedsRestart: []string{"socket", "log_bytes"},
	}}
	sock := serveCtl(t, b)
	plan := "web: restart (cmd changed)\ndb: keep\ncron: add\nneeds restart: socket, log_bytes (changes only when gaffer starts again)\n"
	if code, out, errs := runCtl(t, "reload", "--socket", sock); code != 0 || out != plan+"applied\n" || errs != "" {
		t.Errorf("reload: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, errs := runCtl(t, "reload", "--socket", sock, "--dry-run"); code != 0 || out != plan+"dry run: nothing changed\n" || errs != "" {
		t.Errorf("reload --dry-run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if got := b.calls(); !slices.Equal(got, []string{"reload false", "reload true"}) {
		t.Errorf("gaffer was asked %q", got)
	}
	if code, out, _ := runCtl(t, "reload", "--socket", sock, "-n", "--json"); code != 0 || !strings.HasPrefix(out, `{"applied":false,"dry_run":true,"plan":[{"name":"web"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("reload -n --json: exit %d, stdout %q", code, out)
	}
	b.mu.Lock()
	b.reload = core.ReloadResult{Errors: []string{`gaffer.toml:3: unknown key "cmdd"`, `gaffer.toml:9: after: no process "dbb"`}}
	b.mu.Unlock()
	code, out, errs := runCtl(t, "reload", "--socket", sock)
	wantErr := "gaffer.toml:3: unknown key \"cmdd\"\ngaffer.toml:9: after: no process \"dbb\"\ngaffer: reload: the configuration has 2 errors, nothing changed\n"
	if code != 2 || out != "" || errs != wantErr {
		t.Errorf("reload with errors: exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, out, errs, wantErr)
	}
	if code, _, errs := runCtl(t, "reload", "--socket", sock, "extra"); code != 2 || !strings.Contains(errs, "wrong number of arguments") {
		t.Errorf("reload extra: exit %d, stderr %q", code, errs)
	}

	// gaffer --: no Reloader.
	run := serveCtl(t, struct{ core.Backend }{b})
	code, out, errs = runCtl(t, "reload", "--socket", run)
	if code != 1 || out != "" || errs != "gaffer: not available in gaffer -- mode (use gaffer up): conflict\n" {
		t.Errorf("reload in gaffer --: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestShutdownNoDrain: gaffer shutdown asks for the drain, --no-drain not.
func TestShutdownNoDrain(t *testing.T) {
	clearGafferEnv(t)
	b := &ctlBackend{shutdown: make(chan bool, 2)}
	sock := serveCtl(t, b)
	for _, tt := range []struct {
		args  []string
		drain bool
	}{{nil, true}, {[]string{"--no-drain"}, false}} {
		if code, _, errs := runCtl(t, append([]string{"shutdown", "--socket", sock}, tt.args...)...); code != 0 {
			t.Fatalf("shutdown %q: exit %d %s", tt.args, code, errs)
		}
		select {
		case drain := <-b.shutdown:
			if drain != tt.drain {
				t.Errorf("shutdown %q: drain %v, want %v", tt.args, drain, tt.drain)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("shutdown %q: Backend.Shutdown not called", tt.args)
		}
	}
}

// TestStatusHealthAndNext: HEALTH and NEXT columns only when some process has a health check or a
// schedule.
func TestStatusHealthAndNext(t *testing.T) {
	clearGafferEnv(t)
	next := time.Now().Add(90*time.Second + 400*time.Millisecond)
	b := &ctlBackend{procs: []core.Process{
		{Name: "web", State: "running", Health: core.HealthHealthy},
		{Name: "api", State: "running", Health: core.HealthUnhealthy, HealthFailures: 3},
		{Name: "db", State: "running"},
		{Name: "cron", State: "exited", Schedule: "*/5 * * * *", NextRun: &next},
	}}
	sock := serveCtl(t, b)
	code, out, errs := runCtl(t, "status", "--socket", sock)
	if code != 0 {
		t.Fatalf("status: exit %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := [][]string{
		{"NAME", "PID", "STATE", "UPTIME", "RESTARTS", "CPU", "RSS", "HEALTH", "NEXT"},
		{"web", "-", "running", "-", "0", "-", "-", "healthy", "-"},
		{"api", "-", "running", "-", "0", "-", "-", "unhealthy", "(3)", "-"},
		{"db", "-", "running", "-", "0", "-", "-", "-", "-"},
		{"cron", "-", "exited", "-", "0", "-", "-", "-", "in", "1m30s"},
	}
	if len(lines) != len(want) {
		t.Fatalf("status:\n%s", out)
	}
	for i, l := range lines {
		if got := strings.Fields(l); !slices.Equal(got, want[i]) {
			t.Errorf("line %d: %q, want %q\n%s", i, got, want[i], out)
		}
	}
	b.mu.Lock()
	b.procs = b.procs[2:3]
	b.mu.Unlock()
	if _, out, _ := runCtl(t, "status", "--socket", sock); strings.Contains(out, "HEALTH") || strings.Contains(out, "NEXT") {
		t.Errorf("columns without health checks or schedules:\n%s", out)
	}
}

func TestNextRunCell(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, tt := range []struct {
		p    core.Process
		want string
	}{
		{core.Process{}, "-"},
		{core.Process{Schedule: "@hourly"}, "-"},
		{core.Process{Schedule: "@hourly", NextRun: at(-time.Second)}, "now"},
		{core.Process{Schedule: "@hourly", NextRun: at(59*time.Minute + 59*time.Second + 600*time.Millisecond)}, "in 1h0m0s"},
		{core.Process{Schedule: "@daily", NextRun: at(5 * time.Second)}, "in 5s"},
	} {
		if got := nextRunCell(tt.p, now); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestDefaultSockets(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want []socketCandidate
	}{
		{nil, []socketCandidate{
			{path: "/run/gaffer.sock"},
			{path: "/tmp/gaffer-65534/gaffer.sock", private: "/tmp/gaffer-65534"},
		}},
		{map[string]string{"XDG_RUNTIME_DIR": "/run/user/65534/", "TMPDIR": "/var/tmp"}, []socketCandidate{
			{path: "/run/gaffer.sock"},
			{path: "/run/user/65534/gaffer.sock", dir: "/run/user/65534"},
			{path: "/var/tmp/gaffer-65534/gaffer.sock", private: "/var/tmp/gaffer-65534"},
			{path: "/tmp/gaffer-65534/gaffer.sock", private: "/tmp/gaffer-65534"},
		}},
		// Relative paths are ignored, as the XDG base directory spec says; /tmp only once.
		{map[string]string{"XDG_RUNTIME_DIR": "run", "TMPDIR": "/tmp/"}, []socketCandidate{
			{path: "/run/gaffer.sock"},
			{path: "/tmp/gaffer-65534/gaffer.sock", private: "/tmp/gaffer-65534"},
		}},
	} {
		got := defaultSockets(func(k string) string { return tt.env[k] }, 65534)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v: %+v, want %+v", tt.env, got, tt.want)
		}
	}
}

// liveSocket listens on path until the test ends.
func liveSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// TestFindSocket: a client takes the first candidate that accepts a connection, past a stale
// socket; with none, the error of the first that exists, else the list of what it tried; a
// private directory that fails the server's rules is never used.
func TestFindSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "gfind")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := func(name string) string { return filepath.Join(dir, name) }
	staleSocket(t, p("stale.sock"))
	liveSocket(t, p("live.sock"))
	priv := p(fmt.Sprintf("gaffer-%d", os.Geteuid()))
	if err := os.Mkdir(priv, 0o700); err != nil {
		t.Fatal(err)
	}
	liveSocket(t, filepath.Join(priv, "gaffer.sock"))
	if err := os.Symlink(priv, p("link")); err != nil {
		t.Fatal(err)
	}
	c := func(name string) socketCandidate { return socketCandidate{path: p(name)} }
	inPriv := func(d string) socketCandidate {
		return socketCandidate{path: filepath.Join(d, "gaffer.sock"), private: d}
	}
	for _, tt := range []struct {
		name  string
		cands []socketCandidate
		want  string // the path found, or the error
	}{
		{"live first", []socketCandidate{c("live.sock"), c("stale.sock")}, p("live.sock")},
		{"past a stale socket", []socketCandidate{c("stale.sock"), c("none.sock"), c("live.sock")}, p("live.sock")},
		{"in a private directory", []socketCandidate{c("none.sock"), inPriv(priv)}, filepath.Join(priv, "gaffer.sock")},
		{"only stale", []socketCandidate{c("none.sock"), c("stale.sock"), c("none2.sock")}, "cannot reach gaffer at " + p("stale.sock") + ": connection refused"},
		{"nothing", []socketCandidate{c("none.sock"), inPriv(p("gaffer-none"))}, "no gaffer socket found (tried: " + p("none.sock") + ", " + p("gaffer-none/gaffer.sock") + ")"},
		{"a symlinked private directory", []socketCandidate{inPriv(p("link")), c("none.sock")}, "refusing " + p("link") + ": a symbolic link (not followed)"},
		{"a refused directory before a live one", []socketCandidate{inPriv(p("link")), c("live.sock")}, p("live.sock")},
		{"a path too long for a socket", []socketCandidate{{path: "/" + strings.Repeat("x", 120)}, c("none.sock")}, "no gaffer socket found (tried: " + p("none.sock") + ")"},
	} {
		got, err := findSocket(context.Background(), tt.cands)
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFindSocketRefusesAStrangersSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a socket to another uid")
	}
	dir := t.TempDir()
	liveSocket(t, filepath.Join(dir, "theirs.sock"))
	liveSocket(t, filepath.Join(dir, "ours.sock"))
	if err := os.Lchown(filepath.Join(dir, "theirs.sock"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cands := []socketCandidate{{path: filepath.Join(dir, "theirs.sock")}, {path: filepath.Join(dir, "ours.sock")}}
	if got, err := findSocket(context.Background(), cands); err != nil || got != cands[1].path {
		t.Fatalf("found %q, %v", got, err)
	}
	_, err := findSocket(context.Background(), cands[:1])
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534, neither root nor you") {
		t.Fatalf("err %v", err)
	}
}

// TestListenDefaultFallback: when gaffer cannot listen at the default path it listens at the first
// fallback it can use and says where in one line; a private directory that fails the rules is
// passed over; a live default path is no reason to fall back; with nowhere to go it is one warning.
func TestListenDefaultFallback(t *testing.T) {
	dir, err := os.MkdirTemp("", "gfall")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(p("file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := p("file/gaffer.sock") // its directory is a regular file
	badWhy := "cannot use the socket's directory " + p("file") + ": not a directory"
	if err := os.Symlink(dir, p("gaffer-link")); err != nil {
		t.Fatal(err)
	}
	priv := p(fmt.Sprintf("gaffer-%d", os.Geteuid()))
	inPriv := func(d string) socketCandidate {
		return socketCandidate{path: filepath.Join(d, "gaffer.sock"), private: d}
	}
	xdg := socketCandidate{path: p("xdg/gaffer.sock"), dir: p("xdg")}
	listen := func(path string, fallbacks ...socketCandidate) (*api.Server, []string) {
		t.Helper()
		var lines []string
		warnf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
		plan := &socketPlan{opts: api.Options{Path: path, Mode: 0o600, Group: -1}, fallbacks: fallbacks}
		srv := plan.listenDefault(warnf)
		if srv != nil {
			t.Cleanup(func() { srv.Close() })
		}
		return srv, lines
	}

	srv, lines := listen(bad, xdg, inPriv(p("gaffer-link")), inPriv(priv))
	want := "API socket at " + filepath.Join(priv, "gaffer.sock") + " (" + badWhy + "; $XDG_RUNTIME_DIR " + p("xdg") + ": no such file or directory; refusing " + p("gaffer-link") + ": a symbolic link (not followed))"
	if srv == nil || srv.Path() != filepath.Join(priv, "gaffer.sock") || !slices.Equal(lines, []string{want}) {
		t.Fatalf("fallback: %v, %q; want %q", srv, lines, want)
	}
	if st, err := os.Lstat(priv); err != nil || st.Mode() != os.ModeDir|0o700 {
		t.Errorf("%s: %v %v, want a 0700 directory", priv, st.Mode(), err)
	}
	srv.Close()

	// $XDG_RUNTIME_DIR when it exists.
	if err := os.Mkdir(p("xdg"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv, lines = listen(bad, xdg, inPriv(priv))
	if srv == nil || srv.Path() != xdg.path || len(lines) != 1 {
		t.Fatalf("fallback to $XDG_RUNTIME_DIR: %v %q", srv, lines)
	}
	// The default path works: no line.
	srv2, lines := listen(p("ok.sock"), inPriv(priv))
	if srv2 == nil || srv2.Path() != p("ok.sock") || len(lines) != 0 {
		t.Errorf("default path: %v %q", srv2, lines)
	}
	// Another gaffer answers at the default path: no fallback.
	srv3, lines := listen(p("ok.sock"), inPriv(priv))
	if want := "no API socket: another gaffer is listening on " + p("ok.sock"); srv3 != nil || !slices.Equal(lines, []string{want}) {
		t.Errorf("live default path: %v %q, want %q", srv3, lines, want)
	}
	// Nowhere: one warning with every reason.
	_, lines = listen(bad, inPriv(p("gaffer-link")), xdg)
	want = "no API socket: " + badWhy + "; refusing " + p("gaffer-link") + ": a symbolic link (not followed); another gaffer is listening on " + xdg.path
	if !slices.Equal(lines, []string{want}) {
		t.Errorf("nowhere: %q, want %q", lines, want)
	}
}
