package tests

import (
	"errors"
	"fmt"
	"gaffer/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gaffer/cgroup"

	"golang.org/x/sys/unix"
)

// The OOM tests run gaffer in cgroups of their own below the test's (cgroup v1, as on this
// machine: a memory limit, and cpu and pids groups for per-process limits), with a child that
// allocates past the limit. cgroup v2 is covered by the fixture tests of package cgroup and, on
// a v2 host, by TestDockerOOM (Docker gives the container a v2 cgroup with memory.max).

// testCgroup is a v1 cgroup of the test's own in the memory, cpu and pids hierarchies.
type testCgroup struct {
	dirs map[string]string // controller -> directory
}

// newTestCgroup makes the test's cgroups, with a memory limit when limit > 0 (and no swap), and
// removes them at the end of the test, killing whatever still runs in them. It skips where
// cgroup v1 is not writable (a v2 host: TestDockerOOM covers it there).
func newTestCgroup(t *testing.T, limit uint64) *testCgroup {
	t.Helper()
	needRoot(t)
	self, err := cgroup.Self()
	if err != nil || self.Version != 1 {
		t.Skipf("needs cgroup v1 (this machine: %v %v); on cgroup v2 TestDockerOOM runs the same", self, err)
	}
	c := &testCgroup{dirs: map[string]string{}}
	name := fmt.Sprintf("gaffer-oom-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, ctrl := range []string{cgroup.Memory, cgroup.CPU, cgroup.Pids} {
		parent := self.V1[ctrl]
		if parent == "" || unix.Access(parent, unix.W_OK) != nil {
			t.Skipf("cgroup v1 %s is not writable here", ctrl)
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeCgroupTree(t, dir) })
		c.dirs[ctrl] = dir
	}
	if limit > 0 {
		mem := c.dirs[cgroup.Memory]
		writeCgroup(t, filepath.Join(mem, "memory.limit_in_bytes"), strconv.FormatUint(limit, 10))
		if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
			writeCgroup(t, filepath.Join(mem, "memory.memsw.limit_in_bytes"), strconv.FormatUint(limit, 10))
		}
	}
	return c
}

func writeCgroup(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatal(err)
	}
}

// wrap is argv run from a shell that first moves itself into the test's cgroups, so that gaffer
// and everything it starts runs there.
func (c *testCgroup) wrap(argv ...string) []string {
	script := ""
	for _, ctrl := range []string{cgroup.Memory, cgroup.CPU, cgroup.Pids} {
		script += fmt.Sprintf("echo $$ > %s/cgroup.procs && ", c.dirs[ctrl])
	}
	return append([]string{"/bin/sh", "-c", script + `exec "$@"`, "sh"}, argv...)
}

// removeCgroupTree removes a cgroup and those below it, children first, killing what runs there.
func removeCgroupTree(t *testing.T, dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("cannot remove cgroup %s: %v", d, err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// buildAlloc builds tests/alloc, the memory hog, into the test's directory.
func buildAlloc(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "alloc")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./tests/alloc")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tests/alloc: %v\n%s", err, b)
	}
	return out
}

// upIn writes gaffer.toml (with {alloc} and {dir} filled in and a socket at {dir}/g.sock) and
// starts `gaffer up` through c's wrapper, with extra flags.
func upIn(t *testing.T, c *testCgroup, alloc, toml string, flags ...string) *oomGaffer {
	t.Helper()
	dir := t.TempDir()
	toml = "[settings]\nsocket = \"{dir}/g.sock\"\n\n" + toml
	toml = strings.ReplaceAll(strings.ReplaceAll(toml, "{alloc}", alloc), "{dir}", dir)
	if err := os.WriteFile(filepath.Join(dir, "gaffer.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{gafferBin, "up", "-c", filepath.Join(dir, "gaffer.toml")}, flags...)
	g := startGafferVia(t, c.wrap(args...))
	a := &oomGaffer{apiGaffer: &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// oomGaffer is an apiGaffer that keeps the lines expectEvent passed over.
type oomGaffer struct {
	*apiGaffer
	skipped []string
}

// expectEvent waits for gaffer's event line matching re and returns its submatches; the lines
// before it are kept in a.skipped.
func (a *oomGaffer) expectEvent(re *regexp.Regexp, d time.Duration) []string {
	a.t.Helper()
	var seen []string
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("stdout closed waiting for %v; saw %q; stderr %s", re, seen, a.stderr.String())
			}
			if n, x, ok := split(l); ok && n == "gaffer" {
				if m := re.FindStringSubmatch(x); m != nil {
					a.skipped = append(a.skipped, seen...)
					return m
				}
			}
			seen = append(seen, l)
		case <-deadline:
			a.t.Fatalf("no event line %v within %v; saw %q; stderr %s", re, d, seen, a.stderr.String())
		}
	}
}

// oomProc is what the OOM tests read of a process in the API.
type oomProc struct {
	Pid        int    `json:"pid"`
	State      string `json:"state"`
	ExitCode   *int   `json:"exit_code"`
	ExitReason string `json:"exit_reason"`
	OOMKills   int    `json:"oom_kills"`
}

func (a *oomGaffer) oomProc(name string) oomProc {
	a.t.Helper()
	var p oomProc
	a.get("/v1/processes/"+name, &p)
	return p
}

// metrics returns GET /metrics, checked by promtool.
func (a *oomGaffer) metrics() string {
	a.t.Helper()
	code, body := curl(a.t, a.sock, "GET", "/metrics", nil)
	if code != 200 {
		a.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	cmd := exec.Command(needPromtool(a.t), "check", "metrics")
	cmd.Stdin = strings.NewReader(body + "\n")
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		a.t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, body)
	}
	return body
}

// killedLine is the line of a process the OOM killer took. The working set is read after the
// victim's memory was freed, so it may be any size.
var killedLine = regexp.MustCompile(`^(\S+) was killed by the OOM killer \(memory limit (\d+) MiB, working set \d+(\.\d)? [KMG]iB\)$`)

// TestOOMRun: the child of `gaffer --` allocates past the container's limit; gaffer says that the
// OOM killer took it, and exits 137 as before.
func TestOOMRun(t *testing.T) {
	c := newTestCgroup(t, 64<<20)
	alloc := buildAlloc(t)
	code, _, stderr := runGafferVia(t, c.wrap(gafferBin, "--", alloc, "200"))
	if code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want 137; stderr %q", code, stderr)
	}
	re := regexp.MustCompile(`(?m)^gaffer: main was killed by the OOM killer \(memory limit 64 MiB, working set \d+ MiB\)$`)
	if !re.MatchString(stderr) {
		t.Errorf("stderr %q: want a line matching %v", stderr, re)
	}
}

// TestOOMUp: a process of `gaffer up` allocates past the container's limit: the event line, its
// exit_reason and oom_kills in the API, the metrics, gaffer stats' container line.
func TestOOMUp(t *testing.T) {
	c := newTestCgroup(t, 64<<20)
	alloc := buildAlloc(t)
	a := upIn(t, c, alloc, `
[process.hog]
cmd = ["{alloc}", "200"]
on_end = "ignore"

[process.keep]
cmd = "sleep 1000"
`)
	m := a.expectEvent(killedLine, 60*time.Second)
	if m[1] != "hog" || m[2] != "64" {
		t.Errorf("line %q: want hog and its limit, 64 MiB", m[0])
	}
	testutil.WaitFor(t, 10*time.Second, "hog's exit in the API", func() bool { return a.oomProc("hog").ExitCode != nil })
	if p := a.oomProc("hog"); *p.ExitCode != 137 || p.ExitReason != "oom" || p.OOMKills != 1 {
		t.Errorf("hog: %+v, want exit 137, exit_reason oom, oom_kills 1", p)
	}
	if p := a.oomProc("keep"); p.ExitReason != "" || p.OOMKills != 0 || p.State != "running" {
		t.Errorf("keep: %+v, want running, untouched", p)
	}
	body := a.metrics()
	for _, want := range []string{
		`gaffer_process_oom_kills_total{name="hog",group="hog",replica="1"} 1`,
		`gaffer_process_oom_kills_total{name="keep",group="keep",replica="1"} 0`,
		"gaffer_container_oom_kills_total 1",
		"gaffer_container_memory_limit_bytes 67108864",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics: want %q in\n%s", want, body)
		}
	}
	var stats struct {
		Container struct {
			CgroupVersion int `json:"cgroup_version"`
			Memory        struct {
				LimitBytes *uint64 `json:"limit_bytes"`
				OOMKills   uint64  `json:"oom_kills"`
			} `json:"memory"`
		} `json:"container"`
	}
	a.get("/v1/stats", &stats)
	if ct := stats.Container; ct.CgroupVersion != 1 || ct.Memory.LimitBytes == nil || *ct.Memory.LimitBytes != 64<<20 || ct.Memory.OOMKills != 1 {
		t.Errorf("GET /v1/stats container: %+v", ct)
	}
	if out := mustCtl(t, a.sock, "stats"); !regexp.MustCompile(`(?m)^container \(cgroup v1\): memory \S+ of 64\.0M \(\d+\.\d%\).*, 1 OOM kills$`).MatchString(out) {
		t.Errorf("gaffer stats:\n%s\nwant the container line", out)
	}
}

// TestOOMWorker: a worker forked by a supervised process is OOM-killed while its parent lives on;
// gaffer's look finds the rise of the count and the pid that web's tree lost.
func TestOOMWorker(t *testing.T) {
	c := newTestCgroup(t, 64<<20)
	alloc := buildAlloc(t)
	a := upIn(t, c, alloc, `
[process.web]
cmd = ["sh", "-c", "{alloc} 200 {dir}/go & echo worker $!; wait; echo worker gone; exec sleep 1000"]
`, "-v")
	var worker string
	deadline := time.After(20 * time.Second)
	for worker == "" {
		select {
		case l := <-a.lines:
			if n, x, ok := split(l); ok && n == "web" && strings.HasPrefix(x, "worker ") {
				worker = strings.TrimPrefix(x, "worker ")
			}
		case <-deadline:
			t.Fatalf("no worker pid from web; stderr %s", a.stderr.String())
		}
	}
	// gaffer tracks the worker once a look has seen it in web's tree (its debug line).
	tracked := regexp.MustCompile(`OOM watch: web's tree: pids \[[0-9 ]*\b` + worker + `\b`)
	testutil.WaitFor(t, 30*time.Second, "gaffer's look to see the worker", func() bool { return tracked.MatchString(a.stderr.String()) })
	web := a.oomProc("web")
	if err := os.WriteFile(filepath.Join(a.dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^the OOM killer killed a process in the container \(oom_kill 0 -> 1\); web's tree lost pid ` + worker + `$`)
	a.expectEvent(want, 60*time.Second)
	// web's wait returns at the kill; gaffer's look may come after its line.
	if !slices.ContainsFunc(a.skipped, func(l string) bool { n, x, _ := split(l); return n == "web" && x == "worker gone" }) {
		a.expectOutput("web", "worker gone")
	}
	if p := a.oomProc("web"); p.State != "running" || p.Pid != web.Pid || p.OOMKills != 1 || p.ExitReason != "" {
		t.Errorf("web after its worker's death: %+v, want still running as pid %d with oom_kills 1", p, web.Pid)
	}
	if body := a.metrics(); !strings.Contains(body, `gaffer_process_oom_kills_total{name="web",group="web",replica="1"} 1`+"\n") {
		t.Errorf("metrics:\n%s\nwant web's oom kill", body)
	}
}

// TestLimitsV1: memory_max, cpu_max and pids_max give a process cgroups of its own (cgroup v1, as
// root): the limits are written, the process and what it forks are born there (other processes
// are not), an OOM kill there is the process's, and gaffer removes the cgroups when it exits.
func TestLimitsV1(t *testing.T) {
	c := newTestCgroup(t, 0)
	alloc := buildAlloc(t)
	a := upIn(t, c, alloc, `
[process.hog]
cmd = ["{alloc}", "200"]
memory_max = "32M"
cpu_max = "0.5"
pids_max = 20
on_end = "ignore"

[process.forker]
cmd = ["sh", "-c", "sleep 1000 & exec sleep 1000"]
pids_max = 10

[process.keep]
cmd = "sleep 1000"
`)
	m := a.expectEvent(killedLine, 60*time.Second)
	if m[1] != "hog" || m[2] != "32" {
		t.Errorf("line %q: want hog and its own limit, 32 MiB", m[0])
	}
	testutil.WaitFor(t, 10*time.Second, "hog's exit in the API", func() bool { return a.oomProc("hog").ExitCode != nil })
	if p := a.oomProc("hog"); p.ExitReason != "oom" || p.OOMKills != 1 {
		t.Errorf("hog: %+v, want exit_reason oom, oom_kills 1", p)
	}
	mem, cpu, pids := c.dirs[cgroup.Memory], c.dirs[cgroup.CPU], c.dirs[cgroup.Pids]
	for file, want := range map[string]string{
		filepath.Join(mem, "gaffer.hog", "memory.limit_in_bytes"):    "33554432",
		filepath.Join(cpu, "gaffer.hog", "cpu.cfs_quota_us"):         "50000",
		filepath.Join(cpu, "gaffer.hog", "cpu.cfs_period_us"):        "100000",
		filepath.Join(pids, "gaffer.hog", "pids.max"):                "20",
		filepath.Join(pids, "gaffer.forker", "pids.max"):             "10",
		filepath.Join(mem, "gaffer.forker", "memory.limit_in_bytes"): "9223372036854771712",
	} {
		if b, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: %q %v, want %s", file, b, err, want)
		}
	}
	// forker's sh and the sleep it forked at once, and nothing else, in forker's cgroups.
	forker := a.oomProc("forker")
	testutil.WaitFor(t, 10*time.Second, "forker's two processes", func() bool { return len(procsIn(t, filepath.Join(pids, "gaffer.forker"))) == 2 })
	for _, dir := range []string{filepath.Join(mem, "gaffer.forker"), filepath.Join(pids, "gaffer.forker")} {
		got := procsIn(t, dir)
		if len(got) != 2 || !slices.Contains(got, strconv.Itoa(forker.Pid)) {
			t.Errorf("%s holds %v, want forker (%d) and its sleep", dir, got, forker.Pid)
		}
	}
	keep := strconv.Itoa(a.oomProc("keep").Pid)
	if !slices.Contains(procsIn(t, mem), keep) || !slices.Contains(procsIn(t, mem), strconv.Itoa(a.cmd.Process.Pid)) {
		t.Errorf("keep (%s) and gaffer (%d) not in the container's cgroup: %v", keep, a.cmd.Process.Pid, procsIn(t, mem))
	}
	if body := a.metrics(); !strings.Contains(body, "gaffer_container_oom_kills_total 1\n") {
		t.Errorf("metrics: the container's count must hold the kill in hog's cgroup:\n%s", body)
	}
	a.signal(syscall.SIGTERM)
	a.wait(30 * time.Second)
	for _, ctrl := range []string{cgroup.Memory, cgroup.CPU, cgroup.Pids} {
		for _, name := range []string{"gaffer.hog", "gaffer.forker", "gaffer.keep"} {
			if _, err := os.Stat(filepath.Join(c.dirs[ctrl], name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s/%s after gaffer exited: %v, want it removed", c.dirs[ctrl], name, err)
			}
		}
	}
}

// procsIn lists the pids in a cgroup.
func procsIn(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestLimitsRefusedV1: where gaffer cannot make cgroups (as another user than root), and for
// memory_high, which cgroup v1 lacks, gaffer check and gaffer up refuse the file with FILE:LINE.
func TestLimitsRefusedV1(t *testing.T) {
	needRoot(t)
	if self, err := cgroup.Self(); err != nil || self.Version != 1 {
		t.Skipf("the messages are cgroup v1's (this machine: %v %v)", self, err)
	}
	dir, err := os.MkdirTemp("", "gaffer-limits-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	file := filepath.Join(dir, "gaffer.toml")
	if err := os.WriteFile(file, []byte("[process.w]\ncmd = \"true\"\nmemory_high = \"100M\"\n\n[process.x]\ncmd = \"true\"\nmemory_max = \"100M\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"check", "up"} {
		code, stdout, stderr := runGaffer(t, startOpts{env: []string{"GAFFER_CONFIG="}}, cmd, "-c", file)
		want := file + ":3: process.w.memory_high: needs cgroup v2: cgroup v1 has no memory.high (use memory_max)\n"
		if code != 2 || stdout != "" || stderr != want {
			t.Errorf("gaffer %s as root: exit %d, stdout %q, stderr %q; want exit 2 and %q", cmd, code, stdout, stderr, want)
		}
	}
	// As nobody, the memory hierarchy is not writable.
	cmd := exec.Command(gafferBin, "check", "-c", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	cmd.Env = append(os.Environ(), "GAFFER_CONFIG=")
	out, err := cmd.CombinedOutput()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) + `:7: process\.x\.memory_max: needs a writable cgroup \(/sys/fs/cgroup/memory\S*\): permission denied; on cgroup v1 gaffer must run as root with the cgroup writable \(in a container: -v /sys/fs/cgroup:/sys/fs/cgroup:rw, or --privileged\)$`)
	if code := cmd.ProcessState.ExitCode(); code != 2 || !re.Match(out) {
		t.Errorf("gaffer check as nobody: exit %d (%v), output:\n%s\nwant exit 2 and a line matching %v", code, err, out, re)
	}
}

// TestMemoryWarning: above 90% of the container's memory limit, gaffer status says so in one
// line; the stats watch stream carries the container.
func TestMemoryWarning(t *testing.T) {
	c := newTestCgroup(t, 256<<20)
	alloc := buildAlloc(t)
	a := upIn(t, c, alloc, `
[process.hog]
cmd = ["{alloc}", "236"]
`)
	a.expectOutput("hog", "allocated 236")
	out := mustCtl(t, a.sock, "status")
	re := regexp.MustCompile(`(?m)^warning: the container uses (9\d|100)% of its memory limit \(working set \S+ of 256\.0M\): the OOM killer is near$`)
	if !re.MatchString(out) {
		t.Errorf("gaffer status:\n%s\nwant a line matching %v", out, re)
	}
	f := follow(t, "curl", "-sN", "--unix-socket", a.sock, "http://gaffer/v1/stats?watch=1&interval=100ms")
	defer f.kill()
	for range 2 {
		if l := f.next(10 * time.Second); !strings.Contains(l, `"container":{"cgroup_version":1,`) || !strings.Contains(l, `"limit_bytes":268435456`) {
			t.Errorf("watch line %s: want the container", l)
		}
	}
}
