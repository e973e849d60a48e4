package tests

// Black-box tests of liveness checks (issue 9): health = "exec:...", health_interval,
// health_retries, health_start and each on_unhealthy action, seen in gaffer's events and in the
// API. The check is driven by a file the test creates and removes: health = "exec:test -f DIR/ok".
// The helpers named iss9* serve the other tests of issue 9 as well (logready, drain, schedule).

import (
	"encoding/json"
	"gaffer/internal/testutil"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// iss9Wait is how long a test waits for anything that is bound to happen: long, for a loaded machine.
const iss9Wait = 30 * time.Second

// iss9Up starts `gaffer up` (as PID 1 of a new PID namespace when pid1 is set) in a fresh directory
// holding files and a gaffer.toml of settings (more [settings] keys) and procs, with the API on
// {dir}/g.sock, and waits until the API answers. gaffer gets a SIGTERM at the end of the test.
func iss9Up(t *testing.T, pid1 bool, settings, procs string, files map[string]string) *apiGaffer {
	t.Helper()
	all := map[string]string{"gaffer.toml": "[settings]\nsocket = \"{dir}/g.sock\"\n" + settings + "\n" + procs}
	for name, content := range files {
		all[name] = content
	}
	g, dir := startUp(t, pid1, all)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// iss9Proc is what the tests of issue 9 read of a process in the API.
type iss9Proc struct {
	Name               string     `json:"name"`
	Pid                int        `json:"pid"`
	State              string     `json:"state"`
	Restarts           int        `json:"restarts"`
	ExitCode           *int       `json:"exit_code"`
	StartedAt          time.Time  `json:"started_at"`
	Health             string     `json:"health"`
	HealthFailures     int        `json:"health_failures"`
	HealthError        string     `json:"health_error"`
	HealthChecksFailed uint64     `json:"health_checks_failed"`
	Schedule           string     `json:"schedule"`
	NextRun            *time.Time `json:"next_run"`
}

// iss9Proc reads GET /v1/processes/NAME.
func (a *apiGaffer) iss9Proc(name string) iss9Proc {
	a.t.Helper()
	var p iss9Proc
	a.get("/v1/processes/"+name, &p)
	return p
}

// iss9WaitUntil waits until cond holds (testutil.WaitFor, polling every 20 ms), failing at once
// when gaffer exits before.
func (a *apiGaffer) iss9WaitUntil(what string, cond func() bool) {
	a.t.Helper()
	first := true
	testutil.WaitFor(a.t, iss9Wait, what, func() bool {
		if !first {
			time.Sleep(20 * time.Millisecond) // the pace of the polls, not a synchronisation
		}
		first = false
		if cond() {
			return true
		}
		select {
		case <-a.done:
			if cond() { // what gaffer wrote is all there once it exited
				return true
			}
			a.t.Fatalf("gaffer exited (%d) waiting for %s; stderr %s", a.code, what, a.stderr.String())
		default:
		}
		return false
	})
}

// iss9WaitProc waits until cond holds for the process name and returns what it read last.
func (a *apiGaffer) iss9WaitProc(name, what string, cond func(iss9Proc) bool) iss9Proc {
	a.t.Helper()
	var p iss9Proc
	a.iss9WaitUntil(name+" "+what, func() bool {
		p = a.iss9Proc(name)
		return cond(p)
	})
	return p
}

// iss9Report is GET /v1/health?level=LEVEL: its status and report.
type iss9Report struct {
	status   int
	OK       bool   `json:"ok"`
	Level    string `json:"level"`
	Draining bool   `json:"draining"`
	Stopping bool   `json:"stopping"`
	Failing  []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"failing"`
	raw string
}

// iss9Health asks GET /v1/health?level=level.
func (a *apiGaffer) iss9Health(level string) iss9Report {
	a.t.Helper()
	code, b, err := httpDo(a.sock, "GET", "/v1/health?level="+level, nil)
	if err != nil {
		a.t.Fatalf("GET /v1/health?level=%s: %v; stderr %s", level, err, a.stderr.String())
	}
	r := iss9Report{status: code, raw: string(b)}
	if err := json.Unmarshal(b, &r); err != nil {
		a.t.Fatalf("GET /v1/health?level=%s: %d %q: %v", level, code, b, err)
	}
	return r
}

// iss9Log is gaffer's stdout as a test has read it so far, each line normalized to "name | text".
type iss9Log struct {
	g     *gafferRun
	lines []string
}

func newIss9Log(g *gafferRun) *iss9Log { return &iss9Log{g: g} }

// norm writes a prefix-format line as "name | text" (names unpadded).
func iss9Norm(l string) string {
	if n, x, ok := split(l); ok {
		return n + " | " + x
	}
	return l
}

// find is the position of the first line after index after that is of name and contains text, or -1.
func (l *iss9Log) find(after int, name, text string) int {
	for i := after + 1; i < len(l.lines); i++ {
		if n, x, ok := split(l.lines[i]); ok && n == name && strings.Contains(x, text) {
			return i
		}
	}
	return -1
}

// await returns the position of the first line after index after that is of name and contains
// text, reading more of gaffer's stdout as long as needed (iss9Wait at most).
func (l *iss9Log) await(after int, name, text string) int {
	l.g.t.Helper()
	deadline := time.After(iss9Wait)
	for {
		if i := l.find(after, name, text); i >= 0 {
			return i
		}
		select {
		case line, ok := <-l.g.lines:
			if !ok {
				l.g.t.Fatalf("stdout closed waiting for %s | ...%s...; saw:\n%s\nstderr %s", name, text, strings.Join(l.lines, "\n"), l.g.stderr.String())
			}
			l.lines = append(l.lines, iss9Norm(line))
		case <-deadline:
			l.g.t.Fatalf("no line %s | ...%s... within %v; saw:\n%s\nstderr %s", name, text, iss9Wait, strings.Join(l.lines, "\n"), l.g.stderr.String())
		}
	}
}

// event is await for one of gaffer's own event lines.
func (l *iss9Log) event(after int, text string) int {
	l.g.t.Helper()
	return l.await(after, "gaffer", text)
}

// drain adds the lines already there to l, without waiting for more.
func (l *iss9Log) drain() {
	for {
		select {
		case line, ok := <-l.g.lines:
			if !ok {
				return
			}
			l.lines = append(l.lines, iss9Norm(line))
		default:
			return
		}
	}
}

// rest reads every line until gaffer exits and returns its exit code.
func (l *iss9Log) rest() int {
	l.g.t.Helper()
	more, code := collect(l.g.t, l.g, iss9Wait)
	for _, line := range more {
		l.lines = append(l.lines, iss9Norm(line))
	}
	return code
}

// stop sends gaffer SIGTERM and wants it to exit 0, after reading the rest of its output.
func (l *iss9Log) stop() {
	l.g.t.Helper()
	l.g.signal(unix.SIGTERM)
	if code := l.rest(); code != 0 {
		l.g.t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, l)
	}
}

func (l *iss9Log) String() string { return strings.Join(l.lines, "\n") }

var iss9StartedPid = regexp.MustCompile(`started \(pid (\d+)\)`)

// startedPid is the pid of the event line "NAME started (pid N)" at index i.
func (l *iss9Log) startedPid(i int) int {
	l.g.t.Helper()
	m := iss9StartedPid.FindStringSubmatch(l.lines[i])
	if m == nil {
		l.g.t.Fatalf("no pid in %q", l.lines[i])
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// iss9Lines reads the file's lines (none when it does not exist).
func iss9Lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// iss9Times reads a file of `date +%s%N` lines.
func iss9Times(t *testing.T, path string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, f := range iss9Lines(t, path) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, time.Unix(0, n))
	}
	return out
}

func iss9Touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func iss9Remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// iss9Checked is a process web checked by the file {dir}/ok every 100 ms, with extra keys.
func iss9Checked(extra string) string {
	return `
[process.web]
cmd = "sleep 1000"
health = "exec:test -f {dir}/ok"
health_interval = "100ms"
health_timeout = "10s"
health_retries = 3
` + extra
}

// Contract: on_unhealthy = "restart" (the default) stops the process once health_retries
// consecutive checks failed and restarts it after its backoff, as a new process, whatever its
// restart policy (the default restart = "never" too); that restart counts toward max_restarts,
// so with max_restarts = 1 the second unhealthy run gives up (and gaffer, on_end = "shutdown",
// stops).
func TestHealthUnhealthyRestartsAndGivesUp(t *testing.T) {
	for _, tt := range []struct{ name, restart string }{
		{"on-failure", `restart = "on-failure"`},
		{"never", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := iss9Up(t, true, "", iss9Checked(tt.restart+`
backoff = "300ms"
max_restarts = 1
`), map[string]string{"ok": ""})
			out := newIss9Log(a.gafferRun)
			first := out.event(-1, "web started (pid ")
			pid1 := out.startedPid(first)
			a.iss9WaitProc("web", "healthy", func(p iss9Proc) bool { return p.Health == "healthy" })
			if r := a.iss9Health("alive"); r.status != 200 || !r.OK {
				t.Fatalf("alive while healthy: %d %s", r.status, r.raw)
			}

			iss9Remove(t, filepath.Join(a.dir, "ok"))
			i := out.event(first, "web unhealthy: 3 checks failed (last: exit 1)")
			i = out.event(i, "web exited with code 143")
			i = out.event(i, "web restarting in 300ms")
			second := out.event(i, "web started (pid ")
			if pid2 := out.startedPid(second); pid2 == pid1 {
				t.Fatalf("restarted with the same pid %d:\n%s", pid1, out)
			}
			// The file is still missing: the new run is unhealthy as well, and that is one restart
			// too many.
			i = out.event(second, "web unhealthy: 3 checks failed (last: exit 1)")
			out.event(i, "web gave up: 1 restarts within 1m0s")
			code := out.rest()
			if code == 0 {
				t.Fatalf("exit 0 after web gave up; stdout:\n%s", out)
			}
			if n := strings.Count(out.String(), "web started (pid "); n != 2 {
				t.Fatalf("%d runs of web, want 2 (max_restarts = 1):\n%s", n, out)
			}
		})
	}
}

// Contract: on_unhealthy = "shutdown" stops everything once the process is unhealthy, and gaffer
// exits with code 1.
func TestHealthUnhealthyShutsDown(t *testing.T) {
	a := iss9Up(t, true, "", iss9Checked(`on_unhealthy = "shutdown"
[process.other]
cmd = "sleep 1000"
`), map[string]string{"ok": ""})
	out := newIss9Log(a.gafferRun)
	a.iss9WaitProc("web", "healthy", func(p iss9Proc) bool { return p.Health == "healthy" })
	iss9Remove(t, filepath.Join(a.dir, "ok"))
	i := out.event(-1, "web unhealthy: 3 checks failed (last: exit 1)")
	code := out.rest()
	if code != 1 {
		t.Fatalf("exit %d, want 1 (web unhealthy, on_unhealthy = shutdown); stdout:\n%s", code, out)
	}
	out.event(i, "web exited with code 143")
	out.event(i, "other exited with code 143")
	if out.find(i, "gaffer", "restarting") >= 0 {
		t.Fatalf("restarted although on_unhealthy = shutdown:\n%s", out)
	}
}

// Contract: on_unhealthy = "ignore" only reports: the event, health "unhealthy" in the API and a
// failing level alive, while the process keeps running with the same pid; once a check passes
// again, "web healthy again" and level alive is OK again.
func TestHealthUnhealthyIgnored(t *testing.T) {
	a := iss9Up(t, true, "", iss9Checked(`on_unhealthy = "ignore"
`), map[string]string{"ok": ""})
	out := newIss9Log(a.gafferRun)
	pid := a.iss9WaitProc("web", "healthy", func(p iss9Proc) bool { return p.Health == "healthy" }).Pid

	iss9Remove(t, filepath.Join(a.dir, "ok"))
	i := out.event(-1, "web unhealthy: 3 checks failed (last: exit 1)")
	p := a.iss9Proc("web")
	if p.Health != "unhealthy" || p.Pid != pid || p.State != "running" || p.HealthFailures < 3 || p.HealthError != "exit 1" {
		t.Fatalf("after the unhealthy event: %+v; want unhealthy, still running as pid %d, >= 3 failures, error \"exit 1\"", p, pid)
	}
	r := a.iss9Health("alive")
	if r.status != 503 || r.OK || len(r.Failing) != 1 || r.Failing[0].Name != "web" || !strings.Contains(r.Failing[0].Reason, "unhealthy") {
		t.Fatalf("level alive while web is unhealthy: %d %s; want 503 with web failing", r.status, r.raw)
	}

	iss9Touch(t, filepath.Join(a.dir, "ok"))
	out.event(i, "web healthy again")
	p = a.iss9WaitProc("web", "healthy again", func(p iss9Proc) bool { return p.Health == "healthy" && p.HealthFailures == 0 })
	if p.Pid != pid || p.Restarts != 0 {
		t.Fatalf("web changed while ignored: %+v, want pid %d and no restarts", p, pid)
	}
	if r := a.iss9Health("alive"); r.status != 200 || !r.OK {
		t.Fatalf("level alive once healthy again: %d %s", r.status, r.raw)
	}
	if j := out.find(-1, "gaffer", "web exited"); j >= 0 {
		t.Fatalf("web was stopped although on_unhealthy = ignore:\n%s", out)
	}
	out.stop()
}

// Contract: health_retries counts consecutive failures: fail, fail, pass, fail, fail does not
// make the process unhealthy with health_retries = 3, and every failure still counts in
// health_checks_failed; three in a row do.
//
// The first checks follow a script ({dir}/plan, one result per check) rather than a file the test
// toggles: with checks 100 ms apart, a third check can run between the test seeing two failures
// and its touching the file. After the script, the check is the file {dir}/ok again, which the
// test removes and creates while waiting on health_failures in the API.
func TestHealthRetriesAreConsecutive(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.web]
cmd = "sleep 1000"
health = "exec:sh {dir}/check.sh"
health_interval = "100ms"
health_timeout = "10s"
health_retries = 3
on_unhealthy = "ignore"
`, map[string]string{
		"ok":     "",
		"checks": "",
		"plan":   "fail\nfail\npass\nfail\nfail\n",
		"check.sh": `n=$(( $(wc -l < {dir}/checks) + 1 ))
step=$(sed -n "${n}p" {dir}/plan)
echo "${step:-file}" >> {dir}/checks
case "$step" in
fail) exit 1 ;;
pass) exit 0 ;;
*) test -f {dir}/ok ;;
esac
`,
	})
	out := newIss9Log(a.gafferRun)
	checks := filepath.Join(a.dir, "checks")
	// Checks run one at a time: once the 8th began, the 7th's result (the second pass from the
	// file) is counted.
	testutil.WaitFor(t, iss9Wait, "8 checks", func() bool { return len(iss9Lines(t, checks)) >= 8 })
	p := a.iss9Proc("web")
	if p.HealthChecksFailed != 4 || p.Health != "healthy" || p.HealthFailures != 0 {
		t.Fatalf("after fail, fail, pass, fail, fail, pass, pass: %+v; want healthy, 0 consecutive and 4 failed in all", p)
	}
	out.drain()
	if out.find(-1, "gaffer", "unhealthy") >= 0 {
		t.Fatalf("unhealthy after two failures in a row (health_retries = 3):\n%s", out)
	}

	iss9Remove(t, filepath.Join(a.dir, "ok"))
	a.iss9WaitProc("web", "one failure", func(p iss9Proc) bool { return p.HealthFailures >= 1 })
	a.iss9WaitProc("web", "two failures", func(p iss9Proc) bool { return p.HealthFailures >= 2 })
	a.iss9WaitProc("web", "three failures", func(p iss9Proc) bool { return p.HealthFailures >= 3 })
	i := out.event(-1, "web unhealthy: 3 checks failed (last: exit 1)")
	if j := out.find(-1, "gaffer", "unhealthy"); j != i {
		t.Fatalf("unhealthy before three failures in a row:\n%s", out)
	}
	if p := a.iss9Proc("web"); p.HealthChecksFailed < 7 || p.Health != "unhealthy" {
		t.Fatalf("after three more failures: %+v; want unhealthy and at least 7 failed in all", p)
	}
	iss9Touch(t, filepath.Join(a.dir, "ok"))
	out.event(i, "web healthy again")
	a.iss9WaitProc("web", "no failures", func(p iss9Proc) bool { return p.HealthFailures == 0 && p.Health == "healthy" })
}

// Contract: no check runs while the process waits to restart (its backoff): the last check of
// the unhealthy run comes before its stop, and the first of the next run after its start.
func TestHealthPausedDuringBackoff(t *testing.T) {
	const backoff = 3 * time.Second
	a := iss9Up(t, true, "", `
[process.web]
cmd = "sleep 1000"
health = "exec:date +%s%N >> {dir}/checks; test -f {dir}/ok"
health_interval = "100ms"
health_timeout = "10s"
health_retries = 3
restart = "on-failure"
backoff = "3s"
`, map[string]string{"ok": ""})
	out := newIss9Log(a.gafferRun)
	a.iss9WaitProc("web", "healthy", func(p iss9Proc) bool { return p.Health == "healthy" })
	ok := filepath.Join(a.dir, "ok")
	iss9Remove(t, ok)
	i := out.event(-1, "web restarting in 3s")
	iss9Touch(t, ok) // the next run stays healthy
	i = out.event(i, "web started (pid ")
	pid := out.startedPid(i)
	p := a.iss9WaitProc("web", "restarted", func(p iss9Proc) bool { return p.Pid == pid })
	// The run began at StartedAt; the previous one ended at least the backoff before (a timer
	// never fires early). Checks are paused between the two.
	quiet := p.StartedAt.Add(-backoff)
	for _, c := range iss9Times(t, filepath.Join(a.dir, "checks")) {
		if c.After(quiet) && c.Before(p.StartedAt) {
			t.Fatalf("a check ran at %v, during the backoff before the restart at %v", c.Format(time.RFC3339Nano), p.StartedAt.Format(time.RFC3339Nano))
		}
	}
	// And the checks of the new run go on.
	n := len(iss9Lines(t, filepath.Join(a.dir, "checks")))
	testutil.WaitFor(t, iss9Wait, "checks of the new run", func() bool { return len(iss9Lines(t, filepath.Join(a.dir, "checks"))) > n })
	a.iss9WaitProc("web", "healthy after the restart", func(p iss9Proc) bool { return p.Health == "healthy" && p.Pid == pid })
}

// Contract: failures within health_start of the start do not count: with health_retries = 1 and
// a check that fails from the start, the process becomes unhealthy only health_start after it
// started, and health_checks_failed counts fewer failures than the checks that failed.
func TestHealthStartGrace(t *testing.T) {
	const grace = 3 * time.Second
	begin := time.Now()
	a := iss9Up(t, true, "", `
[process.web]
cmd = "sleep 1000"
health = "exec:if test -f {dir}/ok; then echo pass >> {dir}/checks; else echo fail >> {dir}/checks; exit 1; fi"
health_interval = "100ms"
health_timeout = "10s"
health_retries = 1
health_start = "3s"
on_unhealthy = "ignore"
`, nil)
	out := newIss9Log(a.gafferRun)
	i := out.event(-1, "web unhealthy: check failed: exit 1")
	if d := time.Since(begin); d < grace {
		t.Fatalf("unhealthy %v after the start, within health_start (%v)", d, grace)
	}
	iss9Touch(t, filepath.Join(a.dir, "ok"))
	out.event(i, "web healthy again")
	// Every failed check ran before the pass that made web healthy: the counts are final.
	failed := 0
	for _, l := range iss9Lines(t, filepath.Join(a.dir, "checks")) {
		if l == "fail" {
			failed++
		}
	}
	p := a.iss9Proc("web")
	if p.HealthChecksFailed < 1 || int(p.HealthChecksFailed) >= failed {
		t.Fatalf("%d failures counted of %d failed checks: those within health_start must not count", p.HealthChecksFailed, failed)
	}
	t.Logf("%d of %d failed checks counted", p.HealthChecksFailed, failed)
}
