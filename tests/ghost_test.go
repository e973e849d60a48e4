package tests

// Issue 7, item 5: no process outlives its place in the table. Every direct child that gaffer
// started is listed by the API, once, with its pid; every listed running process is a live child.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"gaffer/internal/testutil"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// apiUpPID1 is apiUp with gaffer as PID 1 of a new PID namespace: whatever a test leaves
// behind ends with gaffer.
func apiUpPID1(t *testing.T, settings, procs string) *apiGaffer {
	t.Helper()
	toml := "[settings]\nsocket = \"{dir}/g.sock\"\n" + settings + "\n" + procs
	g, dir := startUp(t, true, map[string]string{"gaffer.toml": toml})
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// post sends a POST with a JSON body (nil: none) and returns the status and body; a transport
// error or no answer within 20 s fails the test.
func (a *apiGaffer) post(path string, body any) (int, string) {
	a.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			a.t.Fatal(err)
		}
	}
	code, out, err := httpDo(a.sock, "POST", path, b)
	if err != nil {
		a.t.Fatalf("POST %s %s: %v; stderr %s", path, b, err, a.stderr.String())
	}
	return code, string(out)
}

// kid is a direct child of gaffer, as /proc shows it.
type kid struct {
	host, ns int    // its pid on the host and in gaffer's namespace (the API's pid)
	state    byte   // R, S, Z ...
	leader   bool   // leads its own process group: gaffer started it (orphans it adopted do not)
	name     string // GAFFER_PROCESS_NAME
	instance int    // GAFFER_PROCESS_INSTANCE
}

// procStat reads the state, parent and process group of pid.
func procStat(pid int) (state byte, ppid, pgid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgid, _ = strconv.Atoi(f[2])
	return f[0][0], ppid, pgid, true
}

// gafferKids lists the direct children of gaffer (host pid gpid).
func gafferKids(gpid int) []kid {
	var out []kid
	for p := range nsProcesses(gpid) {
		st, ppid, pgid, ok := procStat(p)
		if !ok || ppid != gpid {
			continue
		}
		k := kid{host: p, ns: nsPid(p), state: st, leader: pgid == p}
		env := procEnv(p)
		k.name = env["GAFFER_PROCESS_NAME"]
		k.instance, _ = strconv.Atoi(env["GAFFER_PROCESS_INSTANCE"])
		if k.ns == 0 {
			continue // gone meanwhile
		}
		out = append(out, k)
	}
	return out
}

// instancesOf lists the live processes of gaffer's namespace (any parent) that carry
// GAFFER_PROCESS_NAME=name and GAFFER_PROCESS_INSTANCE=instance.
func instancesOf(gpid int, name string, instance int) []int {
	var out []int
	for p, st := range nsProcesses(gpid) {
		env := procEnv(p)
		if st != 'Z' && env["GAFFER_PROCESS_NAME"] == name && env["GAFFER_PROCESS_INSTANCE"] == strconv.Itoa(instance) {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// Contract: an instance removed by a scale-down while it waits to restart (state backoff) never
// starts again: after its backoff has passed there is no process with its
// GAFFER_PROCESS_NAME/GAFFER_PROCESS_INSTANCE, no "w.2 started" line after the scale-down, and the
// API lists the one instance left; scaling back to 2 gives exactly one instance-2 process, the
// one the API lists.
func TestScaleDownInBackoffLeavesNoGhost(t *testing.T) {
	useTestBin(t)
	begin := time.Now()
	// Each instance fails at once on its first run and stays up on the next.
	a := apiUpPID1(t, `grace = "1s"`, `
[process.w]
cmd = ["sh", "-c", "m={dir}/ran$GAFFER_PROCESS_INSTANCE; if [ -e $m ]; then exec sleep 1000; fi; : > $m; exit 1"]
numprocesses = 2
restart = "always"
backoff = "5s"
`)
	gpid := a.cmd.Process.Pid
	var out []string
	drain := func() {
		for {
			select {
			case l, ok := <-a.lines:
				if !ok {
					return
				}
				out = append(out, l)
			default:
				return
			}
		}
	}
	started := func(name string) int {
		drain()
		n := 0
		for _, l := range out {
			if who, text, ok := split(l); ok && who == "gaffer" && strings.HasPrefix(text, name+" started") {
				n++
			}
		}
		return n
	}
	testutil.WaitFor(t, 10*time.Second, "w.1 and w.2 in backoff", func() bool {
		n := 0
		for _, p := range a.processes() {
			if p.Group == "w" && p.State == "backoff" {
				n++
			}
		}
		return n == 2
	})
	seen := time.Now()
	if code, body := a.post("/v1/processes/w/scale", map[string]int{"numprocesses": 1}); code != 200 {
		t.Fatalf("scale w 1: %d %s", code, body)
	}
	// The restart timers were armed after begin: the scale-down landed in the backoff.
	if d := time.Since(begin); d >= 5*time.Second {
		t.Fatalf("inconclusive: the scale-down answered %v after gaffer started, backoff is 5s", d)
	}

	// w.1 restarts once its backoff is over; w.2's timer fired by seen+5s at the latest.
	testutil.WaitFor(t, 20*time.Second, "w.1 running again", func() bool {
		for _, p := range a.processes() {
			if p.Group == "w" && p.Instance == 1 && p.State == "running" && p.Pid != 0 {
				return true
			}
		}
		return false
	})
	for until := seen.Add(5*time.Second + 2*time.Second); time.Now().Before(until); time.Sleep(50 * time.Millisecond) {
		drain()
	}
	var listed []string
	for _, p := range a.processes() {
		listed = append(listed, fmt.Sprintf("%s/%d %s pid %d", p.Name, p.Instance, p.State, p.Pid))
	}
	if len(listed) != 1 || !strings.HasPrefix(listed[0], "w.1/1 running") {
		t.Errorf("after scaling w to 1, the API lists %q, want w.1 alone", listed)
	}
	if ghosts := instancesOf(gpid, "w", 2); len(ghosts) > 0 {
		t.Errorf("w.2 was removed in backoff, yet processes with its instance number run: host pids %v", ghosts)
	}
	if n := started("w.2"); n != 1 {
		t.Errorf("%d lines \"w.2 started\", want 1 (its first run, before the scale-down):\n%s", n, strings.Join(out, "\n"))
	}

	// Back to 2: one instance 2, the one listed.
	if code, body := a.post("/v1/processes/w/scale", map[string]int{"numprocesses": 2}); code != 200 {
		t.Fatalf("scale w 2: %d %s", code, body)
	}
	var pid int
	testutil.WaitFor(t, 20*time.Second, "a new w.2 running", func() bool {
		for _, p := range a.processes() {
			if p.Group == "w" && p.Instance == 2 && p.State == "running" && p.Pid != 0 {
				pid = p.Pid
				return true
			}
		}
		return false
	})
	var two []int
	testutil.WaitFor(t, 10*time.Second, "the listed w.2 in /proc", func() bool {
		two = instancesOf(gpid, "w", 2)
		return slices.ContainsFunc(two, func(h int) bool { return nsPid(h) == pid })
	})
	if len(two) != 1 {
		var desc []string
		for _, h := range two {
			st, ppid, _, _ := procStat(h)
			desc = append(desc, fmt.Sprintf("host %d ns %d state %c parent %d", h, nsPid(h), st, ppid))
		}
		t.Errorf("after scaling back to 2: %d processes with instance 2 (%s), want 1: pid %d", len(two), strings.Join(desc, "; "), pid)
	}
}

// fuzzAPI drives random API calls and child kills against a `gaffer up` as PID 1 and checks,
// after each step, that the process table and the processes agree.
type fuzzAPI struct {
	t    *testing.T
	a    *apiGaffer
	gpid int
	rng  *rand.Rand
	log  []string // every action, for the failure report
	mu   sync.Mutex
	out  []string // gaffer's last stdout lines
}

func (f *fuzzAPI) logf(format string, args ...any) {
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

// snapshot reads GET /v1/processes.
func (f *fuzzAPI) snapshot() []apiProc {
	return f.a.processes()
}

// running reports whether state means a process should exist.
func running(state string) bool {
	switch state {
	case "starting", "running", "ready", "stopping":
		return true
	}
	return false
}

// intraSnapshot lists what is wrong within one answer of the API, which the loop makes at one
// moment: names, (process, instance) pairs and pids are unique.
func intraSnapshot(ps []apiProc) []string {
	var bad []string
	names := map[string]int{}
	insts := map[string]int{}
	pids := map[int][]string{}
	for _, p := range ps {
		names[p.Name]++
		insts[p.Group+"/"+strconv.Itoa(p.Instance)]++
		if p.Pid != 0 {
			pids[p.Pid] = append(pids[p.Pid], p.Name)
		}
	}
	for n, c := range names {
		if c > 1 {
			bad = append(bad, fmt.Sprintf("name %s listed %d times", n, c))
		}
	}
	for n, c := range insts {
		if c > 1 {
			bad = append(bad, fmt.Sprintf("instance %s listed %d times", n, c))
		}
	}
	for pid, ns := range pids {
		if len(ns) > 1 {
			bad = append(bad, fmt.Sprintf("pid %d listed for %v", pid, ns))
		}
	}
	sort.Strings(bad)
	return bad
}

// discrepancies reads the API, then /proc, then the API again, and returns what disagrees in a
// way that no single transition explains (each keyed so that a later look can confirm it), and
// what is wrong within one answer of the API.
func (f *fuzzAPI) discrepancies() (found map[string]bool, intra []string, view string) {
	a1 := f.snapshot()
	kids := gafferKids(f.gpid)
	a2 := f.snapshot()
	intra = append(intraSnapshot(a1), intraSnapshot(a2)...)
	found = map[string]bool{}
	byPid := map[int]kid{}
	for _, k := range kids {
		byPid[k.ns] = k
		if k.state == 'Z' {
			found[fmt.Sprintf("zombie child %d (ns %d) not reaped", k.host, k.ns)] = true
			continue
		}
		if !k.leader || k.name == "" {
			continue // an orphan gaffer adopted, not a process it started
		}
		ok := false
		for _, snap := range [][]apiProc{a1, a2} {
			var with []apiProc
			for _, p := range snap {
				if p.Pid == k.ns {
					with = append(with, p)
				}
			}
			if len(with) == 1 && with[0].Group == k.name && with[0].Instance == k.instance {
				ok = true
			}
		}
		if !ok {
			found[fmt.Sprintf("child %d (ns %d) %s instance %d runs but the API does not list it with that pid", k.host, k.ns, k.name, k.instance)] = true
		}
	}
	for _, snap := range [][]apiProc{a1, a2} {
		for _, p := range snap {
			if !running(p.State) {
				continue
			}
			k, ok := byPid[p.Pid]
			if p.Pid == 0 || !ok || k.state == 'Z' {
				// Keyed without the snapshot: the same entry in both reads counts once.
				found[fmt.Sprintf("%s is %s with pid %d, which is not a live child of gaffer", p.Name, p.State, p.Pid)] = true
			}
		}
	}
	// A stale entry in a1 alone is a transition: keep only what a2 confirms, or what /proc
	// shows in both.
	for key := range found {
		if strings.Contains(key, " which is not a live child") {
			confirmed := false
			for _, p := range a2 {
				if strings.HasPrefix(key, fmt.Sprintf("%s is %s with pid %d,", p.Name, p.State, p.Pid)) {
					confirmed = true
				}
			}
			if !confirmed {
				delete(found, key)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "API:")
	for _, p := range a2 {
		fmt.Fprintf(&b, " %s(%d)=%s/%d", p.Name, p.Instance, p.State, p.Pid)
	}
	fmt.Fprintf(&b, "\nchildren:")
	sort.Slice(kids, func(i, j int) bool { return kids[i].ns < kids[j].ns })
	for _, k := range kids {
		fmt.Fprintf(&b, " %d=%s.%d/%c", k.ns, k.name, k.instance, k.state)
		if !k.leader {
			b.WriteString("(adopted)")
		}
	}
	return found, intra, b.String()
}

// check waits until the API and /proc agree: a discrepancy fails the test only when it is still
// there after 3 s of looking again, so that transitions in flight never count.
func (f *fuzzAPI) check(step int) {
	f.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var persistent map[string]bool
	for i := 0; ; i++ {
		found, intra, view := f.discrepancies()
		if len(intra) > 0 {
			f.fail(step, "the API contradicts itself: %s\n%s", strings.Join(intra, "; "), view)
			return
		}
		if i == 0 {
			persistent = found
		} else {
			for k := range persistent {
				if !found[k] {
					delete(persistent, k)
				}
			}
		}
		if len(persistent) == 0 {
			return
		}
		if time.Now().After(deadline) && i >= 2 {
			var keys []string
			for k := range persistent {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			f.fail(step, "for more than 3s:\n  %s\n%s", strings.Join(keys, "\n  "), view)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fuzzAPI) fail(step int, format string, args ...any) {
	f.t.Helper()
	f.mu.Lock()
	out := strings.Join(f.out[max(0, len(f.out)-40):], "\n  ")
	f.mu.Unlock()
	actions := strings.Join(f.log[max(0, len(f.log)-25):], "\n  ")
	f.t.Fatalf("step %d: %s\nlast actions:\n  %s\ngaffer's last lines:\n  %s", step, fmt.Sprintf(format, args...), actions, out)
}

// settle waits until two reads of the API 50 ms apart agree on every name, state and pid, 1 s at
// most (some processes never settle: they restart all the time).
func (f *fuzzAPI) settle() {
	key := func(ps []apiProc) string {
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "%s %s %d;", p.Name, p.State, p.Pid)
		}
		return b.String()
	}
	prev := key(f.snapshot())
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		cur := key(f.snapshot())
		if cur == prev {
			return
		}
		prev = cur
	}
}

// act does one random thing: an API call, or SIGKILL to a child.
func (f *fuzzAPI) act(step int) {
	f.t.Helper()
	groups := []string{"a", "b", "c"}
	target := func(withKeep bool) string {
		ps := f.snapshot()
		var names []string
		for _, p := range ps {
			if withKeep || p.Group != "keep" {
				names = append(names, p.Name)
			}
		}
		// A process's name (every instance) or one instance's name.
		if len(names) == 0 || f.rng.IntN(2) == 0 {
			return groups[f.rng.IntN(len(groups))]
		}
		return names[f.rng.IntN(len(names))]
	}
	call := func(path string, body any) {
		code, out := f.a.post(path, body)
		f.logf("POST %s %v -> %d %s", path, body, code, strings.TrimSpace(out))
		if code >= 500 {
			f.fail(step, "POST %s %v answered %d %s", path, body, code, out)
		}
	}
	switch r := f.rng.IntN(100); {
	case r < 25:
		g := groups[f.rng.IntN(len(groups))]
		call("/v1/processes/"+g+"/scale", map[string]int{"numprocesses": f.rng.IntN(5)})
	case r < 35:
		call("/v1/processes/"+target(false)+"/stop", nil)
	case r < 50:
		call("/v1/processes/"+target(false)+"/start", nil)
	case r < 60:
		call("/v1/processes/"+target(false)+"/restart", nil)
	case r < 80:
		sig := []string{"TERM", "KILL", "USR1"}[f.rng.IntN(3)]
		call("/v1/processes/"+target(true)+"/signal", map[string]string{"signal": sig})
	default:
		var leaders []kid
		for _, k := range gafferKids(f.gpid) {
			if k.leader && k.name != "" && k.state != 'Z' {
				leaders = append(leaders, k)
			}
		}
		if len(leaders) == 0 {
			f.logf("kill: no child")
			return
		}
		sort.Slice(leaders, func(i, j int) bool { return leaders[i].ns < leaders[j].ns })
		k := leaders[f.rng.IntN(len(leaders))]
		f.logf("SIGKILL %s.%d (ns %d) -> %v", k.name, k.instance, k.ns, killKid(f.gpid, k))
	}
}

// killKid sends SIGKILL to k through a pidfd, once the pid is known to be still gaffer's child:
// a pid that was reused meanwhile is never signalled.
func killKid(gpid int, k kid) error {
	fd, err := unix.PidfdOpen(k.host, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, ppid, pgid, ok := procStat(k.host); !ok || ppid != gpid || pgid != k.host {
		return syscall.ESRCH
	}
	return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// fuzzConfig writes the processes: keep is never scaled or stopped (gaffer always has something
// to supervise), a sleeps, b runs for a short while and fails, c runs for a short while and ends
// well or badly.
func fuzzConfig(rng *rand.Rand) string {
	backoff := func() string { return []string{"100ms", "200ms", "300ms"}[rng.IntN(3)] }
	return fmt.Sprintf(`
[process.keep]
cmd = "sleep 1000"
restart = "always"
backoff = "100ms"
on_end = "ignore"

[process.a]
cmd = "sleep 1000"
numprocesses = %d
restart = "always"
backoff = %q
on_end = "ignore"

[process.b]
cmd = ["sh", "-c", "sleep 0.$(($$$$ %% 9 + 1)); exit 1"]
numprocesses = %d
restart = "always"
backoff = %q
on_end = "ignore"

[process.c]
cmd = ["sh", "-c", "sleep 0.$(($$$$ %% 9 + 1)); exit $(($$$$ %% 2))"]
numprocesses = %d
restart = "on-failure"
backoff = %q
on_end = "ignore"
`, 1+rng.IntN(3), backoff(), 1+rng.IntN(3), backoff(), 1+rng.IntN(3), backoff())
}

// Contract, after every step of random scale/stop/start/restart/signal calls and SIGKILLs of
// children, once transitions had 3 s to complete: every live child of gaffer that it started
// (leads its own process group, carries GAFFER_PROCESS_NAME) is listed by GET /v1/processes exactly
// once, with its pid, name and instance; every listed process in state starting, running, ready or
// stopping has a pid that is a live child of gaffer; names, instance numbers (per process) and pids
// are unique in each answer; no child stays a zombie. Replay with GAFFER_FUZZ_SEED; the number of
// steps is GAFFER_FUZZ_STEPS (default 150), within 50 s.
func TestProcessTableMatchesProcessesFuzz(t *testing.T) {
	useTestBin(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GAFFER_FUZZ_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GAFFER_FUZZ_SEED=%q: %v", s, err)
		}
		seed = v
	}
	steps := 150
	if s := os.Getenv("GAFFER_FUZZ_STEPS"); s != "" {
		steps, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d (replay: GAFFER_FUZZ_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	conf := fuzzConfig(rng)
	a := apiUpPID1(t, `grace = "1s"`, conf)
	f := &fuzzAPI{t: t, a: a, gpid: a.cmd.Process.Pid, rng: rng}
	// Keep reading gaffer's stdout, or it blocks.
	go func() {
		for l := range a.lines {
			f.mu.Lock()
			f.out = append(f.out, l)
			if len(f.out) > 400 {
				f.out = slices.Clone(f.out[200:])
			}
			f.mu.Unlock()
		}
	}()
	f.settle()
	f.check(0)
	budget := time.Now().Add(50 * time.Second)
	done := 0
	for step := 1; step <= steps && time.Now().Before(budget); step++ {
		for n := 1 + f.rng.IntN(3); n > 0; n-- {
			f.act(step)
		}
		if f.rng.IntN(2) == 0 {
			f.settle()
		}
		f.check(step)
		select {
		case <-a.done:
			f.fail(step, "gaffer exited (%d); stderr %s", a.code, a.stderr.String())
		default:
		}
		done = step
	}
	t.Logf("%d steps, %d actions", done, len(f.log))
	a.signal(unix.SIGTERM)
	a.wait(30 * time.Second)
}
