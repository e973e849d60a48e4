package tests

// Black-box tests of gaffer reload (issue 12): `gaffer up` as PID 1 of a new PID namespace, its
// API on a socket in the test's directory; the test rewrites gaffer.toml and asks for a reload
// (gaffer reload, POST /v1/reload or reload_signal), then checks what runs through /v1/processes
// and gaffer's stdout.

import (
	"encoding/json"
	"fmt"
	"gaffer/core"
	"gaffer/internal/testutil"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadWait bounds every wait of these tests: the machine may be loaded.
const reloadWait = 30 * time.Second

// reloadUp writes gaffer.toml ([settings] with the API socket {dir}/g.sock and settings, then
// procs), starts `gaffer up` there as PID 1 of a new PID namespace, and waits for its API. gaffer
// is stopped with SIGTERM at the end of the test.
func reloadUp(t *testing.T, settings, procs string, args ...string) *apiGaffer {
	t.Helper()
	return reloadUpFiles(t, map[string]string{"gaffer.toml": reloadToml(settings, procs)}, args...)
}

// reloadUpFiles is reloadUp with the files given (name -> content, names may have directories;
// {dir} and {probe} replaced); one of them must set the socket {dir}/g.sock.
func reloadUpFiles(t *testing.T, files map[string]string, args ...string) *apiGaffer {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeConfigFile(t, dir, name, content)
	}
	g := startGaffer(t, startOpts{pid1: true, dir: dir}, append([]string{"up"}, args...)...)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	stopAtEnd(t, g)
	sock := a.sock
	t.Cleanup(func() {
		if c, ok := httpClients.LoadAndDelete(sock); ok {
			c.(*http.Client).CloseIdleConnections()
		}
	})
	testutil.WaitFor(t, reloadWait, "the API socket "+a.sock, func() bool {
		select {
		case <-a.done:
			t.Fatalf("gaffer exited (%d) before its socket answered; stderr: %s", a.code, a.stderr.String())
		default:
		}
		code, _, err := httpDo(a.sock, "GET", "/v1/info", nil)
		return err == nil && code == 200
	})
	return a
}

// reloadToml is a gaffer.toml of these tests.
func reloadToml(settings, procs string) string {
	return "[settings]\nsocket = \"{dir}/g.sock\"\n" + settings + "\n" + procs
}

// rewriteConfig replaces gaffer.toml (through a rename, so that gaffer never reads half a file) and
// returns its content.
func rewriteConfig(a *apiGaffer, settings, procs string) string {
	a.t.Helper()
	return rewriteRaw(a, reloadToml(settings, procs))
}

// rewriteRaw is rewriteConfig with the whole file given.
func rewriteRaw(a *apiGaffer, content string) string {
	a.t.Helper()
	return writeConfigFile(a.t, a.dir, "gaffer.toml", content)
}

// writeConfigFile writes dir/name ({dir} and {probe} replaced in content), making its directory, through
// a rename: gaffer never reads half a file. It returns what it wrote.
func writeConfigFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	content = strings.NewReplacer("{probe}", probeBin, "{dir}", dir).Replace(content)
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".new")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return content
}

// mustReload runs `gaffer reload ARGS` against a, which must succeed, and returns its stdout.
func mustReload(a *apiGaffer, args ...string) string {
	a.t.Helper()
	code, out, errs := ctl(a.t, a.sock, nil, "reload", args...)
	if code != 0 {
		a.t.Fatalf("gaffer reload %q: exit %d; stdout %q; stderr %q; gaffer's stderr: %s", args, code, out, errs, a.stderr.String())
	}
	return out
}

// postReload is POST /v1/reload (?dry_run=1 when dry): the status and the decoded answer.
func postReload(a *apiGaffer, dry bool) (int, core.ReloadResult) {
	a.t.Helper()
	path := "/v1/reload"
	if dry {
		path += "?dry_run=1"
	}
	code, body, err := httpDo(a.sock, "POST", path, nil)
	if err != nil {
		a.t.Fatalf("POST %s: %v", path, err)
	}
	var r core.ReloadResult
	if err := json.Unmarshal(body, &r); err != nil {
		a.t.Fatalf("POST %s: %d %s: %v", path, code, body, err)
	}
	return code, r
}

// hasLines fails unless every line of want is a line of out.
func hasLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: no line %q in:\n%s", what, w, out)
		}
	}
}

// procsByName is GET /v1/processes by instance name.
func procsByName(a *apiGaffer) map[string]apiProc {
	a.t.Helper()
	m := map[string]apiProc{}
	for _, p := range a.processes() {
		m[p.Name] = p
	}
	return m
}

// waitProcsFor waits until cond holds of GET /v1/processes (by name) and returns that answer.
func waitProcsFor(a *apiGaffer, what string, cond func(map[string]apiProc) bool) map[string]apiProc {
	a.t.Helper()
	var ps map[string]apiProc
	testutil.WaitFor(a.t, reloadWait, what, func() bool {
		select {
		case <-a.done:
			a.t.Fatalf("gaffer exited (%d) waiting for %s; stderr: %s", a.code, what, a.stderr.String())
		default:
		}
		ps = procsByName(a)
		return cond(ps)
	})
	return ps
}

// isUp says whether p has a process that runs (or is ready).
func isUp(p apiProc) bool {
	return p.Pid != 0 && (p.State == "running" || p.State == "ready")
}

// waitUpOnly waits until exactly the instances named run (or are ready) and returns their pids.
func waitUpOnly(a *apiGaffer, names ...string) map[string]int {
	a.t.Helper()
	ps := waitProcsFor(a, strings.Join(names, ", ")+" up and nothing else", func(ps map[string]apiProc) bool {
		if len(ps) != len(names) {
			return false
		}
		for _, n := range names {
			if p, ok := ps[n]; !ok || !isUp(p) {
				return false
			}
		}
		return true
	})
	pids := map[string]int{}
	for n, p := range ps {
		pids[n] = p.Pid
	}
	return pids
}

// expectLineOf waits for gaffer's stdout line "name | text" (name "gaffer": an event) and returns
// the lines before it.
func expectLineOf(a *apiGaffer, name, text string) []string {
	a.t.Helper()
	var seen []string
	deadline := time.After(reloadWait)
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("stdout closed waiting for %s | %s; saw %q; stderr %s", name, text, seen, a.stderr.String())
			}
			if n, x, ok := split(l); ok && n == name && x == text {
				return seen
			}
			seen = append(seen, l)
		case <-deadline:
			a.t.Fatalf("no line %s | %s within %v; saw %q; stderr %s", name, text, reloadWait, seen, a.stderr.String())
		}
	}
}

// expectLinesOf waits for every gaffer stdout line "name | text" of want (a final * matches any
// rest), in any order, and returns the lines seen meanwhile. Lines of different processes, and
// gaffer's events against a process's lines, may come in either order: each process has its own
// pipe and reader, and gaffer's events wait for stdout only so long.
func expectLinesOf(a *apiGaffer, want ...string) []string {
	a.t.Helper()
	var seen []string
	deadline := time.After(reloadWait)
	for len(want) > 0 {
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("stdout closed waiting for %q; saw %q; stderr %s", want, seen, a.stderr.String())
			}
			seen = append(seen, l)
			if n, x, ok := split(l); ok {
				want = slices.DeleteFunc(want, func(w string) bool {
					if p, ok := strings.CutSuffix(w, "*"); ok {
						return strings.HasPrefix(n+" | "+x, p)
					}
					return w == n+" | "+x
				})
			}
		case <-deadline:
			a.t.Fatalf("no lines %q within %v; saw %q; stderr %s", want, reloadWait, seen, a.stderr.String())
		}
	}
	return seen
}

// countLine is how many lines of lines are "name | text".
func countLine(lines []string, name, text string) int {
	n := 0
	for _, l := range lines {
		if m, x, ok := split(l); ok && m == name && x == text {
			n++
		}
	}
	return n
}

// stopCleanly stops gaffer with SIGTERM, which must end it with 0 (or 143, a process that died of
// the SIGTERM), and returns the rest of its stdout.
func stopCleanly(a *apiGaffer) []string {
	a.t.Helper()
	a.signal(syscall.SIGTERM)
	lines, code := collect(a.t, a.gafferRun, reloadWait)
	if code != 0 && code != 143 {
		a.t.Fatalf("exit %d after SIGTERM, want 0 or 143; stdout:\n%s\nstderr: %s", code, strings.Join(lines, "\n"), a.stderr.String())
	}
	return lines
}

// keptPids fails unless every instance of want still runs with its pid.
func keptPids(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	for n, pid := range want {
		if got[n] != pid {
			t.Errorf("%s: %s has pid %d, had %d (it must keep running untouched)", what, n, got[n], pid)
		}
	}
}

// sleepProc is a process that says "NAME | up" and runs until stopped.
func sleepProc(name, extra string) string {
	return fmt.Sprintf("[process.%s]\ncmd = [\"sh\", \"-c\", \"echo up; exec sleep 1000\"]\n%s\n", name, extra)
}

func TestReloadAddsProcess(t *testing.T) {
	a := reloadUp(t, "", sleepProc("keep", ""))
	before := waitUpOnly(a, "keep")
	rewriteConfig(a, "", sleepProc("keep", "")+`
[process.added]
cmd = ["sh", "-c", "echo added $GAFFER_PROCESS_NAME; exec sleep 1000"]
`)
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "added: add", "keep: keep", "applied")
	expectLinesOf(a, "gaffer | added: adding", "added | added added")
	after := waitUpOnly(a, "keep", "added")
	keptPids(t, "after adding a process", after, before)
	stopCleanly(a)
}

func TestReloadAddsDependentAndDependency(t *testing.T) {
	// app (after db) comes first in the file: it starts once db runs, whatever the file order.
	a := reloadUp(t, "", sleepProc("other", ""))
	before := waitUpOnly(a, "other")
	rewriteConfig(a, "", sleepProc("other", "")+sleepProc("app", `after = ["db"]`)+sleepProc("db", ""))
	hasLines(t, "gaffer reload", mustReload(a), "app: add", "db: add", "other: keep", "applied")
	seen := expectLinesOf(a, "app | up", "db | up", "gaffer | app started*", "gaffer | db started*")
	if i, j := index(seen, "gaffer", "db started"), index(seen, "gaffer", "app started"); i < 0 || j < i {
		t.Errorf("app must start after db:\n%s", strings.Join(seen, "\n"))
	}
	keptPids(t, "after adding app and db", waitUpOnly(a, "other", "app", "db"), before)
	stopCleanly(a)
}

func TestReloadRemovesProcess(t *testing.T) {
	gone := `
[process.gone]
cmd = ["sh", "-c", "trap 'echo gone >> {dir}/stopped; exit 0' TERM; echo up; while :; do sleep 0.05; done"]
`
	a := reloadUp(t, "", sleepProc("keep", "")+gone)
	expectLineOf(a, "gone", "up") // its trap is in place
	before := waitUpOnly(a, "keep", "gone")
	rewriteConfig(a, "", sleepProc("keep", ""))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "gone: remove (no longer configured)", "keep: keep", "applied")
	expectLineOf(a, "gaffer", "gone: removing (no longer configured)")
	expectLineOf(a, "gaffer", "gone removed")
	after := waitUpOnly(a, "keep")
	keptPids(t, "after removing another process", after, map[string]int{"keep": before["keep"]})
	if b, _ := os.ReadFile(filepath.Join(a.dir, "stopped")); string(b) != "gone\n" {
		t.Errorf("the removed process was not stopped by its stop signal: its trap wrote %q", b)
	}
	// Its end is no failure and no reason to stop: gaffer goes on, and ends cleanly.
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 200 {
		t.Errorf("healthz after a removal: %d", code)
	}
	stopCleanly(a)
}

func TestReloadChangedCmdRestarts(t *testing.T) {
	proc := func(v string) string {
		return fmt.Sprintf("[process.web]\ncmd = [\"sh\", \"-c\", \"echo %s; exec sleep 1000\"]\n", v) + sleepProc("other", "")
	}
	a := reloadUp(t, "", proc("v1"))
	expectLineOf(a, "web", "v1")
	before := waitUpOnly(a, "web", "other")
	rewriteConfig(a, "", proc("v2"))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "web: restart (cmd changed)", "other: keep", "applied")
	seen := expectLinesOf(a, "gaffer | web: restarting (cmd changed)", "web | v2", "gaffer | web exited with code 143 (SIGTERM)")
	after := waitUpOnly(a, "web", "other")
	if after["web"] == before["web"] {
		t.Errorf("web kept its pid %d through a change of cmd", after["web"])
	}
	keptPids(t, "after a change of web", map[string]int{"other": after["other"]}, map[string]int{"other": before["other"]})
	// Events come in order: the old web's exit before the new one's start.
	started := fmt.Sprintf("web started (pid %d)", after["web"])
	if index(seen, "gaffer", started) < 0 {
		seen = append(seen, expectLinesOf(a, "gaffer | "+started)...)
	}
	if i, j := index(seen, "gaffer", "web exited"), index(seen, "gaffer", started); j < i {
		t.Errorf("the new web started before the old one exited:\n%s", strings.Join(seen, "\n"))
	}
	if p := a.process("web"); p.Config["cmd"] == nil || !strings.Contains(fmt.Sprint(p.Config["cmd"]), "echo v2") {
		t.Errorf("GET /v1/processes/web config cmd %v, want the new one", p.Config["cmd"])
	}
	stopCleanly(a)
}

func TestReloadChangedEnvRestarts(t *testing.T) {
	proc := func(v string) string {
		return fmt.Sprintf("[process.web]\ncmd = [\"sh\", \"-c\", \"echo FOO=$FOO; exec sleep 1000\"]\nenv = { FOO = %q }\n", v)
	}
	a := reloadUp(t, "", proc("one"))
	expectLineOf(a, "web", "FOO=one")
	before := waitUpOnly(a, "web")
	rewriteConfig(a, "", proc("two"))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "web: restart (env changed)", "applied")
	expectLinesOf(a, "gaffer | web: restarting (env changed)", "web | FOO=two")
	if after := waitUpOnly(a, "web"); after["web"] == before["web"] {
		t.Errorf("web kept its pid %d through a change of env", after["web"])
	}
	stopCleanly(a)
}

func TestReloadRestartPolicyInPlace(t *testing.T) {
	// db exits 0 once {dir}/quit exists: restart = "always" would start it again; "on-failure",
	// applied in place by the reload, lets it end.
	proc := func(restart string) string {
		return fmt.Sprintf(`[process.db]
cmd = ["sh", "-c", "echo up; while [ ! -f {dir}/quit ]; do sleep 0.05; done; exit 0"]
restart = %q
backoff = "100ms"
on_end = "ignore"
`, restart) + sleepProc("other", "")
	}
	a := reloadUp(t, "", proc("always"))
	before := waitUpOnly(a, "db", "other")
	rewriteConfig(a, "", proc("on-failure"))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "db: update (restart changed)", "other: keep", "applied")
	expectLineOf(a, "gaffer", "db: updated in place (restart changed)")
	after := waitUpOnly(a, "db", "other")
	keptPids(t, "after a change of the restart policy", after, before)
	if r := a.process("db").Config["restart"]; r != "on-failure" {
		t.Errorf("db's config restart %v after the reload, want on-failure", r)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "quit"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// exited, never backoff: the new policy decides.
	ps := waitProcsFor(a, "db to end", func(ps map[string]apiProc) bool { return ps["db"].Pid == 0 && ps["db"].State != "running" })
	if p := ps["db"]; p.State != "exited" || p.ExitCode == nil || *p.ExitCode != 0 {
		t.Errorf("db after exiting 0 under restart = on-failure: %+v, want exited with code 0", p)
	}
	stopCleanly(a)
}

func TestReloadScale(t *testing.T) {
	proc := func(n int) string {
		return fmt.Sprintf("[process.web]\ncmd = [\"sh\", \"-c\", \"echo up; exec sleep 1000\"]\nnumprocesses = %d\n", n)
	}
	a := reloadUp(t, "", proc(2))
	before := waitUpOnly(a, "web.1", "web.2")
	rewriteConfig(a, "", proc(3))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "web: scale (numprocesses changed)", "applied")
	expectLineOf(a, "web.3", "up")
	mid := waitUpOnly(a, "web.1", "web.2", "web.3")
	keptPids(t, "after scaling up", mid, before)
	if ps := names(a.processes()); !slices.Equal(ps, []string{"web.1", "web.2", "web.3"}) {
		t.Errorf("instances %q, want web.1, web.2, web.3 in order", ps)
	}

	rewriteConfig(a, "", proc(1))
	out = mustReload(a)
	hasLines(t, "gaffer reload", out, "web: scale (numprocesses changed)", "applied")
	after := waitUpOnly(a, "web.1")
	keptPids(t, "after scaling down", after, map[string]int{"web.1": before["web.1"]})
	if n := a.process("web.1").Config["numprocesses"]; n != 1.0 {
		t.Errorf("config numprocesses %v after scaling down to 1", n)
	}
	stopCleanly(a)
}

func TestReloadInvalidConfigChangesNothing(t *testing.T) {
	a := reloadUp(t, "", sleepProc("a", "")+sleepProc("b", ""))
	before := waitUpOnly(a, "a", "b")
	bad := rewriteConfig(a, "", sleepProc("a", `restart = "sometimes"`)+sleepProc("c", ""))
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "sometimes") {
			line = i + 1
		}
	}
	want := fmt.Sprintf("gaffer.toml:%d:", line)

	code, out, errs := ctl(t, a.sock, nil, "reload")
	if code != 2 || !strings.Contains(errs, want) || !strings.Contains(errs, "nothing changed") || strings.Contains(out, "applied") {
		t.Errorf("gaffer reload of an invalid file: exit %d, stdout %q, stderr %q; want exit 2 and %s ... on stderr", code, out, errs, want)
	}
	status, r := postReload(a, false)
	if status != 422 || r.Applied || len(r.Errors) == 0 || !strings.Contains(strings.Join(r.Errors, "\n"), want) {
		t.Errorf("POST /v1/reload of an invalid file: %d %+v; want 422 with an error at %s", status, r, want)
	}
	// Nothing changed: the same processes with the same pids, c never added.
	keptPids(t, "after an invalid reload", waitUpOnly(a, "a", "b"), before)
	if l := linesSoFar(a); index(l, "gaffer", "c: adding") >= 0 || index(l, "gaffer", "b: removing") >= 0 {
		t.Errorf("a refused reload changed something:\n%s", strings.Join(l, "\n"))
	}
	if r := a.process("a").Config["restart"]; r == "sometimes" {
		t.Errorf("a took the refused restart policy")
	}
	// A valid file again: the reload goes through (b removed, a kept).
	rewriteConfig(a, "", sleepProc("a", ""))
	hasLines(t, "gaffer reload", mustReload(a), "a: keep", "b: remove (no longer configured)", "applied")
	keptPids(t, "after the valid reload", waitUpOnly(a, "a"), map[string]int{"a": before["a"]})
	stopCleanly(a)
}

// linesSoFar returns the stdout lines gaffer has written so far, without waiting for more.
func linesSoFar(a *apiGaffer) []string {
	var out []string
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				return out
			}
			out = append(out, l)
		default:
			return out
		}
	}
}

func TestReloadRemovesDependentsFirst(t *testing.T) {
	// Each process notes its stop in a file from its TERM trap: the order of stdout lines would
	// not do (each process has its own pipe and reader).
	proc := func(name, after string) string {
		return fmt.Sprintf(`
[process.%s]
cmd = ["sh", "-c", "trap 'echo %s >> {dir}/stopped; exit 0' TERM; echo up; while :; do sleep 0.05; done"]
after = [%s]
`, name, name, after)
	}
	// db is first in the file: the order comes from after, not from the file.
	a := reloadUp(t, "", sleepProc("other", "")+proc("db", "")+proc("app", `"db"`))
	expectLinesOf(a, "app | up", "db | up") // their traps are in place
	before := waitUpOnly(a, "other", "app", "db")
	rewriteConfig(a, "", sleepProc("other", ""))
	hasLines(t, "gaffer reload", mustReload(a), "app: remove (no longer configured)", "db: remove (no longer configured)", "other: keep", "applied")
	after := waitUpOnly(a, "other")
	keptPids(t, "after removing app and db", after, map[string]int{"other": before["other"]})
	stopped, _ := os.ReadFile(filepath.Join(a.dir, "stopped"))
	if string(stopped) != "app\ndb\n" {
		t.Errorf("stop order %q, want app (after db) before db", stopped)
	}
	stopCleanly(a)
}

func TestReloadDuringBackoff(t *testing.T) {
	// v1 fails at once and waits 5 s to restart; the reload lands in that wait, and the restart
	// runs v2.
	proc := func(cmd string) string {
		return fmt.Sprintf(`[process.crash]
cmd = ["sh", "-c", %q]
restart = "always"
backoff = "5s"
`, cmd) + sleepProc("other", "")
	}
	a := reloadUp(t, "", proc("echo v1; exit 1"))
	waitProcsFor(a, "crash in backoff", func(ps map[string]apiProc) bool { return ps["crash"].State == "backoff" })
	begin := time.Now()
	rewriteConfig(a, "", proc("echo v2; exec sleep 1000"))
	hasLines(t, "gaffer reload", mustReload(a), "crash: restart (cmd changed)", "other: keep", "applied")
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("inconclusive: the reload took %v, the backoff is 5s", d)
	}
	seen := expectLinesOf(a, "crash | v2", "gaffer | crash: restarting (cmd changed)")
	if n := countLine(seen, "crash", "v1"); n != 1 {
		t.Errorf("v1 ran %d times, want once (the restart after the reload runs v2):\n%s", n, strings.Join(seen, "\n"))
	}
	waitUpOnly(a, "crash", "other")
	stopCleanly(a)
}

func TestReloadDuringStartup(t *testing.T) {
	// svc v1 never becomes ready; app waits for it. The reload restarts svc with v2, which is
	// ready at once, and app starts.
	proc := func(cmd string) string {
		return fmt.Sprintf(`[process.svc]
cmd = ["sh", "-c", %q]
ready = "file://{dir}/ready"
[process.app]
cmd = ["sh", "-c", "echo app up; exec sleep 1000"]
after = ["svc"]
`, cmd)
	}
	a := reloadUp(t, "", proc("echo v1; exec sleep 1000"))
	expectLineOf(a, "svc", "v1")
	ps := waitProcsFor(a, "svc starting, app pending", func(ps map[string]apiProc) bool {
		return ps["svc"].State == "starting" && ps["svc"].Pid != 0 && ps["app"].State == "pending"
	})
	old := ps["svc"].Pid
	rewriteConfig(a, "", proc("echo v2; touch {dir}/ready; exec sleep 1000"))
	hasLines(t, "gaffer reload", mustReload(a), "svc: restart (cmd changed)", "app: keep", "applied")
	seen := expectLinesOf(a, "svc | v2", "app | app up", "gaffer | svc: restarting (cmd changed)")
	// Events are in order among themselves, whatever the order of the processes' lines.
	restart := mustIndex(t, seen, "gaffer", "svc: restarting (cmd changed)")
	if early := slices.IndexFunc(seen[:restart], func(l string) bool {
		n, x, _ := split(l)
		return n == "gaffer" && (x == "svc ready" || strings.HasPrefix(x, "app started"))
	}); early >= 0 {
		t.Errorf("svc v1 became ready or app started before the reload:\n%s", strings.Join(seen, "\n"))
	}
	after := waitUpOnly(a, "svc", "app")
	if after["svc"] == old {
		t.Errorf("svc kept its pid %d", old)
	}
	if p := a.process("svc"); p.State != "ready" {
		t.Errorf("svc after the reload: %+v, want ready", p)
	}
	stopCleanly(a)
}

// hupTrapper is a process that says which signals it got, each on its own line.
const hupTrapper = `[process.keeper]
cmd = ["sh", "-c", "trap 'echo got HUP' HUP; trap 'echo got USR1' USR1; echo up; while :; do sleep 0.05; done"]
`

func TestReloadSignal(t *testing.T) {
	proc := func(v string) string {
		return fmt.Sprintf("[process.web]\ncmd = [\"sh\", \"-c\", \"trap 'echo web got HUP' HUP; echo %s; while :; do sleep 0.05; done\"]\n", v) + hupTrapper
	}
	a := reloadUp(t, `reload_signal = "HUP"`, proc("v1"))
	expectLinesOf(a, "web | v1", "keeper | up") // their traps are in place
	before := waitUpOnly(a, "web", "keeper")
	rewriteConfig(a, `reload_signal = "HUP"`, proc("v2"))
	a.signal(syscall.SIGHUP)
	seen := expectLinesOf(a, "gaffer | received SIGHUP: reloading the configuration", "gaffer | web: restarting (cmd changed)", "web | v2")
	after := waitUpOnly(a, "web", "keeper")
	if after["web"] == before["web"] {
		t.Errorf("web kept its pid through the reload")
	}
	keptPids(t, "keeper after the reload", map[string]int{"keeper": after["keeper"]}, map[string]int{"keeper": before["keeper"]})
	// The HUP was gaffer's: keeper never got it. A USR1 sent after it (it was handled: the reload
	// happened) shows what keeper got: a HUP would have come first.
	if code, body := curl(t, a.sock, "POST", "/v1/processes/keeper/signal", []byte(`{"signal":"USR1"}`)); code != 200 {
		t.Fatalf("signal keeper USR1: %d %s", code, body)
	}
	seen = append(seen, expectLineOf(a, "keeper", "got USR1")...)
	if index(seen, "keeper", "got HUP") >= 0 || index(seen, "web", "web got HUP") >= 0 {
		t.Errorf("reload_signal = HUP was forwarded to the processes:\n%s", strings.Join(seen, "\n"))
	}
	stopCleanly(a)
}

func TestReloadSignalUnsetForwardsHUP(t *testing.T) {
	proc := func(v string) string {
		return fmt.Sprintf("[process.web]\ncmd = [\"sh\", \"-c\", \"trap 'echo web got HUP' HUP; echo %s; while :; do sleep 0.05; done\"]\n", v) + hupTrapper
	}
	a := reloadUp(t, "", proc("v1"))
	expectLinesOf(a, "web | v1", "keeper | up") // their traps are in place
	before := waitUpOnly(a, "web", "keeper")
	rewriteConfig(a, "", proc("v2"))
	a.signal(syscall.SIGHUP)
	seen := expectLinesOf(a, "keeper | got HUP", "web | web got HUP")
	if index(seen, "gaffer", "reloading") >= 0 || index(seen, "gaffer", "restarting") >= 0 {
		t.Errorf("a HUP without reload_signal reloaded:\n%s", strings.Join(seen, "\n"))
	}
	keptPids(t, "after a forwarded HUP", waitUpOnly(a, "web", "keeper"), before)
	// The file was not read: a reload now still finds web's cmd changed.
	hasLines(t, "gaffer reload", mustReload(a), "web: restart (cmd changed)", "keeper: keep", "applied")
	expectLineOf(a, "web", "v2")
	stopCleanly(a)
}

func TestReloadDryRun(t *testing.T) {
	proc := func(v string) string {
		return fmt.Sprintf("[process.web]\ncmd = [\"sh\", \"-c\", \"echo %s; exec sleep 1000\"]\n", v)
	}
	a := reloadUp(t, "", proc("v1")+sleepProc("gone", ""))
	before := waitUpOnly(a, "web", "gone")
	rewriteConfig(a, "", proc("v2")+sleepProc("added", ""))
	plan := []string{"web: restart (cmd changed)", "gone: remove (no longer configured)", "added: add"}
	out := mustReload(a, "--dry-run")
	hasLines(t, "gaffer reload --dry-run", out, append(plan, "dry run: nothing changed")...)
	if strings.Contains(out, "applied") {
		t.Errorf("gaffer reload --dry-run says applied:\n%s", out)
	}
	status, r := postReload(a, true)
	if status != 200 || r.Applied || !r.DryRun || len(r.Errors) > 0 {
		t.Errorf("POST /v1/reload?dry_run=1: %d %+v; want 200, dry_run, not applied", status, r)
	}
	steps := map[string]string{}
	for _, s := range r.Plan {
		steps[s.Name] = s.Action
	}
	if want := map[string]string{"web": "restart", "gone": "remove", "added": "add"}; fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("dry run plan %v, want %v", steps, want)
	}
	// Nothing changed: the same pids, no event; the real reload does what the dry run said.
	keptPids(t, "after dry runs", waitUpOnly(a, "web", "gone"), before)
	if l := linesSoFar(a); index(l, "gaffer", "web: restarting") >= 0 || index(l, "gaffer", "added: adding") >= 0 || index(l, "gaffer", "gone: removing") >= 0 {
		t.Errorf("a dry run changed something:\n%s", strings.Join(l, "\n"))
	}
	hasLines(t, "gaffer reload", mustReload(a), append(plan, "applied")...)
	after := waitUpOnly(a, "web", "added")
	if after["web"] == before["web"] {
		t.Errorf("web kept its pid through the real reload")
	}
	stopCleanly(a)
}

func TestReloadSettingNeedsRestart(t *testing.T) {
	a := reloadUp(t, "", sleepProc("web", ""))
	before := waitUpOnly(a, "web")
	// The socket moves to g2.sock: only a new gaffer can do that.
	rewriteRaw(a, strings.Replace(reloadToml("", sleepProc("web", "")), "{dir}/g.sock", "{dir}/g2.sock", 1))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "web: keep", "needs restart: socket (changes only when gaffer starts again)", "applied")
	expectLineOf(a, "gaffer", "reload: settings.socket changed: it takes effect when gaffer starts again")
	// Still on the old socket, none on the new path.
	if code, _, err := httpDo(a.sock, "GET", "/v1/info", nil); err != nil || code != 200 {
		t.Errorf("the API on the old socket after the reload: %d %v", code, err)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "g2.sock")); !os.IsNotExist(err) {
		t.Errorf("a socket at the new path before a restart: %v", err)
	}
	keptPids(t, "after a settings change", waitUpOnly(a, "web"), before)
	stopCleanly(a)
}

func TestReloadLayers(t *testing.T) {
	// gaffer.toml and the directory conf.d as layers: a reload reads both again, new files of
	// the directory included; a layer's disabled = true removes a process.
	a := reloadUpFiles(t, map[string]string{
		"gaffer.toml":          reloadToml("", sleepProc("web", "")+sleepProc("other", "")),
		"conf.d/10-extra.toml": sleepProc("extra", ""),
	}, "-c", "gaffer.toml", "-c", "conf.d")
	before := waitUpOnly(a, "web", "other", "extra")
	writeConfigFile(t, a.dir, "conf.d/20-off.toml", "[process.web]\ndisabled = true\n")
	writeConfigFile(t, a.dir, "conf.d/30-late.toml", sleepProc("late", ""))
	out := mustReload(a)
	hasLines(t, "gaffer reload", out, "web: remove (disabled)", "late: add", "other: keep", "extra: keep", "applied")
	expectLinesOf(a, "gaffer | web: removing (disabled)", "gaffer | late: adding", "late | up")
	after := waitUpOnly(a, "other", "extra", "late")
	keptPids(t, "after the layers changed", after, map[string]int{"other": before["other"], "extra": before["extra"]})

	// The layer that disabled it gone: web is back.
	if err := os.Remove(filepath.Join(a.dir, "conf.d/20-off.toml")); err != nil {
		t.Fatal(err)
	}
	hasLines(t, "gaffer reload", mustReload(a), "web: add", "applied")
	waitUpOnly(a, "web", "other", "extra", "late")
	stopCleanly(a)
}
