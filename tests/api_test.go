package tests

// Black-box tests of the API socket (issue 4): every route with curl and with gaffer's own client
// commands, the socket's permissions and life cycle, and the streams. Each gaffer listens on a
// socket in its test's directory, never on /run/gaffer.sock of this machine.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// apiGaffer is a `gaffer up` (or `gaffer --`) serving the API on sock.
type apiGaffer struct {
	*gafferRun
	dir, sock string
}

// apiUp starts `gaffer up` (not PID 1) with procs as its processes and settings (more [settings]
// keys), listening on {dir}/g.sock, and waits until the socket answers.
func apiUp(t *testing.T, settings, procs string) *apiGaffer {
	t.Helper()
	toml := "[settings]\nsocket = \"{dir}/g.sock\"\n" + settings + "\n" + procs
	g, dir := startUp(t, false, map[string]string{"gaffer.toml": toml})
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// apiRun starts `gaffer --socket {dir}/g.sock -- argv` (not PID 1) and waits until it answers.
func apiRun(t *testing.T, flags []string, argv ...string) *apiGaffer {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	args := append(append([]string{"--socket", sock}, flags...), "--")
	g := startGaffer(t, startOpts{dir: dir}, append(args, argv...)...)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: sock}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// stopAtEnd stops gaffer at the end of the test with SIGTERM, so that it stops its processes (the
// harness's SIGKILL would leave them running, and a child of `gaffer --` holds gaffer's stdout),
// and kills the whole tree if that takes more than 10 s. Registered after startGaffer, it runs
// before the harness's cleanup.
func stopAtEnd(t *testing.T, g *gafferRun) {
	t.Cleanup(func() {
		select {
		case <-g.done:
			return
		default:
		}
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			killTree(g.cmd.Process.Pid)
			<-g.done
		}
	})
}

// killTree sends SIGKILL to pid and all its descendants.
func killTree(pid int) {
	for _, c := range childrenOf(pid) {
		killTree(c)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// waitAPI waits until GET /v1/info answers 200.
func (a *apiGaffer) waitAPI() {
	a.t.Helper()
	sock := a.sock
	a.t.Cleanup(func() {
		if c, ok := httpClients.LoadAndDelete(sock); ok {
			c.(*http.Client).CloseIdleConnections()
		}
	})
	testutil.WaitFor(a.t, 10*time.Second, "the API socket "+a.sock, func() bool {
		select {
		case <-a.done:
			a.t.Fatalf("gaffer exited (%d) before its socket answered; stderr: %s", a.code, a.stderr.String())
		default:
		}
		code, _, err := httpDo(a.sock, "GET", "/v1/info", nil)
		return err == nil && code == 200
	})
}

// httpClients keeps one net/http client per socket (the tests' own HTTP, besides curl).
var httpClients sync.Map

func httpClient(sock string) *http.Client {
	if c, ok := httpClients.Load(sock); ok {
		return c.(*http.Client)
	}
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 16,
	}}
	c2, _ := httpClients.LoadOrStore(sock, c)
	return c2.(*http.Client)
}

// httpDo sends one request over sock with net/http.
func httpDo(sock, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://gaffer"+path, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient(sock).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// get decodes the JSON answer of GET path into v, failing unless it is 200.
func (a *apiGaffer) get(path string, v any) {
	a.t.Helper()
	code, b, err := httpDo(a.sock, "GET", path, nil)
	if err != nil || code != 200 {
		a.t.Fatalf("GET %s: %d %s %v", path, code, b, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		a.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// apiProc is what the tests read of an entry of GET /v1/processes.
type apiProc struct {
	Name      string         `json:"name"`
	Group     string         `json:"group"`
	Instance  int            `json:"instance"`
	Pid       int            `json:"pid"`
	State     string         `json:"state"`
	ExitCode  *int           `json:"exit_code"`
	Ready     bool           `json:"ready"`
	Streams   []string       `json:"streams"`
	Config    map[string]any `json:"config"`
	StartedAt time.Time      `json:"started_at"`
}

func (a *apiGaffer) processes() []apiProc {
	a.t.Helper()
	var ps []apiProc
	a.get("/v1/processes", &ps)
	return ps
}

func (a *apiGaffer) process(name string) apiProc {
	a.t.Helper()
	var p apiProc
	a.get("/v1/processes/"+name, &p)
	return p
}

// names lists the process names of ps, in order.
func names(ps []apiProc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// fds counts gaffer's open file descriptors.
func (a *apiGaffer) fds() int {
	a.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.cmd.Process.Pid))
	if err != nil {
		a.t.Fatal(err)
	}
	return len(ents)
}

// expectOutput waits for gaffer's stdout line of process name (prefix format) with text.
func (a *apiGaffer) expectOutput(name, text string) {
	a.t.Helper()
	var seen []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("stdout closed waiting for %s | %s; saw %q; stderr %s", name, text, seen, a.stderr.String())
			}
			if n, x, ok := split(l); ok && n == name && x == text {
				return
			}
			seen = append(seen, l)
		case <-deadline:
			a.t.Fatalf("no line %s | %s; saw %q; stderr %s", name, text, seen, a.stderr.String())
		}
	}
}

// expectOutputs waits for every "name | text" of want, in any order.
func (a *apiGaffer) expectOutputs(want ...string) {
	a.t.Helper()
	var seen []string
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("stdout closed waiting for %q; saw %q; stderr %s", want, seen, a.stderr.String())
			}
			if n, x, ok := split(l); ok {
				want = slices.DeleteFunc(want, func(w string) bool { return w == n+" | "+x })
			}
			seen = append(seen, l)
		case <-deadline:
			a.t.Fatalf("no lines %q; saw %q; stderr %s", want, seen, a.stderr.String())
		}
	}
}

// runProc runs argv to completion (20 s at most) with stdin and returns its exit code, stdout and stderr.
func runProc(t *testing.T, stdin []byte, argv ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q still running after 20s; stdout %q stderr %q", argv, out.String(), errb.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%q: %v", argv, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// curl sends a request with curl over sock (body nil: none) and returns the status and body
// (without its last newline).
// extra goes before the URL ("-i" to see the head).
func curl(t *testing.T, sock, method, path string, body []byte, extra ...string) (int, string) {
	t.Helper()
	args := []string{"curl", "-sS", "--unix-socket", sock, "-X", method, "-o", "-", "-w", "\n%{http_code}"}
	if body != nil {
		args = append(args, "--data-binary", "@-", "-H", "Content-Type: application/octet-stream")
	}
	args = append(append(args, extra...), "http://gaffer"+path)
	code, out, errs := runProc(t, body, args...)
	if code != 0 {
		t.Fatalf("curl %s %s: exit %d: %s", method, path, code, errs)
	}
	i := strings.LastIndexByte(out, '\n')
	status, err := strconv.Atoi(out[i+1:])
	if err != nil {
		t.Fatalf("curl %s %s: no status in %q", method, path, out)
	}
	return status, strings.TrimSuffix(out[:i], "\n")
}

// ctl runs a client command against sock: gaffer CMD --socket sock ARGS...
func ctl(t *testing.T, sock string, stdin []byte, cmd string, args ...string) (int, string, string) {
	t.Helper()
	return runProc(t, stdin, append([]string{gafferBin, cmd, "--socket", sock}, args...)...)
}

// mustCtl runs a client command that must succeed and returns its stdout.
func mustCtl(t *testing.T, sock, cmd string, args ...string) string {
	t.Helper()
	code, out, errs := ctl(t, sock, nil, cmd, args...)
	if code != 0 {
		t.Fatalf("gaffer %s %q: exit %d; stdout %q; stderr %q", cmd, args, code, out, errs)
	}
	return out
}

// oneLineError checks that a failing client wrote exactly one line "gaffer: ..." containing want.
func oneLineError(t *testing.T, what string, code int, stderr string, wantCode int, want string) {
	t.Helper()
	if code != wantCode || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "gaffer: ") || !strings.Contains(stderr, want) {
		t.Fatalf("%s: exit %d, stderr %q; want exit %d and one line gaffer: ...%s...", what, code, stderr, wantCode, want)
	}
}

// follower is a long-running client (curl -N, gaffer logs -f ...) whose stdout lines the test reads.
type follower struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	err   error
	errb  *testutil.SyncBuffer
}

// follow starts argv; it is killed at the end of the test if still running.
func follow(t *testing.T, argv ...string) *follower {
	t.Helper()
	f := &follower{t: t, cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 10000), done: make(chan struct{}), errb: &testutil.SyncBuffer{}}
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = f.errb
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		f.err = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(f.kill)
	return f
}

// kill ends the follower (SIGKILL) and waits for it.
func (f *follower) kill() {
	select {
	case <-f.done:
	default:
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

// next returns the next stdout line, failing after d.
func (f *follower) next(d time.Duration) string {
	f.t.Helper()
	select {
	case l, ok := <-f.lines:
		if !ok {
			f.t.Fatalf("%q ended (%v); stderr %q", f.cmd.Args, f.err, f.errb.String())
		}
		return l
	case <-time.After(d):
		f.t.Fatalf("%q printed nothing within %v; stderr %q", f.cmd.Args, d, f.errb.String())
	}
	return ""
}

// expect skips lines until one contains want.
func (f *follower) expect(want string, d time.Duration) string {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		l := f.next(time.Until(deadline))
		if strings.Contains(l, want) {
			return l
		}
	}
}

// waitHead waits until curl -v shows the response head on stderr: gaffer writes it once the
// stream is subscribed, so that events from then on reach it.
func (f *follower) waitHead() {
	f.t.Helper()
	testutil.WaitFor(f.t, 5*time.Second, "the response head of "+strings.Join(f.cmd.Args, " "), func() bool {
		return strings.Contains(f.errb.String(), "< HTTP/1.1 200 OK")
	})
}

// try is expect that reports false instead of failing after d.
func (f *follower) try(want string, d time.Duration) (string, bool) {
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				return "", false
			}
			if strings.Contains(l, want) {
				return l, true
			}
		case <-deadline:
			return "", false
		}
	}
}

// wait waits for the follower to end by itself and returns its exit code.
func (f *follower) wait(d time.Duration) int {
	f.t.Helper()
	select {
	case <-f.done:
	case <-time.After(d):
		f.t.Fatalf("%q still running after %v", f.cmd.Args, d)
	}
	if ee, ok := f.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if f.err != nil {
		f.t.Fatalf("%q: %v", f.cmd.Args, f.err)
	}
	return 0
}

// needPromtool skips without promtool (Debian's prometheus package), except in CI.
func needPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if inCI() {
			t.Fatal("promtool is missing; CI installs Debian's prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return p
}

// socketFds lists gaffer's socket file descriptors.
func socketFds(t *testing.T, pid int) []string {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			out = append(out, l)
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st := procState(pid)
	return st != 0 && st != 'Z'
}

const echoWeb = `
[process.web]
cmd = ["sh", "-c", "while read l; do echo \"got $l\"; done"]
redirect_input = true
`

const sleepWorker = `
[process.worker]
cmd = "sleep 1000"
`

// TestAPIRoutesWithCurl: every route once with curl, and each error status.
func TestAPIRoutesWithCurl(t *testing.T) {
	a := apiUp(t, "", echoWeb+sleepWorker+`
[process.ev]
cmd = ["sh", "-c", "while read l <&3; do echo \"event $l\"; done"]
custom_streams = ["events"]
`)
	s := a.sock
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	for _, c := range []struct {
		method, path, body string
		bodyBytes          []byte
		code               int
		want               string
	}{
		{"GET", "/v1/info", "", nil, 200, `"mode":"up"`},
		{"GET", "/v1/info", "", nil, 200, `"socket":"` + s + `"`},
		{"GET", "/v1/info", "", nil, 200, fmt.Sprintf(`"pid":%d,`, a.cmd.Process.Pid)},
		{"GET", "/v1/processes", "", nil, 200, `"name":"worker","group":"worker","instance":1,"pid":`},
		{"GET", "/v1/processes/web", "", nil, 200, `"redirect_input":true`},
		{"GET", "/v1/processes/ev", "", nil, 200, `"streams":["out","err","events"]`},
		{"GET", "/v1/processes/nope", "", nil, 404, `{"error":"no process \"nope\": not found"}`},
		{"GET", "/v1/stats", "", nil, 200, `"gaffer":{"cpu_percent":`},
		{"GET", "/v1/processes/worker/stats", "", nil, 200, `"tree":{`},
		{"GET", "/v1/processes/nope/stats", "", nil, 404, `"error"`},
		{"GET", "/v1/stats?watch=maybe", "", nil, 400, `"error":"watch must be 1 or 0`},
		{"GET", "/v1/stats?watch=1&interval=1ms", "", nil, 400, `below the minimum`},
		{"GET", "/v1/processes/web/logs?tail=x", "", nil, 400, `tail must be`},
		{"GET", "/v1/processes/nope/logs", "", nil, 404, `"error"`},
		{"GET", "/v1/nope", "", nil, 404, `"error":"no such route: /v1/nope"`},
		{"GET", "/nope", "", nil, 404, `no such route`},
		{"GET", "/v1/processes/web/bogus", "", nil, 404, `no such route`},
		{"POST", "/v1/info", "", nil, 405, `"error":"method POST not allowed on /v1/info (use GET)"`},
		{"GET", "/v1/shutdown", "", nil, 405, `(use POST)`},
		{"GET", "/v1/processes/web/signal", "", nil, 405, `(use POST)`},
		{"DELETE", "/v1/processes/web", "", nil, 405, `(use GET)`},
		{"POST", "/v1/processes/worker/signal", "{bad", nil, 400, `malformed JSON body`},
		{"POST", "/v1/processes/worker/signal", `{"signal":"NOPE"}`, nil, 400, `unknown signal`},
		{"POST", "/v1/processes/worker/signal", `{"signal":"HUP","extra":1}`, nil, 400, `unknown field`},
		{"POST", "/v1/processes/worker/signal", "", nil, 400, `needs a JSON body`},
		{"POST", "/v1/processes/nope/signal", `{"signal":"HUP"}`, nil, 404, `no process`},
		{"POST", "/v1/processes/worker/signal", `{"signal":"CONT"}`, nil, 200, `{"ok":true}`},
		{"POST", "/v1/processes/worker/signal", `{"signal":18,"group":true}`, nil, 200, `{"ok":true}`},
		{"POST", "/v1/processes/web/start", "", nil, 409, `web is already running`},
		{"POST", "/v1/processes/worker/stdin", "hi\n", nil, 409, `no stdin pipe`},
		{"POST", "/v1/processes/nope/stdin", "hi\n", nil, 404, `no process`},
		{"POST", "/v1/processes/web/stdin", "", big, 413, `request body too large`},
		{"POST", "/v1/processes/ev/streams/nope", "x\n", nil, 404, `no stream \"nope\"`},
		{"POST", "/v1/processes/worker/scale", `{"numprocesses":1}`, nil, 409, `already has 1 instances`},
		{"POST", "/v1/processes/worker/scale", `{"numprocesses":-1}`, nil, 400, `must not be negative`},
		{"POST", "/v1/processes/worker/scale", `{}`, nil, 400, `needs \"numprocesses\"`},
		{"POST", "/v1/processes/nope/scale", `{"numprocesses":2}`, nil, 404, `no process`},
		{"POST", "/v1/processes/web/stdin", "hello\n", nil, 200, `{"ok":true,"bytes":6}`},
		{"POST", "/v1/processes/ev/streams/events", "ping\n", nil, 200, `{"ok":true,"bytes":5}`},
		{"GET", "/healthz", "", nil, 200, `{"ok":true}`},
		{"POST", "/v1/processes/worker/stop?wait=1", "", nil, 200, `{"ok":true}`},
		{"POST", "/v1/processes/worker/stop", "", nil, 409, `worker is not running`},
		{"POST", "/v1/processes/worker/signal", `{"signal":"HUP"}`, nil, 409, `not running`},
		{"POST", "/v1/processes/worker/start?wait=1", "", nil, 200, `{"ok":true}`},
		{"POST", "/v1/processes/worker/restart?wait=1", "", nil, 200, `{"ok":true}`},
		{"POST", "/v1/processes/worker/start?wait=banana", "", nil, 400, `wait must be 1 or 0`},
	} {
		body := c.bodyBytes
		if body == nil && c.body != "" {
			body = []byte(c.body)
		}
		if body == nil && c.method == "POST" && strings.Contains(c.path, "signal") {
			body = []byte{} // an empty body, sent as such
		}
		code, got := curl(t, s, c.method, c.path, body)
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("%s %s: %d %s; want %d with %s", c.method, c.path, code, got, c.code, c.want)
		}
		if code >= 400 {
			var e struct{ Error string }
			if json.Unmarshal([]byte(got), &e) != nil || e.Error == "" {
				t.Errorf("%s %s: error body %q is not {\"error\": ...}", c.method, c.path, got)
			}
		}
	}
	a.expectOutput("web", "got hello")
	a.expectOutput("ev", "event ping")

	// 405 names the allowed method.
	if _, head := curl(t, s, "POST", "/v1/stats", nil, "-i"); !strings.Contains(head, "\r\nAllow: GET\r\n") {
		t.Errorf("405 without Allow: GET:\n%s", head)
	}
	// The 413 and the rest did not disturb anything.
	if p := a.process("worker"); p.State != "running" || p.Pid == 0 {
		t.Errorf("worker after the routes: %+v", p)
	}
}

// TestAPIClientCommands: gaffer status|stats|signal|start|stop|restart|send|health, with and without
// --json.
func TestAPIClientCommands(t *testing.T) {
	a := apiUp(t, "", echoWeb+sleepWorker)
	s := a.sock
	worker := a.process("worker")

	out := mustCtl(t, s, "status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "RSS") ||
		!strings.HasPrefix(lines[2], "worker") || !strings.Contains(lines[2], strconv.Itoa(worker.Pid)) || !strings.Contains(lines[2], "running") {
		t.Errorf("gaffer status:\n%s", out)
	}
	var ps []apiProc
	if err := json.Unmarshal([]byte(mustCtl(t, s, "status", "--json")), &ps); err != nil || !slices.Equal(names(ps), []string{"web", "worker"}) {
		t.Errorf("gaffer status --json: %v %+v", err, ps)
	}
	out = mustCtl(t, s, "stats")
	if !strings.Contains(out, "CPU%") || !strings.Contains(out, "(gaffer)") || !strings.Contains(out, "worker") {
		t.Errorf("gaffer stats:\n%s", out)
	}
	var snap struct {
		Processes []struct {
			Name string `json:"name"`
			Pid  int    `json:"pid"`
		} `json:"processes"`
		Gaffer struct {
			RSS uint64 `json:"memory_rss"`
		} `json:"gaffer"`
	}
	if err := json.Unmarshal([]byte(mustCtl(t, s, "stats", "--json")), &snap); err != nil || len(snap.Processes) != 2 || snap.Gaffer.RSS == 0 {
		t.Errorf("gaffer stats --json: %v %+v", err, snap)
	}
	var entry struct {
		Name string `json:"name"`
		Pid  int    `json:"pid"`
		RSS  uint64 `json:"memory_rss"`
	}
	if err := json.Unmarshal([]byte(mustCtl(t, s, "stats", "--json", "worker")), &entry); err != nil || entry.Pid != worker.Pid || entry.RSS == 0 {
		t.Errorf("gaffer stats --json worker: %v %+v", err, entry)
	}
	// gaffer health prints exactly one line (Docker keeps it in docker inspect's health log).
	if out := mustCtl(t, s, "health"); !strings.HasPrefix(out, "healthy (alive") || strings.Count(out, "\n") != 1 {
		t.Errorf("gaffer health printed %q", out)
	}
	var h struct{ OK bool }
	if err := json.Unmarshal([]byte(mustCtl(t, s, "health", "--json")), &h); err != nil || !h.OK {
		t.Errorf("gaffer health --json: %v %+v", err, h)
	}

	mustCtl(t, s, "signal", "CONT", "worker")
	mustCtl(t, s, "signal", "-g", "18", "worker")
	code, _, errs := ctl(t, s, nil, "signal", "NOPE", "worker")
	oneLineError(t, "signal NOPE", code, errs, 1, "unknown signal")
	code, _, errs = ctl(t, s, nil, "signal", "HUP", "nope")
	oneLineError(t, "signal HUP nope", code, errs, 1, `no process "nope"`)
	code, _, errs = ctl(t, s, nil, "start", "worker")
	oneLineError(t, "start of a running process", code, errs, 1, "already running")

	mustCtl(t, s, "stop", "worker") // waits
	if p := a.process("worker"); p.Pid != 0 || p.State != "exited" {
		t.Errorf("after gaffer stop: %+v", p)
	}
	code, _, errs = ctl(t, s, nil, "stop", "worker")
	oneLineError(t, "stop of a stopped process", code, errs, 1, "not running")
	mustCtl(t, s, "start", "worker")
	p := a.process("worker")
	if p.Pid == 0 || p.Pid == worker.Pid || p.State != "running" {
		t.Errorf("after gaffer start: %+v (was pid %d)", p, worker.Pid)
	}
	if err := json.Unmarshal([]byte(mustCtl(t, s, "restart", "--json", "worker")), &h); err != nil {
		t.Errorf("gaffer restart --json: %v", err)
	}
	if p2 := a.process("worker"); p2.Pid == 0 || p2.Pid == p.Pid {
		t.Errorf("after gaffer restart: %+v (was pid %d)", p2, p.Pid)
	}

	mustCtl(t, s, "send", "web", "hello", "there")
	a.expectOutput("web", "got hello there")
	if code, out, errs := ctl(t, s, []byte("from stdin\n"), "send", "web"); code != 0 {
		t.Fatalf("gaffer send web < stdin: %d %s %s", code, out, errs)
	}
	a.expectOutput("web", "got from stdin")
	code, _, errs = ctl(t, s, nil, "send", "worker", "x")
	oneLineError(t, "send without redirect_input", code, errs, 1, "no stdin pipe")

	// A usage error is exit 2.
	if code, _, _ := ctl(t, s, nil, "scale", "worker"); code != 2 {
		t.Errorf("gaffer scale with one argument: exit %d, want 2", code)
	}
	// GAFFER_SOCKET is the client's default too.
	cmd := exec.Command(gafferBin, "status", "--json")
	cmd.Env = append(os.Environ(), "GAFFER_SOCKET="+s)
	if b, err := cmd.Output(); err != nil || !json.Valid(b) {
		t.Errorf("GAFFER_SOCKET=%s gaffer status --json: %v %s", s, err, b)
	}
}

// TestAPIClientMissingSocket: no socket, or nobody answering, is one line and exit 1 (gaffer
// health: exit 2 and its one line on stdout, tests/health_cli_test.go).
func TestAPIClientMissingSocket(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	for _, args := range [][]string{{"status"}, {"stats"}, {"stats", "-w"}, {"reload"}, {"events"}, {"logs", "-f", "web"}, {"shutdown"}, {"send", "web", "x"}} {
		code, _, errs := ctl(t, missing, nil, args[0], args[1:]...)
		oneLineError(t, "gaffer "+strings.Join(args, " ")+" without a socket", code, errs, 1, "cannot reach gaffer at "+missing+": no such file or directory")
	}
	// A socket file nobody listens on.
	refused := filepath.Join(dir, "refused.sock")
	staleSocket(t, refused)
	code, _, errs := ctl(t, refused, nil, "status")
	oneLineError(t, "gaffer status on a dead socket", code, errs, 1, "connection refused")
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
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("stale socket %s: %v %v", path, fi, err)
	}
}

// TestAPIPeerUID: a peer that is not root, gaffer's uid or in socket_allow_uids gets 403, whatever
// the socket's mode.
func TestAPIPeerUID(t *testing.T) {
	needRoot(t)
	nobody := []string{"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"}
	a := apiRun(t, []string{"--socket-mode", "0666"}, "sleep", "1000")
	// The test directory and its parent must let nobody reach the socket.
	for _, d := range []string{a.dir, filepath.Dir(a.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/v1/info", "/healthz", "/v1/events?follow=1", "/v1/stats?watch=1"} {
		code, out, errs := runProc(t, nil, append(nobody, "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", "--unix-socket", a.sock, "http://gaffer"+path)...)
		if code != 0 || !strings.HasSuffix(out, "\n403") || !strings.Contains(out, `{"error":"permission denied`) {
			t.Errorf("GET %s as uid 65534: curl exit %d, %q %s", path, code, out, errs)
		}
	}
	code, _, errs := runProc(t, nil, append(nobody, gafferBin, "status", "--socket", a.sock)...)
	oneLineError(t, "gaffer status as uid 65534", code, errs, 1, "permission denied")
	if code, _ := curl(t, a.sock, "GET", "/v1/info", nil); code != 200 {
		t.Errorf("root: %d", code)
	}

	// Allowed by socket_allow_uids (config) or --socket-allow-uid.
	b := apiUp(t, `socket_mode = "0666"
socket_allow_uids = [65534]`, sleepWorker)
	c := apiRun(t, []string{"--socket-mode", "0666", "--socket-allow-uid", "65534"}, "sleep", "1000")
	for _, x := range []*apiGaffer{b, c} {
		for _, d := range []string{x.dir, filepath.Dir(x.dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		code, out, errs := runProc(t, nil, append(nobody, "curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", x.sock, "http://gaffer/v1/processes")...)
		if code != 0 || !strings.HasSuffix(out, "\n200") {
			t.Errorf("allowed uid 65534: curl exit %d, %q %s", code, out, errs)
		}
		if code, out, errs := runProc(t, nil, append(nobody, gafferBin, "status", "--socket", x.sock)...); code != 0 {
			t.Errorf("allowed uid 65534: gaffer status: %d %s %s", code, out, errs)
		}
		// Another uid still is not.
		code, out, _ = runProc(t, nil, "setpriv", "--reuid", "65533", "--regid", "65534", "--clear-groups", "curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", x.sock, "http://gaffer/v1/info")
		if code != 0 || !strings.HasSuffix(out, "\n403") {
			t.Errorf("uid 65533: curl exit %d, %q", code, out)
		}
	}
}

// TestAPISocketPermissions: 0600 and gaffer's uid by default; socket_mode and socket_group (config)
// and --socket-mode, --socket-group applied.
func TestAPISocketPermissions(t *testing.T) {
	check := func(path string, mode os.FileMode, gid int) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if got := os.FileMode(st.Mode).Perm(); got != mode || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK || int(st.Uid) != os.Getuid() || (gid >= 0 && int(st.Gid) != gid) {
			t.Errorf("%s: mode %04o uid %d gid %d; want a socket %04o uid %d gid %d", path, got, st.Uid, st.Gid, mode, os.Getuid(), gid)
		}
	}
	a := apiUp(t, "", sleepWorker)
	check(a.sock, 0o600, os.Getgid())
	r := apiRun(t, nil, "sleep", "1000")
	check(r.sock, 0o600, os.Getgid())

	b := apiUp(t, `socket_mode = "0660"`, sleepWorker)
	check(b.sock, 0o660, -1)
	c := apiUp(t, `socket_mode = 0o640`, sleepWorker)
	check(c.sock, 0o640, -1)
	if os.Geteuid() != 0 {
		return // a group gaffer is not in needs root
	}
	d := apiUp(t, `socket_mode = "0660"
socket_group = "nogroup"`, sleepWorker)
	check(d.sock, 0o660, 65534)
	e := apiRun(t, []string{"--socket-mode", "0660", "--socket-group", "65534"}, "sleep", "1000")
	check(e.sock, 0o660, 65534)
	// A group member that is not an allowed uid passes the file mode, not the peer check.
	for _, x := range []string{e.dir, filepath.Dir(e.dir)} {
		_ = os.Chmod(x, 0o755)
	}
	code, out, _ := runProc(t, nil, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", e.sock, "http://gaffer/v1/info")
	if code != 0 || !strings.HasSuffix(out, "\n403") {
		t.Errorf("group member uid 65534: curl exit %d %q; want 403", code, out)
	}
	if code, _, errs := runProc(t, nil, gafferBin, "--socket", filepath.Join(t.TempDir(), "x.sock"), "--socket-mode", "999", "--", "true"); code != 2 || !strings.Contains(errs, "--socket-mode") {
		t.Errorf("--socket-mode 999: exit %d %q", code, errs)
	}
}

// TestAPIStaleAndLiveSocket: a stale socket file is replaced; a live one (another gaffer answers)
// is exit 2 with one line when the path was asked for, and stays the other gaffer's; the socket is
// removed at exit.
func TestAPIStaleAndLiveSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	staleSocket(t, sock)
	g := startGaffer(t, startOpts{dir: dir}, "--socket", sock, "--", "sleep", "1000")
	stopAtEnd(t, g)
	first := &apiGaffer{gafferRun: g, dir: dir, sock: sock}
	first.waitAPI()

	marker := filepath.Join(dir, "ran")
	code, _, errs := runProc(t, nil, gafferBin, "--socket", sock, "--", "touch", marker)
	oneLineError(t, "gaffer -- with a live socket", code, errs, 2, "another gaffer is listening on "+sock)
	up := t.TempDir()
	toml := fmt.Sprintf("[settings]\nsocket = %q\n[process.x]\ncmd = \"touch %s\"\n", sock, marker)
	if err := os.WriteFile(filepath.Join(up, "gaffer.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runProc(t, nil, gafferBin, "up", "-c", filepath.Join(up, "gaffer.toml"))
	oneLineError(t, "gaffer up with a live socket", code, errs, 2, "another gaffer is listening on "+sock)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a process ran although gaffer could not listen")
	}
	// The first gaffer still has its socket.
	if code, _ := curl(t, sock, "GET", "/v1/info", nil); code != 200 {
		t.Fatalf("the first gaffer lost its socket: %d", code)
	}
	// A path that is not a socket is an error too.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	code, _, errs = runProc(t, nil, gafferBin, "--socket", file, "--", "true")
	oneLineError(t, "gaffer --socket on a regular file", code, errs, 2, "not a socket")

	// Removed at exit.
	first.signal(syscall.SIGTERM)
	first.wait(10 * time.Second)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after gaffer exited: %v", err)
	}
	// Parent directories are created.
	deep := filepath.Join(dir, "a", "b", "g.sock")
	g2 := startGaffer(t, startOpts{dir: dir}, "--socket", deep, "--", "sleep", "1000")
	stopAtEnd(t, g2)
	(&apiGaffer{gafferRun: g2, dir: dir, sock: deep}).waitAPI()
}

// TestAPIDefaultSocketPath: /run/gaffer.sock in `gaffer up` and as PID 1 (in a private mount
// namespace with its own /run); at the default path a live socket or a failure is one warning and
// gaffer runs on.
func TestAPIDefaultSocketPath(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gaffer.toml")
	if err := os.WriteFile(cfg, []byte("[process.worker]\ncmd = \"sh -c 'echo up; exec sleep 1000'\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := func(setup string, args ...string) *gafferRun {
		// unshare -m without -f execs: the pid is gaffer's.
		g := startGafferVia(t, append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c",
			"mount -t tmpfs tmpfs /run && " + setup + ` && exec "$0" "$@"`, gafferBin}, args...))
		stopAtEnd(t, g)
		return g
	}
	g := ns("true", "up", "-c", cfg)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: fmt.Sprintf("/proc/%d/root/run/gaffer.sock", g.cmd.Process.Pid)}
	a.waitAPI()
	var info struct{ Socket, Mode string }
	a.get("/v1/info", &info)
	if info.Socket != "/run/gaffer.sock" || info.Mode != "up" {
		t.Errorf("info: %+v", info)
	}
	a.signal(syscall.SIGTERM)
	if code := a.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}

	// gaffer -- as PID 1.
	// --kill-child: when unshare ends, its child (gaffer, PID 1) gets SIGKILL and the namespace ends.
	g = startGafferVia(t, []string{"unshare", "-p", "-f", "--kill-child", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && exec "$0" -- sleep 1000`, gafferBin})
	stopAtEnd(t, g)
	a = &apiGaffer{gafferRun: g, dir: dir, sock: fmt.Sprintf("/proc/%d/root/run/gaffer.sock", g.cmd.Process.Pid)}
	a.waitAPI()
	a.get("/v1/info", &info)
	if info.Mode != "run" {
		t.Errorf("PID 1 info: %+v", info)
	}
	var ps []apiProc
	a.get("/v1/processes", &ps)
	if len(ps) != 1 || ps[0].Name != "main" || ps[0].Pid <= 1 {
		t.Errorf("PID 1 processes: %+v", ps)
	}
	g.signal(syscall.SIGKILL)
	g.wait(10 * time.Second)

	// A live socket at the default path: something answers on /run/gaffer.sock.
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g = ns(`touch /run/gaffer.sock && mount --bind "$1" /run/gaffer.sock && shift`, live, "up", "-c", cfg)
	a = &apiGaffer{gafferRun: g}
	a.expectOutput("worker", "up")
	testutil.WaitFor(t, 5*time.Second, "the warning", func() bool { return strings.Contains(g.stderr.String(), "\n") })
	if w := g.stderr.String(); w != "gaffer: no API socket: another gaffer is listening on /run/gaffer.sock\n" {
		t.Errorf("stderr %q; want one warning", w)
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	// /run read-only: gaffer falls back to /tmp/gaffer-0 (a tmpfs of the namespace's own here, so
	// the binary runs from /run; tests/socket_fallback_test.go has the rest) and says so in one
	// line; with /tmp read-only too, one warning and gaffer runs on.
	g = startGafferVia(t, []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && cp "$0" /run/gaffer && cp "$1" /run/gaffer.toml && shift && mount -o remount,ro /run && mount -t tmpfs -o mode=1777 tmpfs /tmp && exec env -u XDG_RUNTIME_DIR -u TMPDIR /run/gaffer "$@"`, gafferBin, cfg, "up", "-c", "/run/gaffer.toml"})
	stopAtEnd(t, g)
	a = &apiGaffer{gafferRun: g}
	a.expectOutput("worker", "up")
	testutil.WaitFor(t, 5*time.Second, "the line", func() bool { return strings.Contains(g.stderr.String(), "\n") })
	if w, want := g.stderr.String(), "gaffer: API socket at /tmp/gaffer-0/gaffer.sock (/run/gaffer.sock: read-only file system)\n"; w != want {
		t.Errorf("stderr %q; want %q", w, want)
	}
	g.signal(syscall.SIGTERM)
	g.wait(10 * time.Second)
	g = startGafferVia(t, []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && cp "$0" /run/gaffer && cp "$1" /run/gaffer.toml && shift && mount -o remount,ro /run && mount -t tmpfs -o ro tmpfs /tmp && exec env -u XDG_RUNTIME_DIR -u TMPDIR /run/gaffer "$@"`, gafferBin, cfg, "up", "-c", "/run/gaffer.toml"})
	stopAtEnd(t, g)
	a = &apiGaffer{gafferRun: g}
	a.expectOutput("worker", "up")
	testutil.WaitFor(t, 5*time.Second, "the warning", func() bool { return strings.Contains(g.stderr.String(), "\n") })
	if w := g.stderr.String(); !strings.HasPrefix(w, "gaffer: no API socket: ") || strings.Count(w, "\n") != 1 {
		t.Errorf("stderr %q; want one warning", w)
	}
	g.signal(syscall.SIGTERM)
	g.wait(10 * time.Second)
}

// TestAPIRunMode: `gaffer --` not PID 1 has no socket unless asked; with --socket its child is the
// process "main".
func TestAPIRunMode(t *testing.T) {
	g := startGaffer(t, startOpts{}, "--", "sleep", "1000")
	stopAtEnd(t, g)
	testutil.WaitFor(t, 5*time.Second, "the child", func() bool { return len(childrenOf(g.cmd.Process.Pid)) == 1 })
	if s := socketFds(t, g.cmd.Process.Pid); len(s) != 0 {
		t.Errorf("gaffer -- without --socket has sockets open: %v", s)
	}

	a := apiRun(t, []string{"--stop-timeout", "100ms"}, probeBin, "signals", "keep") // the probe ignores TERM
	a.expectLine("ready", 10*time.Second)
	kids := childrenOf(a.cmd.Process.Pid)
	ps := a.processes()
	if len(ps) != 1 || ps[0].Name != "main" || len(kids) != 1 || ps[0].Pid != kids[0] || ps[0].State != "running" || !ps[0].Ready {
		t.Fatalf("processes %+v; children of gaffer %v", ps, kids)
	}
	var info struct {
		Mode      string         `json:"mode"`
		Pid       int            `json:"pid"`
		Processes map[string]int `json:"processes"`
	}
	a.get("/v1/info", &info)
	if info.Mode != "run" || info.Pid != a.cmd.Process.Pid || info.Processes["running"] != 1 {
		t.Errorf("info %+v", info)
	}
	if code, _ := curl(t, a.sock, "POST", "/v1/processes/main/signal", []byte(`{"signal":"USR1"}`)); code != 200 {
		t.Errorf("signal main: %d", code)
	}
	a.expectLine("got USR1", 5*time.Second)
	mustCtl(t, a.sock, "signal", "USR2", "main")
	a.expectLine("got USR2", 5*time.Second)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/processes/main/start", ""},
		{"POST", "/v1/processes/main/restart", ""},
		{"POST", "/v1/processes/main/scale", `{"numprocesses":2}`},
		{"POST", "/v1/processes/main/stdin", "x"},
		{"POST", "/v1/processes/main/streams/x", "x"},
		{"GET", "/v1/processes/main/logs", ""},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		if code, out := curl(t, a.sock, c.method, c.path, body); code != 409 || !strings.Contains(out, "gaffer up") {
			t.Errorf("%s %s: %d %s; want 409", c.method, c.path, code, out)
		}
	}
	if code, _ := curl(t, a.sock, "GET", "/v1/processes/web", nil); code != 404 {
		t.Errorf("GET /v1/processes/web: %d, want 404", code)
	}
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	var entry struct {
		Name string
		Pid  int
	}
	a.get("/v1/processes/main/stats", &entry)
	if entry.Name != "main" || entry.Pid != kids[0] {
		t.Errorf("stats of main: %+v", entry)
	}

	// stop?wait=1 stops main, and gaffer with it.
	b := apiRun(t, nil, "sleep", "1000")
	if code, out := curl(t, b.sock, "POST", "/v1/processes/main/stop?wait=1", nil); code != 200 {
		t.Errorf("stop main: %d %s", code, out)
	}
	if code := b.wait(10 * time.Second); code != 143 {
		t.Errorf("gaffer exit %d after stopping main, want 143", code)
	}
	if _, err := os.Lstat(b.sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestAPIStdinAndStreams: stdin and custom-stream writes reach the child, with curl and gaffer send.
func TestAPIStdinAndStreams(t *testing.T) {
	a := apiUp(t, "", echoWeb+`
[process.ev]
cmd = ["sh", "-c", "while read l <&3; do echo \"event $l\"; echo \"back $l\" >&3; done"]
custom_streams = ["events"]
`)
	if code, out := curl(t, a.sock, "POST", "/v1/processes/web/stdin", []byte("one\ntwo\n")); code != 200 {
		t.Fatalf("stdin: %d %s", code, out)
	}
	a.expectOutput("web", "got one")
	a.expectOutput("web", "got two")
	mustCtl(t, a.sock, "send", "web", "hello")
	a.expectOutput("web", "got hello")

	if code, out := curl(t, a.sock, "POST", "/v1/processes/ev/streams/events", []byte("ping\n")); code != 200 {
		t.Fatalf("stream: %d %s", code, out)
	}
	// What the child writes to fd 3 is ev:events; its order against stdout is not defined.
	a.expectOutputs("ev | event ping", "ev:events | back ping")
	mustCtl(t, a.sock, "send", "--stream", "events", "ev", "pong")
	a.expectOutputs("ev | event pong", "ev:events | back pong")
	if out := mustCtl(t, a.sock, "logs", "--stream", "events", "ev"); out != "back ping\nback pong\n" {
		t.Errorf("logs --stream events: %q", out)
	}
}

// TestAPIConcurrentStdin: writers at once never interleave within one request.
func TestAPIConcurrentStdin(t *testing.T) {
	a := apiUp(t, "", `
[process.sink]
cmd = ["sh", "-c", "exec cat > {dir}/sink"]
redirect_input = true
`)
	const writers, size = 10, 100 << 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := append(bytes.Repeat([]byte{byte('a' + i)}, size-1), '\n')
			code, b, err := httpDo(a.sock, "POST", "/v1/processes/sink/stdin", body)
			if err != nil || code != 200 || string(b) != fmt.Sprintf("{\"ok\":true,\"bytes\":%d}\n", size) {
				errs <- fmt.Errorf("writer %c: %d %s %v", 'a'+i, code, b, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	path := filepath.Join(a.dir, "sink")
	testutil.WaitFor(t, 10*time.Second, "every byte in the sink", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() >= writers*size
	})
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	seen := map[byte]bool{}
	for i, l := range lines {
		if len(l) != size-1 || strings.Trim(l, l[:1]) != "" {
			t.Fatalf("line %d is %d bytes, not %d of one letter: writes interleaved (%q...)", i, len(l), size-1, l[:min(len(l), 40)])
		}
		seen[l[0]] = true
	}
	if len(lines) != writers || len(seen) != writers {
		t.Fatalf("%d lines of %d letters, want %d", len(lines), len(seen), writers)
	}
}

// TestAPILogs: recent lines with gaffer logs -n, new lines with gaffer logs -f and curl ?follow=1.
func TestAPILogs(t *testing.T) {
	a := apiUp(t, "", echoWeb)
	var in strings.Builder
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&in, "l%d\n", i)
	}
	if code, out, errs := ctl(t, a.sock, []byte(in.String()), "send", "web"); code != 0 {
		t.Fatalf("send: %d %s %s", code, out, errs)
	}
	a.expectOutput("web", "got l7")
	if out := mustCtl(t, a.sock, "logs", "-n", "5", "web"); out != "got l3\ngot l4\ngot l5\ngot l6\ngot l7\n" {
		t.Errorf("gaffer logs -n 5 web: %q", out)
	}
	out := mustCtl(t, a.sock, "logs", "--json", "-n", "2", "web")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ll struct {
			Time   time.Time `json:"time"`
			Name   string    `json:"name"`
			Stream string    `json:"stream"`
			Line   string    `json:"line"`
		}
		if err := json.Unmarshal([]byte(l), &ll); err != nil || ll.Name != "web" || ll.Stream != "out" || ll.Time.IsZero() || !strings.HasPrefix(ll.Line, "got l") {
			t.Errorf("gaffer logs --json: %q: %v", l, err)
		}
	}
	if code, body := curl(t, a.sock, "GET", "/v1/processes/web/logs?tail=1", nil); code != 200 || !strings.Contains(body, `"line":"got l7"`) {
		t.Errorf("logs?tail=1: %d %s", code, body)
	}
	if code, body := curl(t, a.sock, "GET", "/v1/processes/web/logs?stream=err", nil); code != 200 || body != "" {
		t.Errorf("logs?stream=err: %d %q", code, body)
	}

	// Followers: the tail line shows they are subscribed, then a new line comes when the test says.
	f1 := follow(t, gafferBin, "logs", "--socket", a.sock, "-f", "-n", "1", "web")
	f2 := follow(t, "curl", "-sSN", "--unix-socket", a.sock, "http://gaffer/v1/processes/web/logs?follow=1&tail=1")
	if l := f1.next(5 * time.Second); l != "got l7" {
		t.Fatalf("gaffer logs -f: first line %q", l)
	}
	f2.expect(`"line":"got l7"`, 5*time.Second)
	mustCtl(t, a.sock, "send", "web", "l8")
	if l := f1.next(5 * time.Second); l != "got l8" {
		t.Fatalf("gaffer logs -f: %q, want got l8", l)
	}
	f2.expect(`"line":"got l8"`, 5*time.Second)
}

// TestAPIWatchStreamsEnd: stats watchers and event followers end cleanly when their client goes:
// gaffer's connections close and it keeps answering.
func TestAPIWatchStreamsEnd(t *testing.T) {
	a := apiUp(t, "", sleepWorker+echoWeb)
	base := a.fds()
	var fs []*follower
	for range 2 {
		fs = append(fs, follow(t, "curl", "-sSN", "--unix-socket", a.sock, "http://gaffer/v1/stats?watch=1&interval=200ms"))
	}
	fs = append(fs, follow(t, gafferBin, "stats", "--socket", a.sock, "--json", "-w", "--interval", "200ms", "worker"))
	for _, f := range fs {
		for range 2 {
			if l := f.next(5 * time.Second); !json.Valid([]byte(l)) {
				t.Fatalf("%q: %q is not JSON", f.cmd.Args, l)
			}
		}
	}
	ce := follow(t, "curl", "-sSNv", "--unix-socket", a.sock, "http://gaffer/v1/events?follow=1")
	ce.waitHead()
	ge := follow(t, gafferBin, "events", "--socket", a.sock, "--json")
	lf := follow(t, gafferBin, "logs", "--socket", a.sock, "-f", "web")
	fs = append(fs, ce, ge, lf)
	old := a.process("worker").Pid
	mustCtl(t, a.sock, "restart", "worker")
	var e struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
		Pid  int    `json:"pid"`
		Code *int   `json:"code"`
	}
	l := ce.expect(`"kind":"exit"`, 5*time.Second)
	if err := json.Unmarshal([]byte(l), &e); err != nil || e.Name != "worker" || e.Pid != old || e.Code == nil || *e.Code != 143 {
		t.Errorf("exit event %q: %v", l, err)
	}
	l = ce.expect(`"kind":"spawn"`, 5*time.Second)
	if err := json.Unmarshal([]byte(l), &e); err != nil || e.Name != "worker" || e.Pid == 0 || e.Pid == old {
		t.Errorf("spawn event %q: %v", l, err)
	}
	// gaffer events shows nothing until it is subscribed: restart until it has seen a spawn.
	geSubscribed(t, a, ge)
	testutil.WaitFor(t, 5*time.Second, "six API connections", func() bool { return a.fds() >= base+6 })
	for _, f := range fs {
		f.kill()
	}
	testutil.WaitFor(t, 5*time.Second, "gaffer to close the connections of the clients that left", func() bool { return a.fds() <= base })
	// Again, leaving right after the first line, many times: nothing piles up.
	for range 20 {
		f := follow(t, "curl", "-sSN", "--unix-socket", a.sock, "http://gaffer/v1/stats?watch=1&interval=100ms")
		f.next(5 * time.Second)
		f.kill()
	}
	testutil.WaitFor(t, 5*time.Second, "gaffer to close every connection", func() bool { return a.fds() <= base })
	if code, _ := curl(t, a.sock, "GET", "/v1/info", nil); code != 200 {
		t.Errorf("after the clients left: %d", code)
	}
	// A watch ends with the server: gaffer events exits 0 when gaffer shuts down.
	ge = follow(t, gafferBin, "events", "--socket", a.sock, "--json")
	geSubscribed(t, a, ge)
	mustCtl(t, a.sock, "shutdown")
	ge.expect(`"kind":"shutdown"`, 5*time.Second)
	if code := ge.wait(10 * time.Second); code != 0 {
		t.Errorf("gaffer events exit %d when gaffer shut down; stderr %q", code, ge.errb.String())
	}
	if code := a.wait(10 * time.Second); code != 0 {
		t.Errorf("gaffer exit %d", code)
	}
}

// geSubscribed restarts worker until the follower f (gaffer events --json) has seen it spawn.
func geSubscribed(t *testing.T, a *apiGaffer, f *follower) {
	t.Helper()
	for i := 0; ; i++ {
		mustCtl(t, a.sock, "restart", "worker")
		if _, ok := f.try(`"kind":"spawn"`, time.Second); ok {
			return
		}
		if i == 10 {
			t.Fatalf("gaffer events saw no spawn after %d restarts", i+1)
		}
	}
}

// TestAPIScale: instances appear and go.
func TestAPIScale(t *testing.T) {
	a := apiUp(t, "", sleepWorker)
	mustCtl(t, a.sock, "scale", "worker", "3")
	var pids []int
	testutil.WaitFor(t, 5*time.Second, "three running workers", func() bool {
		ps := a.processes()
		pids = nil
		for _, p := range ps {
			if p.Group == "worker" && p.Pid != 0 && p.State == "running" {
				pids = append(pids, p.Pid)
			}
		}
		return slices.Equal(names(ps), []string{"worker", "worker.2", "worker.3"}) && len(pids) == 3
	})
	if p := a.process("worker.3"); p.Instance != 3 || p.Group != "worker" {
		t.Errorf("worker.3: %+v", p)
	}
	code, _, errs := ctl(t, a.sock, nil, "scale", "worker", "3")
	oneLineError(t, "scale to the same number", code, errs, 1, "already has 3 instances")

	if code, out := curl(t, a.sock, "POST", "/v1/processes/worker/scale", []byte(`{"numprocesses": 1}`)); code != 200 {
		t.Fatalf("scale 1: %d %s", code, out)
	}
	testutil.WaitFor(t, 5*time.Second, "one worker", func() bool { return slices.Equal(names(a.processes()), []string{"worker"}) })
	if p := a.process("worker"); p.Pid != pids[0] {
		t.Errorf("the first instance should stay: %+v, pids were %v", p, pids)
	}
	for _, pid := range pids[1:] {
		if alive(pid) {
			t.Errorf("removed instance pid %d still runs", pid)
		}
	}
	if n := a.process("worker").Config["numprocesses"]; n != 1.0 {
		t.Errorf("config numprocesses %v after scale 1", n)
	}
	// Still supervised: gaffer keeps running with the one left.
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 200 {
		t.Errorf("healthz after scaling down: %d", code)
	}
}

// TestAPIScaleToZeroAndBack: a process scaled to 0 can be scaled up again.
func TestAPIScaleToZeroAndBack(t *testing.T) {
	a := apiUp(t, "", sleepWorker+`
[process.other]
cmd = "sleep 1000"
`)
	mustCtl(t, a.sock, "scale", "worker", "0")
	testutil.WaitFor(t, 5*time.Second, "no worker", func() bool { return slices.Equal(names(a.processes()), []string{"other"}) })
	if code, out, errs := ctl(t, a.sock, nil, "scale", "worker", "1"); code != 0 {
		t.Fatalf("gaffer scale worker 1 after 0: exit %d %s %s", code, out, errs)
	}
	testutil.WaitFor(t, 5*time.Second, "the worker back", func() bool {
		for _, p := range a.processes() {
			if p.Group == "worker" && p.Pid != 0 {
				return true
			}
		}
		return false
	})
}

// TestAPIScaleKeepsAfter: instances added while their process still waits for its dependencies
// wait too.
func TestAPIScaleKeepsAfter(t *testing.T) {
	a := apiUp(t, "", `
[process.db]
cmd = "sleep 1000"
ready = "file://{dir}/db-ready"

[process.web]
cmd = "sleep 1000"
after = ["db"]
`)
	if p := a.process("web"); p.State != "pending" {
		t.Fatalf("web before db is ready: %+v", p)
	}
	mustCtl(t, a.sock, "scale", "web", "2")
	for _, p := range a.processes() {
		if p.Group == "web" && p.Pid != 0 {
			t.Errorf("%s runs although db is not ready: %+v", p.Name, p)
		}
	}
	os.WriteFile(filepath.Join(a.dir, "db-ready"), nil, 0o644)
	testutil.WaitFor(t, 10*time.Second, "both web instances", func() bool {
		n := 0
		for _, p := range a.processes() {
			if p.Group == "web" && p.Pid != 0 {
				n++
			}
		}
		return n == 2
	})
}

// TestAPIStartStopRestartWait: ?wait=1 returns when the process is stopped, or started and ready.
func TestAPIStartStopRestartWait(t *testing.T) {
	a := apiUp(t, "", `
[process.slow]
cmd = ["sh", "-c", "sleep 0.3; touch {dir}/ready; exec sleep 1000"]
ready = "file://{dir}/ready"
`)
	ready := filepath.Join(a.dir, "ready")
	testutil.WaitFor(t, 10*time.Second, "slow ready", func() bool { return a.process("slow").State == "ready" })
	first := a.process("slow").Pid

	if code, out := curl(t, a.sock, "POST", "/v1/processes/slow/stop?wait=1", nil); code != 200 {
		t.Fatalf("stop: %d %s", code, out)
	}
	if p := a.process("slow"); p.Pid != 0 || p.State != "exited" || alive(first) {
		t.Fatalf("after stop?wait=1: %+v (pid %d alive %v)", p, first, alive(first))
	}
	if code, _ := curl(t, a.sock, "POST", "/v1/processes/slow/stop?wait=1", nil); code != 409 {
		t.Errorf("second stop: %d, want 409", code)
	}
	os.Remove(ready)
	start := time.Now()
	if code, out := curl(t, a.sock, "POST", "/v1/processes/slow/start?wait=1", nil); code != 200 {
		t.Fatalf("start: %d %s", code, out)
	}
	p := a.process("slow")
	if p.State != "ready" || p.Pid == 0 || !p.Ready || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("start?wait=1 returned after %v with %+v; want ready after 300ms", time.Since(start), p)
	}
	if code, out := curl(t, a.sock, "POST", "/v1/processes/slow/restart?wait=1", nil); code != 200 {
		t.Fatalf("restart: %d %s", code, out)
	}
	if p2 := a.process("slow"); p2.Pid == 0 || p2.Pid == p.Pid || p2.State != "ready" || alive(p.Pid) {
		t.Fatalf("after restart?wait=1: %+v (was %d)", p2, p.Pid)
	}
	// Without wait: answered at once, then it stops.
	pid := a.process("slow").Pid
	if code, _ := curl(t, a.sock, "POST", "/v1/processes/slow/stop", nil); code != 200 {
		t.Fatalf("stop without wait: %d", code)
	}
	testutil.WaitFor(t, 5*time.Second, "slow stopped", func() bool { return a.process("slow").Pid == 0 && !alive(pid) })
	// Stopped by the API, it stays stopped and gaffer runs on (no restart, no on_end).
	if code, _ := curl(t, a.sock, "GET", "/v1/info", nil); code != 200 {
		t.Fatalf("gaffer gone after stopping its only process")
	}
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 200 {
		t.Errorf("healthz with a process stopped on purpose: %d", code)
	}
}

// TestAPIHealth: /healthz and gaffer health follow readiness.
func TestAPIHealth(t *testing.T) {
	a := apiUp(t, "", `
[process.worker]
cmd = "sleep 1000"
on_end = "ignore"

[process.never]
cmd = "sleep 1000"
ready = "file://{dir}/ok"
ready_timeout = "60s"

[process.init]
cmd = "true"
oneshot = true
`)
	code, body := curl(t, a.sock, "GET", "/healthz", nil)
	if code != 503 || body != `{"ok":false,"reasons":["never is starting"]}` {
		t.Errorf("healthz: %d %s", code, body)
	}
	c, out, errs := ctl(t, a.sock, nil, "health", "--level", "ready")
	if c != 1 || out != "unhealthy (ready): never is starting\n" || errs != "" {
		t.Errorf("gaffer health --level ready: exit %d, stdout %q, stderr %q", c, out, errs)
	}
	// alive: nothing is fatal or unhealthy.
	if out := mustCtl(t, a.sock, "health"); !strings.HasPrefix(out, "healthy (alive") {
		t.Errorf("gaffer health printed %q", out)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "healthy", func() bool { code, _ := curl(t, a.sock, "GET", "/healthz", nil); return code == 200 })
	if out := mustCtl(t, a.sock, "health", "--level", "ready"); !strings.HasPrefix(out, "healthy (ready") {
		t.Errorf("gaffer health --level ready printed %q", out)
	}
	// A process that ends unexpectedly makes it unhealthy.
	var w apiProc
	a.get("/v1/processes/worker", &w)
	syscall.Kill(w.Pid, syscall.SIGKILL)
	testutil.WaitFor(t, 5*time.Second, "unhealthy", func() bool { code, _ := curl(t, a.sock, "GET", "/healthz", nil); return code == 503 })
}

// TestAPIShutdown: POST /v1/shutdown is the ordered shutdown; gaffer exits 0 and removes its socket.
func TestAPIShutdown(t *testing.T) {
	a := apiUp(t, "", `
[process.db]
cmd = "sleep 1000"

[process.web]
cmd = "sleep 1000"
after = ["db"]
`)
	testutil.WaitFor(t, 5*time.Second, "both running", func() bool { return a.process("web").Pid != 0 })
	ev := follow(t, "curl", "-sSNv", "--unix-socket", a.sock, "http://gaffer/v1/events?follow=1")
	ev.waitHead()
	if code, body := curl(t, a.sock, "POST", "/v1/shutdown", nil); code != 202 || body != "{\"ok\":true}" {
		t.Errorf("shutdown: %d %q", code, body)
	}
	lines, code := collect(t, a.gafferRun, 20*time.Second)
	if code != 0 {
		t.Errorf("exit %d after POST /v1/shutdown; stdout:\n%s", code, strings.Join(lines, "\n"))
	}
	if mustIndex(t, lines, "gaffer", "web exited") > mustIndex(t, lines, "gaffer", "db exited") {
		t.Errorf("db stopped before web, which depends on it:\n%s", strings.Join(lines, "\n"))
	}
	mustIndex(t, lines, "gaffer", "shutdown requested over the API")
	if _, err := os.Lstat(a.sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	ev.expect(`"kind":"shutdown"`, 5*time.Second)
	if code := ev.wait(5 * time.Second); code != 0 {
		t.Errorf("curl events exit %d: the stream did not end cleanly; stderr %q", code, ev.errb.String())
	}
}

// TestAPIMetrics: /metrics passes promtool check metrics, in up and run mode.
func TestAPIMetrics(t *testing.T) {
	promtool := needPromtool(t)
	a := apiUp(t, "", sleepWorker+`
[process.pool]
cmd = "sleep 1000"
numprocesses = 2

[process.once]
cmd = "sh -c 'exit 0'"
oneshot = true
`)
	testutil.WaitFor(t, 5*time.Second, "once done", func() bool { p := a.process("once"); return p.ExitCode != nil })
	r := apiRun(t, nil, "sleep", "1000")
	for _, x := range []*apiGaffer{a, r} {
		code, text := curl(t, x.sock, "GET", "/metrics", nil)
		if code != 200 {
			t.Fatalf("metrics: %d %s", code, text)
		}
		text += "\n"
		c, out, errs := runProc(t, []byte(text), promtool, "check", "metrics")
		if c != 0 {
			t.Errorf("promtool check metrics: exit %d %s %s\n%s", c, out, errs, text)
		}
		for _, want := range []string{"# TYPE gaffer_up gauge", "gaffer_reaped_total ", "gaffer_process_resident_memory_bytes ", "gaffer_memory_rss_bytes{"} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics without %q:\n%s", want, text)
			}
		}
		if x == a {
			for _, want := range []string{`gaffer_up{name="pool.2",group="pool",* 1`, `gaffer_exit_code{name="once",group="once",* 0`, `gaffer_up{name="once",group="once",* 0`} {
				if !hasSample(text, want) {
					t.Errorf("metrics without %q:\n%s", want, text)
				}
			}
		} else if !hasSample(text, `gaffer_up{name="main",group="main",* 1`) {
			t.Errorf("run-mode metrics without main:\n%s", text)
		}
	}
	if _, head := curl(t, a.sock, "GET", "/metrics", nil, "-i"); !strings.Contains(head, "Content-Type: text/plain; version=0.0.4") {
		t.Errorf("metrics content type:\n%.300s", head)
	}
}

// hasSample reports whether text has a line that starts with pattern's part before "*" and ends
// with its part after.
func hasSample(text, pattern string) bool {
	pre, post, _ := strings.Cut(pattern, "*")
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, pre) && strings.HasSuffix(l, post) {
			return true
		}
	}
	return false
}

func TestAPIStdinOfAProcessThatDoesNotRead(t *testing.T) {
	a := apiUp(t, "", `
[process.deaf]
cmd = "sleep 1000"
redirect_input = true
`)
	// More than a pipe holds: the write cannot complete, and must give up rather than hang.
	start := time.Now()
	status, body := curl(t, a.sock, "POST", "/v1/processes/deaf/stdin", bytes.Repeat([]byte("x"), 200000))
	if status != 409 || !strings.Contains(body, "did not read its input") {
		t.Fatalf("stdin write to a process that does not read: %d %s", status, body)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the write held the request for %v", took)
	}
	// The API still answers.
	if status, body := curl(t, a.sock, "GET", "/v1/info", nil); status != 200 {
		t.Fatalf("after the failed write: %d %s", status, body)
	}
}

func TestAPIStartReportsAProcessThatDoesNotStayUp(t *testing.T) {
	a := apiUp(t, "", `
[process.bad]
cmd = "false"
on_end = "ignore"
[process.keep]
cmd = "sleep 1000"
`)
	testutil.WaitFor(t, 10*time.Second, "bad ended", func() bool { return a.process("bad").State == "fatal" })
	code, _, stderr := ctl(t, a.sock, nil, "start", "bad")
	oneLineError(t, "gaffer start bad", code, stderr, 1, "did not stay up")
}
