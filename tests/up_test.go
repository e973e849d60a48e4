package tests

import (
	"encoding/json"
	"fmt"
	"gaffer/internal/testutil"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startUp writes files (name -> content; "{probe}" replaced by the probe's path) into a fresh
// directory and starts `gaffer up` there, as PID 1 when pid1 is set.
func startUp(t *testing.T, pid1 bool, files map[string]string, args ...string) (*gafferRun, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		content = strings.ReplaceAll(content, "{probe}", probeBin)
		content = strings.ReplaceAll(content, "{dir}", dir)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return startGaffer(t, startOpts{pid1: pid1, dir: dir}, append([]string{"up"}, args...)...), dir
}

var prefixLine = regexp.MustCompile(`^(\S+)\s* \| (.*)$`)

// split parses a prefix-format line into name and text.
func split(line string) (name, text string, ok bool) {
	m := prefixLine.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// collect reads every stdout line until gaffer exits and returns them with the exit code.
func collect(t *testing.T, g *gafferRun, d time.Duration) ([]string, int) {
	t.Helper()
	var lines []string
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-g.lines:
			if !ok {
				return lines, g.wait(d)
			}
			lines = append(lines, l)
		case <-deadline:
			t.Fatalf("gaffer up still running after %v; stdout %q; stderr %s", d, lines, g.stderr.String())
		}
	}
}

// index is the position of the first line with name and text containing want, or -1.
func index(lines []string, name, want string) int {
	for i, l := range lines {
		if n, text, ok := split(l); ok && n == name && strings.Contains(text, want) {
			return i
		}
	}
	return -1
}

func mustIndex(t *testing.T, lines []string, name, want string) int {
	t.Helper()
	i := index(lines, name, want)
	if i < 0 {
		t.Fatalf("no line of %s containing %q in:\n%s", name, want, strings.Join(lines, "\n"))
	}
	return i
}

func TestUpPrefixedOutputAndExitCode(t *testing.T) {
	g, _ := startUp(t, true, map[string]string{"gaffer.toml": `
[process.web]
cmd = "sh -c 'echo hello; echo oops >&2; exit 3'"
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 3 {
		t.Fatalf("exit %d, want 3 (web ended, on_end shutdown); stdout %q", code, lines)
	}
	if !slices.Contains(lines, "web    | hello") {
		t.Fatalf("want %q (web padded to gaffer's width) in stdout:\n%s", "web    | hello", strings.Join(lines, "\n"))
	}
	if !strings.Contains(g.stderr.String(), "web    | oops\n") {
		t.Fatalf("stderr line not relayed to stderr: %q", g.stderr.String())
	}
	mustIndex(t, lines, "gaffer", "web started (pid ")
	mustIndex(t, lines, "gaffer", "web exited with code 3")
}

func TestUpRestartPoliciesAndSuccessCodes(t *testing.T) {
	// on-failure: exits 1 twice, then 3, which is a success code: no more restarts.
	g, dir := startUp(t, true, map[string]string{"gaffer.toml": `
[process.flaky]
cmd = ["sh", "-c", "echo run >> {dir}/runs; n=$(wc -l < {dir}/runs); [ $n -ge 3 ] && exit 3; exit 1"]
restart = "on-failure"
success_codes = [0, 3]
backoff = "10ms"
`})
	lines, code := collect(t, g, 20*time.Second)
	runs, _ := os.ReadFile(filepath.Join(dir, "runs"))
	if code != 3 || strings.Count(string(runs), "run") != 3 {
		t.Fatalf("exit %d after %d runs, want 3 after 3; stdout:\n%s", code, strings.Count(string(runs), "run"), strings.Join(lines, "\n"))
	}
	mustIndex(t, lines, "gaffer", "flaky restarting in 10ms")
	mustIndex(t, lines, "gaffer", "flaky restarting in 20ms")

	// never: one run only; always: restarts even after success.
	g, dir = startUp(t, true, map[string]string{"gaffer.toml": `
[process.once]
cmd = "sh -c 'echo x >> {dir}/once; exit 4'"
restart = "never"
on_end = "ignore"
[process.again]
cmd = "sh -c 'echo x >> {dir}/again; n=$(wc -l < {dir}/again); [ $n -ge 3 ] && exec sleep 100; exit 0'"
restart = "always"
backoff = "10ms"
`})
	testutil.WaitFor(t, 10*time.Second, "again restarted twice", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "again"))
		return strings.Count(string(b), "x") >= 3
	})
	g.signal(unix.SIGTERM)
	lines, code = collect(t, g, 20*time.Second)
	once, _ := os.ReadFile(filepath.Join(dir, "once"))
	if code != 0 || strings.Count(string(once), "x") != 1 {
		t.Fatalf("exit %d, once ran %d times; want 0 (clean stop) and 1; stdout:\n%s", code, strings.Count(string(once), "x"), strings.Join(lines, "\n"))
	}
}

func TestUpBackoffDoublesAndGivesUp(t *testing.T) {
	g, dir := startUp(t, true, map[string]string{"gaffer.toml": `
[process.crash]
cmd = "sh -c 'date +%s%N >> {dir}/starts; exit 1'"
restart = "always"
backoff = "100ms"
backoff_max = "400ms"
max_restarts = 4
restart_window = "60s"
`})
	lines, code := collect(t, g, 30*time.Second)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (crash gave up); stdout:\n%s", code, strings.Join(lines, "\n"))
	}
	mustIndex(t, lines, "gaffer", "crash gave up: 4 restarts within 1m0s")
	b, _ := os.ReadFile(filepath.Join(dir, "starts"))
	var starts []int64
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.ParseInt(f, 10, 64)
		starts = append(starts, n)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	if len(starts) != len(want)+1 {
		t.Fatalf("%d starts, want %d", len(starts), len(want)+1)
	}
	for i, w := range want {
		gap := time.Duration(starts[i+1] - starts[i])
		// A timer never fires early; the upper bound only catches a delay that did not double.
		if gap < w || gap > w+time.Second {
			t.Errorf("restart %d came %v after the previous start, want %v (+ at most 1s)", i+1, gap, w)
		}
	}
}

func TestUpOnEndIgnoreExitsWithLastFailure(t *testing.T) {
	g, _ := startUp(t, true, map[string]string{"gaffer.toml": `
[process.bad]
cmd = "sh -c 'exit 5'"
on_end = "ignore"
[process.good]
cmd = "sh -c 'sleep 0.3; echo good done'"
on_end = "ignore"
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 5 {
		t.Fatalf("exit %d, want 5 (the last failure); stdout:\n%s", code, strings.Join(lines, "\n"))
	}
	if mustIndex(t, lines, "good", "good done") < mustIndex(t, lines, "gaffer", "bad exited with code 5") {
		t.Fatalf("good was stopped when bad ended although on_end = ignore")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestUpAfterWaitsForEachReadyKind(t *testing.T) {
	tcp, httpPort := freePort(t), freePort(t)
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": fmt.Sprintf(`
[process.db]
cmd = ["{probe}", "listen", "127.0.0.1:%d"]
ready = "tcp://127.0.0.1:%d"
[process.api]
cmd = ["{probe}", "http", "127.0.0.1:%d"]
ready = "http://127.0.0.1:%d/health"
after = ["db"]
[process.filer]
cmd = "sh -c 'sleep 0.2; touch {dir}/flag; exec sleep 100'"
ready = "file://{dir}/flag"
after = ["api"]
[process.execer]
cmd = "sh -c 'sleep 0.2; touch {dir}/flag2; exec sleep 100'"
ready = "exec:test -f {dir}/flag2"
after = ["filer"]
[process.web]
cmd = "sh -c 'echo web up; exec sleep 100'"
after = ["execer"]
`, tcp, tcp, httpPort, httpPort)})
	var lines []string
	for !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, "| web up") }) {
		lines = append(lines, g.nextLine(20*time.Second))
	}
	order := []int{
		mustIndex(t, lines, "gaffer", "db ready"),
		mustIndex(t, lines, "gaffer", "api started"),
		mustIndex(t, lines, "gaffer", "api ready"),
		mustIndex(t, lines, "gaffer", "filer started"),
		mustIndex(t, lines, "gaffer", "filer ready"),
		mustIndex(t, lines, "gaffer", "execer started"),
		mustIndex(t, lines, "gaffer", "execer ready"),
		mustIndex(t, lines, "gaffer", "web started"),
	}
	if !slices.IsSorted(order) {
		t.Fatalf("start order does not follow readiness:\n%s", strings.Join(lines, "\n"))
	}
	g.signal(unix.SIGTERM)
	rest, code := collect(t, g, 30*time.Second)
	if code != 143 && code != 0 {
		t.Fatalf("exit %d after SIGTERM; stdout:\n%s", code, strings.Join(append(lines, rest...), "\n"))
	}
}

func TestUpOneshotGatesDependents(t *testing.T) {
	g, _ := startUp(t, true, map[string]string{"gaffer.toml": `
[process.migrate]
cmd = "sh -c 'echo migrating; exit 0'"
oneshot = true
[process.web]
cmd = "sh -c 'echo serving; exit 0'"
after = ["migrate"]
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 || mustIndex(t, lines, "gaffer", "migrate exited with code 0") > mustIndex(t, lines, "gaffer", "web started") {
		t.Fatalf("exit %d; web must start after migrate succeeded:\n%s", code, strings.Join(lines, "\n"))
	}

	g, _ = startUp(t, true, map[string]string{"gaffer.toml": `
[process.migrate]
cmd = "sh -c 'exit 7'"
oneshot = true
[process.web]
cmd = "sh -c 'echo serving'"
after = ["migrate"]
`})
	lines, code = collect(t, g, 20*time.Second)
	if code != 7 || index(lines, "gaffer", "web started") >= 0 {
		t.Fatalf("failed oneshot: exit %d (want 7), web must never start:\n%s", code, strings.Join(lines, "\n"))
	}
}

func TestUpOrderedShutdown(t *testing.T) {
	// Each process notes its stop in a file before it exits. Its relayed output would not do:
	// every process has its own pipe and reader, so c's last line may reach gaffer's stdout after
	// b's although c exited before b got its SIGTERM.
	proc := func(name, after string) string {
		return fmt.Sprintf(`
[process.%s]
cmd = ["sh", "-c", "trap 'echo %s >> {dir}/stopped; exit 0' TERM; echo up; while :; do sleep 0.05; done"]
after = [%s]
`, name, name, after)
	}
	g, dir := startUp(t, true, map[string]string{"gaffer.toml": proc("a", "") + proc("b", `"a"`) + proc("c", `"b"`)})
	// "after" waits for the start only: each shell's trap is in place once it said "up".
	var lines []string
	for index(lines, "a", "up") < 0 || index(lines, "b", "up") < 0 || index(lines, "c", "up") < 0 {
		lines = append(lines, g.nextLineOr(20*time.Second, "a, b and c up"))
	}
	g.signal(unix.SIGTERM)
	rest, code := collect(t, g, 30*time.Second)
	lines = append(lines, rest...)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (every process stopped cleanly):\n%s", code, strings.Join(lines, "\n"))
	}
	stopped, _ := os.ReadFile(filepath.Join(dir, "stopped"))
	if string(stopped) != "c\nb\na\n" {
		t.Fatalf("stop order %q, must be c, b, a; stdout:\n%s", stopped, strings.Join(lines, "\n"))
	}
	for _, name := range []string{"c", "b", "a"} {
		mustIndex(t, lines, "gaffer", name+" exited with code 0")
	}
}

func TestUpStopTimeoutEscalates(t *testing.T) {
	g, _ := startUp(t, true, map[string]string{"gaffer.toml": `
[process.stubborn]
cmd = ["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"]
stop_timeout = "300ms"
`})
	g.expectLine("stubborn | up", 20*time.Second)
	g.signal(unix.SIGTERM)
	lines, code := collect(t, g, 20*time.Second)
	mustIndex(t, lines, "gaffer", "stubborn still running 300ms after SIGTERM: sending SIGKILL")
	if code != 137 {
		t.Fatalf("exit %d, want 137 (stubborn did not stop cleanly)", code)
	}
}

func TestUpInstancesEnvAndIdentity(t *testing.T) {
	needRoot(t)
	g, _ := startUp(t, true, map[string]string{"gaffer.toml": `
[process.web]
cmd = "sh -c"
args = ["echo \"$GAFFER_PROCESS_NAME $GAFFER_PROCESS_INSTANCE $(id -u) $(pwd) $FOO ${BAR}\""]
numprocesses = 3
user = "nobody"
cwd = "/tmp"
env = { FOO = "foo", BAR = "bar" }
on_end = "ignore"
[process.clean]
cmd = "/usr/bin/env"
clear_env = true
env = { ONLY = "1" }
on_end = "ignore"
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, strings.Join(lines, "\n"))
	}
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("web.%d  | web %d 65534 /tmp foo bar", i, i)
		if !slices.Contains(lines, want) {
			t.Errorf("want %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	var env []string
	for _, l := range lines {
		if n, text, ok := split(l); ok && n == "clean" {
			env = append(env, text)
		}
	}
	slices.Sort(env)
	if want := []string{"GAFFER_PROCESS_INSTANCE=1", "GAFFER_PROCESS_NAME=clean", "ONLY=1"}; !slices.Equal(env, want) {
		t.Errorf("clear_env: env %q, want %q", env, want)
	}
}

func TestUpJSONAndRawFormats(t *testing.T) {
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": `
[settings]
output = "json"
[process.web]
cmd = ["printf", 'one\n\377"two']
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got []string
	for _, l := range lines {
		var obj struct {
			Time, Name, Stream, Line string
			Pid                      int
		}
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339, obj.Time); err != nil || obj.Pid == 0 || obj.Stream == "" {
			t.Fatalf("incomplete object %q", l)
		}
		if obj.Name == "web" {
			got = append(got, obj.Stream+":"+obj.Line)
		}
	}
	if want := []string{"out:one", "out:\ufffd\"two"}; !slices.Equal(got, want) {
		t.Fatalf("json lines %q, want %q", got, want)
	}

	g, _ = startUp(t, false, map[string]string{"gaffer.toml": `
[settings]
output = "raw"
[process.web]
cmd = ["echo", "just this"]
`})
	lines, _ = collect(t, g, 20*time.Second)
	if !slices.Contains(lines, "just this") {
		t.Fatalf("raw: %q", lines)
	}
}

func TestUpLinesAtomicUnderLoad(t *testing.T) {
	const procs, perProc = 20, 100000
	var toml strings.Builder
	for i := 0; i < procs; i++ {
		fmt.Fprintf(&toml, "[process.p%02d]\ncmd = [\"{probe}\", \"lines\", \"%d\", \"p%02d\"]\non_end = \"ignore\"\n", i, perProc, i)
	}
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": toml.String()})
	next := map[string]int{}
	bad := 0
	for l := range g.lines {
		name, text, ok := split(l)
		if !ok || name == "gaffer" {
			continue
		}
		id, seq, _ := strings.Cut(text, " ")
		n, err := strconv.Atoi(seq)
		if id != name || err != nil || n != next[name] {
			if bad++; bad < 5 {
				t.Errorf("mixed or lost line %q (expected seq %d of %s)", l, next[name], name)
			}
			continue
		}
		next[name]++
	}
	if code := g.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for i := 0; i < procs; i++ {
		if name := fmt.Sprintf("p%02d", i); next[name] != perProc {
			t.Errorf("%s: %d lines in order, want %d", name, next[name], perProc)
		}
	}
}

func TestUpLongAndPartialLines(t *testing.T) {
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": `
[settings]
output = "raw"
[process.big]
cmd = ["sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x; echo; printf 'no newline'"]
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	total, chunks := 0, 0
	for _, l := range lines {
		if strings.Trim(l, "x") == "" && l != "" {
			total += len(l)
			chunks++
			if len(l) > 64<<10 {
				t.Fatalf("chunk of %d bytes, want at most 64 KiB", len(l))
			}
		}
	}
	if total != 1<<20 || chunks != 16 {
		t.Fatalf("1 MiB line came as %d bytes in %d chunks, want 1048576 in 16", total, chunks)
	}
	if !slices.Contains(lines, "no newline") {
		t.Fatalf("partial last line lost: %q", lines[len(lines)-3:])
	}
}

func TestUpTTYStdinAndCustomStream(t *testing.T) {
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": `
[process.term]
cmd = ["sh", "-c", "test -t 1 && echo is-a-tty"]
tty = true
on_end = "ignore"
[process.piped]
cmd = ["sh", "-c", "test -p /dev/stdin && echo stdin-is-a-pipe"]
redirect_input = true
on_end = "ignore"
[process.streamer]
cmd = ["sh", "-c", "echo \"fd $GAFFER_STREAM_EVENTS\"; echo hello events >&3"]
custom_streams = ["events"]
on_end = "ignore"
`})
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, strings.Join(lines, "\n"))
	}
	mustIndex(t, lines, "term", "is-a-tty")
	mustIndex(t, lines, "piped", "stdin-is-a-pipe")
	mustIndex(t, lines, "streamer", "fd 3")
	mustIndex(t, lines, "streamer:events", "hello events")
}

func TestUpProcfileAndDotEnv(t *testing.T) {
	g, _ := startUp(t, false, map[string]string{
		"Procfile": "# a comment\nweb: echo \"web $GREETING\"; sleep 0.3\nworker: echo worker $GREETING | tr a-z A-Z; sleep 0.3\n",
		".env":     "GREETING=hi there\n",
	})
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, strings.Join(lines, "\n"))
	}
	mustIndex(t, lines, "web", "web hi there")
	mustIndex(t, lines, "worker", "WORKER HI THERE")
}

func TestUpRefusesInvalidConfig(t *testing.T) {
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": `
[process.web]
cmd = "sh -c 'touch started'"
restart = "sometimes"
after = ["nope"]
`})
	lines, code := collect(t, g, 20*time.Second)
	stderr := g.stderr.String()
	if code != 2 || len(lines) != 0 || !strings.Contains(stderr, "gaffer.toml:4:") || !strings.Contains(stderr, "gaffer.toml:5:") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and errors at lines 4 and 5", code, lines, stderr)
	}
}
