// Command scale measures gaffer supervising many processes (1000 by default), side by side with
// supervisord supervising the same, each as PID 1 of a new PID namespace (`unshare --pid --fork
// --mount-proc`, so that the init sees its own /proc) with its stdout going into a pipe read by a
// separate counting process (this program, -child count), as `docker logs` reads it.
//
// Two layouts, each run once per init: one process with N instances (gaffer `numprocesses = N`,
// supervisord `numprocs=N`) and N separate entries (`[process.pNNNN]`, `[program:pNNNN]`), all
// `sleep infinity`, restarted always (gaffer `backoff = "10ms"`; supervisord restarts at once).
// Per layout, first -rounds start-only runs alternate gaffer with go-min (this program, -child
// spawn: for each process two pipes, os.StartProcess and a "started" line, nothing else: the floor
// of starting processes from Go), then one full run of each init, in this order:
//
//   - start: from just before unshare is started until the counter read the Nth start line
//     (gaffer's "NAME started (pid P)", written once the exec succeeded; supervisord's "spawned:",
//     written after its fork; supervisord's "entered RUNNING state" is reported too). The counter
//     reads CLOCK_MONOTONIC when it reads the line; so does this program before the start. Also
//     the init's own cpu time by then, which the machine's other load moves much less.
//   - idle: the init's own cpu time (utime+stime of /proc/PID/stat, every thread) over -idle
//     (60 s) while nobody asks anything, after -settle; its context switches (wake-ups) in the same
//     window; VmRSS, RssAnon, threads and open fds with the N processes running.
//   - stats (gaffer): GET /v1/stats from -c (4) clients, each on its own kept-alive connection over
//     the Unix socket, as fast as they can for -d (10 s): requests/s, p50/p90/p99/max, and
//     gaffer's cpu meanwhile.
//   - exit storm (-storms times): every supervised process is SIGKILLed at once (a loop of kill(2)
//     over the init's children, from here); the time until the counter read N more exit lines
//     and N more start lines, and for gaffer until GET /v1/info reports every exit reaped and N
//     running, and the init's cpu time; meanwhile one client asks GET /v1/info over and over
//     (-info-gap, 10 ms, apart: each answer costs gaffer a read of /proc/self/fd), and its
//     latency is reported (p50, p99, max) beside the same for the second before the storm. The
//     init's children are then checked: N, none of the killed ones (pid and start time), none a
//     zombie.
//   - shutdown: SIGTERM to the init, the time until it has exited, and its exit code.
//
// It is not a test: nothing fails on a time. It exits 0 when every target was met (gaffer: all N
// started within 2 s (the median of its starts), idle cpu under 1%, stats p99 under 20 ms, each storm reaped and restarted
// with every GET /v1/info answered), 3 when one was not (after the report), 1 when something broke,
// 2 on a usage error. Every process it started is gone when it exits, also on SIGINT and SIGTERM:
// the inits run under `unshare --kill-child`, so a namespace dies with its unshare, and unshare
// gets SIGKILL when this program dies (Pdeathsig).
//
// With -perf DIR, `perf record -g` samples gaffer in each phase (the start system-wide, since
// gaffer's pid is not known before it runs; the others with -p PID) into DIR/LAYOUT-PHASE.data; the
// gaffer built for it keeps its symbols (no -s -w). Read with `perf report -i FILE --comm gaffer`.
// -stderr DIR keeps each init's stderr; -nice N runs the inits, their processes and the counter at
// that nice value, for less of the other load of a shared machine.
//
// Needs root (PID namespaces), unshare (util-linux) and, unless -only gaffer, supervisord.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"gaffer/bench/internal/benchutil"
	"gaffer/bench/internal/rawhttp"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Targets (issue 13, Scale).
const (
	maxStart    = 2 * time.Second
	maxIdlePct  = 1.0
	maxStatsP99 = 20 * time.Millisecond
	stormWait   = 60 * time.Second // a storm not over by then is a failure
	startWait   = 60 * time.Second
)

// options are the command line.
type options struct {
	gaffer   string
	n        int
	layouts  []string
	only     string
	settle   time.Duration
	idle     time.Duration
	clients  int
	statsDur time.Duration
	storms   int
	rounds   int
	nice     int
	errDir   string
	infoGap  time.Duration
	backoff  time.Duration
	short    bool
	jsonOut  string
	perfDir  string
}

func main() {
	var o options
	child := flag.String("child", "", "internal: run as a helper (count, spawn)")
	every := flag.Int("every", 0, "internal (-child count): report every this many matches")
	var match multiFlag
	flag.Var(&match, "match", "internal (-child count): a substring to count lines of; repeatable")
	flag.StringVar(&o.gaffer, "gaffer", "", "the gaffer `binary` (default: build the working tree like tests/main_test.go)")
	flag.IntVar(&o.n, "n", 1000, "supervised processes (100 with -short)")
	layouts := flag.String("layouts", "instances,entries", "instances (one process, numprocesses = N), entries (N processes), or both")
	flag.StringVar(&o.only, "only", "", "measure only gaffer or supervisord")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after the start before the idle window (1s with -short)")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "the idle window (3s with -short)")
	flag.IntVar(&o.clients, "c", 4, "GET /v1/stats clients")
	flag.DurationVar(&o.statsDur, "d", 10*time.Second, "how long the stats clients ask (2s with -short)")
	flag.IntVar(&o.storms, "storms", 3, "exit storms per run (1 with -short)")
	flag.IntVar(&o.rounds, "rounds", 3, "start-only rounds of gaffer and go-min, alternated, before the full runs (1 with -short)")
	flag.DurationVar(&o.infoGap, "info-gap", 10*time.Millisecond, "pause between the GET /v1/info requests during a storm (each costs gaffer a read of /proc/self/fd)")
	flag.StringVar(&o.errDir, "stderr", "", "also write each init's stderr to a file in `dir` (GODEBUG in the environment reaches gaffer)")
	flag.IntVar(&o.nice, "nice", 0, "run the inits, their processes and the counter at this nice value (-10: less of other load on a shared machine)")
	flag.DurationVar(&o.backoff, "backoff", 10*time.Millisecond, "gaffer's backoff (at least 10ms)")
	flag.BoolVar(&o.short, "short", false, "a smoke run of a few seconds per init: -n 100 -idle 3s -settle 1s -d 2s -storms 1 unless given")
	flag.StringVar(&o.jsonOut, "json", "", "write the figures as JSON to `file`")
	flag.StringVar(&o.perfDir, "perf", "", "record gaffer with perf in each phase into `dir` (a gaffer with symbols is built)")
	flag.Parse()
	switch *child {
	case "":
	case "count":
		count(match, *every)
		return
	case "spawn":
		os.Exit(spawnMin(o.n))
	default:
		fmt.Fprintf(os.Stderr, "scale: unknown -child %q\n", *child)
		os.Exit(2)
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.short {
		for name, apply := range map[string]func(){
			"n":      func() { o.n = 100 },
			"idle":   func() { o.idle = 3 * time.Second },
			"settle": func() { o.settle = time.Second },
			"d":      func() { o.statsDur = 2 * time.Second },
			"storms": func() { o.storms = 1 },
			"rounds": func() { o.rounds = 1 },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	for _, l := range strings.Split(*layouts, ",") {
		if l = strings.TrimSpace(l); l != "" {
			o.layouts = append(o.layouts, l)
		}
	}
	bad := flag.NArg() > 0 || o.n < 1 || o.n > 1024 || o.idle <= 0 || o.clients < 1 || o.statsDur <= 0 || o.storms < 0 || o.rounds < 0 ||
		o.backoff < 10*time.Millisecond || len(o.layouts) == 0 || (o.only != "" && o.only != "gaffer" && o.only != "supervisord")
	for _, l := range o.layouts {
		bad = bad || (l != "instances" && l != "entries")
	}
	if bad {
		fmt.Fprintln(os.Stderr, "scale: usage: scale [-short] [-n 1000 (at most 1024)] [-layouts instances,entries] [-only gaffer|supervisord] [-rounds 3] [-idle 60s] [-c 4] [-d 10s] [-storms 3] [-gaffer BIN] [-json FILE] [-perf DIR]")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "scale: needs root (the inits run as PID 1 of a new PID namespace)")
		os.Exit(1)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runAll(ctx, o)
	cancel()
	os.Exit(code)
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// ---- the counter ----

// count reads the init's stdout and counts its lines, and for each pattern the lines that contain
// it. When the count of pattern i reaches 1 or a multiple of every, it prints
// "mark i COUNT MONOTONIC_NS"; at EOF "final BYTES LINES COUNT...".
func count(pats []string, every int) {
	w := bufio.NewWriter(os.Stdout)
	counts := make([]int, len(pats))
	bpats := make([][]byte, len(pats))
	for i, p := range pats {
		bpats[i] = []byte(p)
	}
	var nbytes, lines int64
	br := bufio.NewReaderSize(os.Stdin, 256<<10)
	for {
		l, err := br.ReadSlice('\n')
		if len(l) > 0 {
			nbytes += int64(len(l))
			lines++
			marked := false
			for i, p := range bpats {
				if bytes.Contains(l, p) {
					counts[i]++
					if c := counts[i]; c == 1 || (every > 0 && c%every == 0) {
						fmt.Fprintf(w, "mark %d %d %d\n", i, c, mono())
						marked = true
					}
				}
			}
			if marked {
				_ = w.Flush()
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			break
		}
	}
	fmt.Fprintf(w, "final %d %d", nbytes, lines)
	for _, c := range counts {
		fmt.Fprintf(w, " %d", c)
	}
	fmt.Fprintln(w)
	_ = w.Flush()
}

// spawnMin is the floor of starting n processes in Go, measured as gaffer is (bench/mingo's idea
// for this job): for each `sleep infinity`, two pipes (its stdout and stderr, as gaffer relays
// them), os.StartProcess in a process group of its own, and one write of a "started" line on
// stdout, as gaffer's event; no config, no supervisor state, no relay, no API. Then it waits for
// SIGTERM (as PID 1 it must ask for it: the default action does not apply to a namespace's init).
func spawnMin(n int) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	path, err := exec.LookPath("sleep")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-min:", err)
		return 1
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-min:", err)
		return 1
	}
	var keep []*os.File // the read ends, held as gaffer holds them
	for i := 1; i <= n; i++ {
		var fs [4]*os.File
		var err error
		if fs[0], fs[1], err = os.Pipe(); err == nil {
			fs[2], fs[3], err = os.Pipe()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "go-min:", err)
			return 1
		}
		p, err := os.StartProcess(path, []string{"sleep", "infinity"}, &os.ProcAttr{
			Files: []*os.File{null, fs[1], fs[3]}, Sys: &syscall.SysProcAttr{Setpgid: true}})
		fs[1].Close()
		fs[3].Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go-min:", err)
			return 1
		}
		keep = append(keep, fs[0], fs[2])
		fmt.Fprintf(os.Stdout, "go-min | p%04d started (pid %d)\n", i, p.Pid)
	}
	<-term
	runtime.KeepAlive(keep)
	return 0
}

// mono is CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine.
func mono() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// ---- results ----

// latency sums up request durations.
type latency struct {
	N      int     `json:"requests"`
	Errors int     `json:"errors"`
	PerSec float64 `json:"per_s,omitempty"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func summarize(d []time.Duration, errs int) latency {
	l := latency{N: len(d), Errors: errs}
	if len(d) == 0 {
		return l
	}
	d = slices.Clone(d)
	slices.Sort(d)
	q := func(p float64) float64 { return msf(d[max(0, int(math.Ceil(p*float64(len(d))))-1)]) }
	l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs = q(0.5), q(0.9), q(0.99), msf(d[len(d)-1])
	return l
}

func msf(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// storm is one exit storm.
type storm struct {
	Killed       int     `json:"killed"`
	KillMs       float64 `json:"kill_ms"`        // the kill(2) loop
	ExitedMs     float64 `json:"exit_lines_ms"`  // until the counter read N more exit lines
	StartedMs    float64 `json:"start_lines_ms"` // until it read N more start lines
	APIReapedMs  float64 `json:"api_reaped_ms,omitempty"`
	APIRunningMs float64 `json:"api_running_ms,omitempty"`
	Before       latency `json:"info_before"`
	During       latency `json:"info_during"`
	Children     int     `json:"children_after"`
	Zombies      int     `json:"zombies_after"`
	Survivors    int     `json:"killed_pids_still_there"`
	Complete     bool    `json:"complete"`
	CPUMs        float64 `json:"init_cpu_ms"` // the init's cpu time from the kill until all were restarted
}

// result is what was measured of one init with one layout.
type result struct {
	Init        string   `json:"init"`
	Layout      string   `json:"layout"`
	N           int      `json:"n"`
	StartFirst  float64  `json:"start_first_ms"`
	StartAll    float64  `json:"start_all_ms"`
	StartCPUMs  float64  `json:"start_cpu_ms"`             // the init's own cpu time once all had started
	RunningAll  float64  `json:"running_all_ms,omitempty"` // supervisord: entered RUNNING
	Started     int      `json:"started"`
	IdleS       float64  `json:"idle_s"`
	IdleCPUMs   float64  `json:"idle_cpu_ms"`
	IdleCPUPct  float64  `json:"idle_cpu_percent"`
	IdleWakes   float64  `json:"idle_ctx_switches_per_s"`
	VmRSS       int      `json:"vmrss_kb"`
	RssAnon     int      `json:"rssanon_kb"`
	Threads     int      `json:"threads"`
	FDs         int      `json:"fds"`
	Stats       *latency `json:"stats,omitempty"`
	StatsBytes  int      `json:"stats_answer_bytes,omitempty"`
	StatsCPUPct float64  `json:"stats_cpu_percent,omitempty"`
	Storms      []storm  `json:"storms"`
	StopMs      float64  `json:"shutdown_ms"`
	ExitCode    int      `json:"exit_code"`
	Load        string   `json:"load"`
}

// startRun is one start-only round.
type startRun struct {
	Init    string  `json:"init"`
	Layout  string  `json:"layout"`
	FirstMs float64 `json:"start_first_ms"`
	AllMs   float64 `json:"start_all_ms"`
	CPUMs   float64 `json:"start_cpu_ms"`
	Load    string  `json:"load"`
}

// report is the whole run.
type report struct {
	Time    time.Time `json:"time"`
	Machine string    `json:"machine"`
	Gaffer  string    `json:"gaffer"`
	Opts    struct {
		N        int     `json:"n"`
		IdleS    float64 `json:"idle_s"`
		Clients  int     `json:"clients"`
		StatsS   float64 `json:"stats_s"`
		Storms   int     `json:"storms"`
		Rounds   int     `json:"start_rounds"`
		BackoffS float64 `json:"backoff_s"`
		Nice     int     `json:"nice"`
	} `json:"options"`
	Starts  []startRun `json:"start_rounds"`
	Results []*result  `json:"results"`
	Met     bool       `json:"met"`
	Notes   []string   `json:"not_met,omitempty"`
}

// ---- the run ----

func runAll(ctx context.Context, o options) int {
	if _, err := exec.LookPath("unshare"); err != nil {
		return fail("unshare (util-linux) is not installed")
	}
	if o.only != "gaffer" {
		if _, err := exec.LookPath("supervisord"); err != nil {
			return fail("supervisord is not installed (apt-get install -y supervisor), or give -only gaffer")
		}
	}
	if o.perfDir != "" {
		if _, err := exec.LookPath("perf"); err != nil {
			return fail("perf is not installed (apt-get install -y linux-perf)")
		}
		if err := os.MkdirAll(o.perfDir, 0o755); err != nil {
			return fail("%v", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fail("cannot find this program: %v", err)
	}
	base, err := os.MkdirTemp("", "gaffer-scale-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(base)
	if o.gaffer == "" && o.only != "supervisord" {
		fmt.Fprintln(os.Stderr, "scale: building gaffer")
		if o.gaffer, err = buildGaffer(base, o.perfDir != ""); err != nil {
			return fail("%v", err)
		}
	}
	rep := &report{Time: time.Now().UTC(), Machine: machine(), Gaffer: o.gaffer}
	rep.Opts.N, rep.Opts.IdleS, rep.Opts.Clients, rep.Opts.StatsS = o.n, o.idle.Seconds(), o.clients, o.statsDur.Seconds()
	rep.Opts.Storms, rep.Opts.BackoffS, rep.Opts.Rounds, rep.Opts.Nice = o.storms, o.backoff.Seconds(), o.rounds, o.nice
	inits := []string{"gaffer", "supervisord"}
	if o.only != "" {
		inits = []string{o.only}
	}
	one := func(init, layout string, startOnly bool) (*result, error) {
		if ctx.Err() != nil {
			return nil, errors.New("interrupted")
		}
		dir, err := os.MkdirTemp(base, init+"-"+layout+"-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		r := &runner{o: o, init: init, layout: layout, dir: dir, self: self, stderr: &tail{max: 64 << 10},
			marks: map[[2]int]int64{}, notify: make(chan struct{}, 1)}
		what := "full run"
		if startOnly {
			what = "start only"
		}
		fmt.Fprintf(os.Stderr, "scale: %s, %d processes (%s), %s\n", init, o.n, layout, what)
		res, err := r.run(ctx, startOnly)
		r.stopAll()
		if err != nil {
			if t := r.stderr.String(); t != "" {
				fmt.Fprintf(os.Stderr, "scale: %s's stderr ends with:\n%s\n", init, t)
			}
			return nil, fmt.Errorf("%s (%s): %w", init, layout, err)
		}
		return res, nil
	}
	for _, layout := range o.layouts {
		// Start-only rounds, go-min and gaffer alternated, so that both see the same machine.
		for round := range o.rounds {
			if o.only == "supervisord" {
				break
			}
			order := []string{"go-min", "gaffer"}
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, init := range order {
				res, err := one(init, layout, true)
				if err != nil {
					return fail("%v", err)
				}
				rep.Starts = append(rep.Starts, startRun{Init: init, Layout: layout, FirstMs: res.StartFirst, AllMs: res.StartAll, CPUMs: res.StartCPUMs, Load: res.Load})
			}
		}
		for _, init := range inits {
			res, err := one(init, layout, false)
			if err != nil {
				return fail("%v", err)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	verdict(rep)
	printReport(os.Stdout, rep)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	if !rep.Met {
		return 3
	}
	return 0
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "scale: "+format+"\n", args...)
	return 1
}

// buildGaffer builds the working tree as tests/main_test.go does, into dir; with symbols when
// it is to be profiled (the same code: only the symbol table differs).
func buildGaffer(dir string, symbols bool) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("cannot find the module to build gaffer from: run from the repository, or give -gaffer")
	}
	bin := filepath.Join(dir, "gaffer")
	ldflags := "-ldflags=-s -w"
	if symbols {
		ldflags = "-ldflags="
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", ldflags, "-o", bin, ".")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build gaffer: %v\n%s", err, out)
	}
	return bin, nil
}

// runner is one init with one layout: what it started and what the counter reported.
type runner struct {
	o      options
	init   string // gaffer | supervisord
	layout string
	dir    string
	self   string
	sock   string
	unsh   *exec.Cmd     // unshare, whose child is the init
	pid    int           // the init's pid as seen from here
	gone   chan struct{} // closed when unshare has exited
	cnt    *exec.Cmd
	cntOut chan struct{} // closed when the counter's output ended
	stderr *tail
	perf   *exec.Cmd // a perf record under way
	// errFile gets a copy of the init's stderr (-stderr); closed by stopAll.
	errFile *os.File

	mu     sync.Mutex
	marks  map[[2]int]int64 // {pattern, count} -> CLOCK_MONOTONIC ns
	final  []int64
	notify chan struct{}
}

// The patterns the counter counts, by init: starts, exits, and (supervisord) RUNNING.
const (
	patStart = iota
	patExit
	patRunning
)

func (r *runner) patterns() []string {
	if r.init != "supervisord" {
		return []string{" started (pid ", " exited with code "}
	}
	return []string{" spawned: '", " exited: ", " entered RUNNING state"}
}

// config is the init's configuration file for this layout.
func (r *runner) config() string {
	var b strings.Builder
	n := r.o.n
	switch r.init {
	case "go-min":
		return ""
	case "gaffer":
		fmt.Fprintf(&b, "[settings]\nsocket = %q\ngrace = \"5s\"\n", r.sock)
		body := fmt.Sprintf("cmd = \"sleep infinity\"\nrestart = \"always\"\nbackoff = %q\nbackoff_max = \"1s\"\nstop_timeout = \"5s\"\n", r.o.backoff.String())
		if r.layout == "instances" {
			fmt.Fprintf(&b, "\n[process.w]\n%snumprocesses = %d\n", body, n)
		} else {
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&b, "\n[process.p%04d]\n%s", i, body)
			}
		}
		return b.String()
	}
	// supervisord as a container runs it: in the foreground, its log and the programs' output on
	// its stdout; enough fds for N processes' pipes and log files.
	fmt.Fprintf(&b, `[supervisord]
nodaemon=true
user=root
logfile=/dev/null
logfile_maxbytes=0
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s
minfds=%[2]d

[unix_http_server]
file=%[1]s/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
`, r.dir, 8*n+1024)
	body := "command=sleep infinity\nstartsecs=0\nautorestart=true\nstopwaitsecs=5\n" +
		"stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\nstderr_logfile=/dev/stderr\nstderr_logfile_maxbytes=0\n"
	if r.layout == "instances" {
		fmt.Fprintf(&b, "\n[program:w]\n%snumprocs=%d\nprocess_name=%%(program_name)s.%%(process_num)d\n", body, n)
	} else {
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "\n[program:p%04d]\n%s", i, body)
		}
	}
	return b.String()
}

func (r *runner) run(ctx context.Context, startOnly bool) (*result, error) {
	res := &result{Init: r.init, Layout: r.layout, N: r.o.n}
	n := r.o.n
	t0, err := r.start(ctx)
	if err != nil {
		return nil, err
	}
	// Start: until the Nth start line.
	if err := r.waitMark(ctx, patStart, 1, startWait); err != nil {
		return nil, fmt.Errorf("no process started: %w", err)
	}
	res.StartFirst = r.since(t0, patStart, 1)
	err = r.waitMark(ctx, patStart, n, startWait)
	r.stopPerf()
	if err != nil {
		return nil, fmt.Errorf("not all %d started after %v: %w (%d)", n, startWait, err, r.counted(patStart))
	}
	res.StartAll, res.Started, res.StartCPUMs = r.since(t0, patStart, n), n, ticksMs(cpuTicks(r.pid))
	if r.init == "supervisord" {
		if err := r.waitMark(ctx, patRunning, n, startWait); err != nil {
			return nil, fmt.Errorf("not all %d RUNNING: %w", n, err)
		}
		res.RunningAll = r.since(t0, patRunning, n)
	}
	fmt.Fprintf(os.Stderr, "scale: %d started in %.0f ms\n", n, res.StartAll)
	if startOnly {
		res.Load = benchutil.Loadavg()
		return res, nil
	}
	if err := r.waitChildren(ctx, nil, 10*time.Second); err != nil {
		return nil, err
	}
	var hc *rawhttp.Client
	if r.init == "gaffer" {
		hc = &rawhttp.Client{Sock: r.sock, Req: []byte("GET /v1/info HTTP/1.1\r\nHost: gaffer\r\n\r\n")}
		defer hc.Close()
		var in info
		if err := hc.GetJSON(&in); err != nil {
			return nil, fmt.Errorf("GET /v1/info: %w", err)
		}
		if in.Processes["running"] != n {
			return nil, fmt.Errorf("GET /v1/info: %d running, want %d", in.Processes["running"], n)
		}
		hc.Close() // no connection stays open during the idle window
	}

	// Idle.
	if !benchutil.Sleep(ctx, r.o.settle) {
		return nil, errors.New("interrupted")
	}
	r.startPerf(ctx, "idle", false)
	st := benchutil.Status(r.pid)
	res.VmRSS, res.RssAnon, res.Threads, res.FDs = st["VmRSS"], st["RssAnon"], st["Threads"], benchutil.CountFDs(r.pid)
	c0, w0, i0 := cpuTicks(r.pid), ctxSwitches(r.pid), time.Now()
	select {
	case <-ctx.Done():
		return nil, errors.New("interrupted")
	case <-r.gone:
		return nil, errors.New("the init exited while idle")
	case <-time.After(r.o.idle):
	}
	c1, w1, el := cpuTicks(r.pid), ctxSwitches(r.pid), time.Since(i0)
	r.stopPerf()
	res.IdleS = el.Seconds()
	res.IdleCPUMs = ticksMs(c1 - c0)
	res.IdleCPUPct = res.IdleCPUMs / float64(el.Milliseconds()) * 100
	res.IdleWakes = float64(w1-w0) / el.Seconds()
	fmt.Fprintf(os.Stderr, "scale: idle cpu %.0f ms in %.0f s (%.2f%%)\n", res.IdleCPUMs, res.IdleS, res.IdleCPUPct)

	// Stats.
	if r.init == "gaffer" {
		r.startPerf(ctx, "stats", false)
		err := r.stats(ctx, res)
		r.stopPerf()
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		fmt.Fprintf(os.Stderr, "scale: stats p99 %.2f ms\n", res.Stats.P99Ms)
	}

	// Storms.
	for k := range r.o.storms {
		if !benchutil.Sleep(ctx, time.Second) {
			return nil, errors.New("interrupted")
		}
		r.startPerf(ctx, fmt.Sprintf("storm%d", k+1), false)
		s, err := r.storm(ctx, k)
		r.stopPerf()
		if err != nil {
			return nil, fmt.Errorf("storm %d: %w", k+1, err)
		}
		res.Storms = append(res.Storms, s)
		fmt.Fprintf(os.Stderr, "scale: storm %d: restarted in %.0f ms, complete %v\n", k+1, s.StartedMs, s.Complete)
		if !s.Complete {
			break
		}
	}
	res.Load = benchutil.Loadavg()

	// Shutdown.
	t1 := time.Now()
	_ = syscall.Kill(r.pid, syscall.SIGTERM)
	select {
	case <-r.gone:
	case <-time.After(60 * time.Second):
		return nil, errors.New("still running 60s after SIGTERM")
	}
	res.StopMs = msf(time.Since(t1))
	res.ExitCode = r.unsh.ProcessState.ExitCode()
	return res, nil
}

// start writes the config, starts the counter and the init, and returns CLOCK_MONOTONIC taken
// just before the init was started.
func (r *runner) start(ctx context.Context) (int64, error) {
	r.sock = filepath.Join(r.dir, "gaffer.sock")
	conf := filepath.Join(r.dir, r.init+".conf")
	if err := os.WriteFile(conf, []byte(r.config()), 0o644); err != nil {
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer pr.Close()
	defer pw.Close()
	args := []string{"-child", "count", "-every", strconv.Itoa(r.o.n)}
	for _, p := range r.patterns() {
		args = append(args, "-match", p)
	}
	r.cnt = r.command(r.self, args...)
	r.cnt.Stdin, r.cnt.Stderr = pr, os.Stderr
	r.cnt.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cout, err := r.cnt.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := r.cnt.Start(); err != nil {
		return 0, fmt.Errorf("cannot start the counter: %w", err)
	}
	r.cntOut = make(chan struct{})
	go r.readMarks(cout)

	argv := []string{"--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"}
	switch r.init {
	case "gaffer":
		argv = append(argv, r.o.gaffer, "up", "-c", conf)
	case "supervisord":
		argv = append(argv, "supervisord", "-n", "-c", conf)
	default:
		argv = append(argv, r.self, "-child", "spawn", "-n", strconv.Itoa(r.o.n))
	}
	r.unsh = r.command("unshare", argv...)
	r.unsh.Dir = r.dir
	r.unsh.Stdout, r.unsh.Stderr = pw, r.stderr
	if r.o.errDir != "" {
		f, err := os.CreateTemp(r.o.errDir, r.init+"-"+r.layout+"-*.stderr")
		if err != nil {
			return 0, err
		}
		r.errFile = f
		r.unsh.Stderr = io.MultiWriter(r.stderr, f)
	}
	// Its own process group, so that a Ctrl-C is this program's to handle; SIGKILL when it dies,
	// and --kill-child takes the init, and with it the namespace.
	r.unsh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r.startPerf(ctx, "start", true)
	t0 := mono()
	if err := r.unsh.Start(); err != nil {
		return 0, fmt.Errorf("cannot start unshare: %w", err)
	}
	r.gone = make(chan struct{})
	go func() { _ = r.unsh.Wait(); close(r.gone) }()

	// The init is unshare's child once that has exec'd something else than unshare.
	self, err := exec.LookPath("unshare")
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.pid == 0 {
		for _, c := range benchutil.Children(r.unsh.Process.Pid) {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c)); err == nil && l != self {
				r.pid = c
			}
		}
		if r.pid != 0 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, errors.New("interrupted")
		case <-r.gone:
			return 0, fmt.Errorf("the init exited at once: %s", r.stderr.String())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the init did not start within 30s")
		}
	}
	return t0, nil
}

// command is name with args, run by nice(1) when -nice is given: the init, its processes and the
// counter get that share of the cpus.
func (r *runner) command(name string, args ...string) *exec.Cmd {
	if r.o.nice == 0 {
		return exec.Command(name, args...)
	}
	return exec.Command("nice", append([]string{"-n", strconv.Itoa(r.o.nice), name}, args...)...)
}

// readMarks reads the counter's reports.
func (r *runner) readMarks(rd io.Reader) {
	defer close(r.cntOut)
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "final" {
			var v []int64
			for _, s := range f[1:] {
				x, _ := strconv.ParseInt(s, 10, 64)
				v = append(v, x)
			}
			r.mu.Lock()
			r.final = v
			r.mu.Unlock()
			continue
		}
		if len(f) != 4 || f[0] != "mark" {
			continue
		}
		i, _ := strconv.Atoi(f[1])
		c, _ := strconv.Atoi(f[2])
		t, _ := strconv.ParseInt(f[3], 10, 64)
		r.mu.Lock()
		r.marks[[2]int{i, c}] = t
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
}

// waitMark waits until the counter has counted c lines of pattern i.
func (r *runner) waitMark(ctx context.Context, i, c int, d time.Duration) error {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		_, ok := r.marks[[2]int{i, c}]
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-r.gone:
			return errors.New("the init exited")
		case <-deadline:
			return fmt.Errorf("timed out after %v", d)
		}
	}
}

// since is the time in ms from t0 to the mark {i, c}.
func (r *runner) since(t0 int64, i, c int) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return msf(time.Duration(r.marks[[2]int{i, c}] - t0))
}

// counted is the highest count of pattern i marked so far.
func (r *runner) counted(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k := range r.marks {
		if k[0] == i {
			n = max(n, k[1])
		}
	}
	return n
}

// waitChildren waits until the init has N live children, none of them in old; it returns the
// last check's figures as an error when they never get there.
func (r *runner) waitChildren(ctx context.Context, old map[int]string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		kids, zombies, survivors := r.census(old)
		if kids == r.o.n && zombies == 0 && survivors == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d children, %d zombies, %d killed pids still there", d, kids, zombies, survivors)
		}
		if !benchutil.Sleep(ctx, 20*time.Millisecond) {
			return errors.New("interrupted")
		}
	}
}

// census counts the init's children, the zombies among them, and those that are in old (the same
// pid and start time: a pid alone may have been reused already).
func (r *runner) census(old map[int]string) (kids, zombies, survivors int) {
	for _, c := range benchutil.Children(r.pid) {
		kids++
		f := statFields(c)
		if len(f) > 19 && f[0] == "Z" {
			zombies++
		}
		if t, ok := old[c]; ok && len(f) > 19 && f[19] == t {
			survivors++
		}
	}
	return
}

// startTimes maps the init's children to their start times (field 22 of /proc/PID/stat).
func (r *runner) startTimes() map[int]string {
	out := map[int]string{}
	for _, c := range benchutil.Children(r.pid) {
		if f := statFields(c); len(f) > 19 {
			out[c] = f[19]
		}
	}
	return out
}

// info is what the storm reads of GET /v1/info.
type info struct {
	Reaped    uint64         `json:"reaped"`
	Processes map[string]int `json:"processes"`
}

// stats asks GET /v1/stats from the clients for the -d, after a second of warm-up.
func (r *runner) stats(ctx context.Context, res *result) error {
	n := r.o.n
	check := func(b []byte) error {
		var snap struct {
			Processes []json.RawMessage `json:"processes"`
		}
		if err := json.Unmarshal(b, &snap); err != nil {
			return err
		}
		if len(snap.Processes) != n {
			return fmt.Errorf("%d processes in the answer, want %d", len(snap.Processes), n)
		}
		return nil
	}
	rcs := make([]*rawhttp.Client, r.o.clients)
	for i := range rcs {
		rcs[i] = &rawhttp.Client{Sock: r.sock, Req: []byte("GET /v1/stats HTTP/1.1\r\nHost: gaffer\r\n\r\n")}
		defer rcs[i].Close()
	}
	body, err := rcs[0].Do()
	if err == nil {
		err = check(body)
	}
	if err != nil {
		return fmt.Errorf("first request: %w", err)
	}
	res.StatsBytes = len(body)
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
	)
	phase := func(d time.Duration, record bool) {
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for _, rc := range rcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				bad := 0
				var e error
				for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
					t := time.Now()
					body, err := rc.Do()
					if err == nil && i%100 == 0 { // the content of one answer in 100
						err = check(body)
					}
					mine = append(mine, time.Since(t))
					if err != nil {
						bad++
						e = err
					}
				}
				if record {
					mu.Lock()
					lat = append(lat, mine...)
					errs += bad
					if firstErr == nil {
						firstErr = e
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	phase(time.Second, false)
	t, c0 := time.Now(), cpuTicks(r.pid)
	phase(r.o.statsDur, true)
	el, c1 := time.Since(t), cpuTicks(r.pid)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "scale: stats: %d errors, the first: %v\n", errs, firstErr)
	}
	l := summarize(lat, errs)
	l.PerSec = math.Round(float64(len(lat)) / el.Seconds())
	res.Stats = &l
	res.StatsCPUPct = math.Round(ticksMs(c1-c0)/float64(el.Milliseconds())*1000) / 10
	return nil
}

// storm kills every supervised process at once and measures until all were restarted; k counts
// the storms before this one.
func (r *runner) storm(ctx context.Context, k int) (storm, error) {
	n := r.o.n
	var s storm
	old := r.startTimes()
	if len(old) != n {
		return s, fmt.Errorf("%d children before the storm, want %d", len(old), n)
	}
	// gaffer: one client asks GET /v1/info over and over, from a second before the kill until
	// the answers say every killed process was reaped and N run again.
	type answer struct {
		at   time.Time
		took time.Duration
		err  error
		in   info
	}
	var answers []answer
	stopAsking := make(chan struct{})
	asked := make(chan struct{})
	var kill0 time.Time
	var base info
	if r.init == "gaffer" {
		hc := &rawhttp.Client{Sock: r.sock, Req: []byte("GET /v1/info HTTP/1.1\r\nHost: gaffer\r\n\r\n")}
		defer hc.Close()
		if err := hc.GetJSON(&base); err != nil {
			return s, fmt.Errorf("GET /v1/info: %w", err)
		}
		go func() {
			defer close(asked)
			for {
				select {
				case <-stopAsking:
					return
				default:
				}
				var a answer
				a.at = time.Now()
				a.err = hc.GetJSON(&a.in)
				a.took = time.Since(a.at)
				answers = append(answers, a)
				time.Sleep(r.o.infoGap)
			}
		}()
	} else {
		close(asked)
	}
	if !benchutil.Sleep(ctx, time.Second) {
		close(stopAsking)
		<-asked
		return s, errors.New("interrupted")
	}
	c0 := cpuTicks(r.pid)
	t0 := mono()
	kill0 = time.Now()
	for c := range old {
		if syscall.Kill(c, syscall.SIGKILL) == nil {
			s.Killed++
		}
	}
	s.KillMs = msf(time.Since(kill0))
	errExit := r.waitMark(ctx, patExit, n*(k+1), stormWait)
	errStart := r.waitMark(ctx, patStart, n*(k+2), stormWait-time.Since(kill0))
	if errExit == nil {
		s.ExitedMs = r.since(t0, patExit, n*(k+1))
	}
	if errStart == nil {
		s.StartedMs = r.since(t0, patStart, n*(k+2))
	}
	s.CPUMs = ticksMs(cpuTicks(r.pid) - c0)
	// gaffer: wait for the answers to say it too (the start lines are written before a process
	// counts as running).
	if r.init == "gaffer" {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			// answers is the client's; read it only once the client has stopped, so look at the
			// process count from here instead.
			if kids, z, surv := r.census(old); kids == n && z == 0 && surv == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond) // a few answers after the end
	}
	close(stopAsking)
	<-asked
	var before, during []time.Duration
	errs := 0
	for _, a := range answers {
		if a.at.Before(kill0) {
			if a.err == nil {
				before = append(before, a.took)
			}
			continue
		}
		if a.err != nil {
			errs++
			continue
		}
		during = append(during, a.took)
		done := a.at.Add(a.took)
		if s.APIReapedMs == 0 && a.in.Reaped >= base.Reaped+uint64(n) {
			s.APIReapedMs = msf(done.Sub(kill0))
		}
		if s.APIRunningMs == 0 && a.in.Reaped >= base.Reaped+uint64(n) && a.in.Processes["running"] == n {
			s.APIRunningMs = msf(done.Sub(kill0))
		}
	}
	s.Before, s.During = summarize(before, 0), summarize(during, errs)
	if err := r.waitChildren(ctx, old, 10*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "scale: storm %d: %v\n", k+1, err)
	}
	s.Children, s.Zombies, s.Survivors = r.census(old)
	s.Complete = errExit == nil && errStart == nil && s.Children == n && s.Zombies == 0 && s.Survivors == 0 &&
		(r.init != "gaffer" || (s.APIRunningMs > 0 && errs == 0))
	if errStart != nil {
		fmt.Fprintf(os.Stderr, "scale: storm %d: %d start lines: %v\n", k+1, r.counted(patStart), errStart)
	}
	return s, nil
}

// startPerf records gaffer with perf during a phase (-perf): system-wide for the start, else
// gaffer's pid.
func (r *runner) startPerf(ctx context.Context, phase string, system bool) {
	if r.o.perfDir == "" || r.init != "gaffer" {
		return
	}
	out := filepath.Join(r.o.perfDir, r.layout+"-"+phase+".data")
	args := []string{"record", "-g", "-F", "999", "-o", out}
	if system {
		args = append(args, "-a")
	} else {
		args = append(args, "-p", strconv.Itoa(r.pid))
	}
	r.perf = exec.Command("perf", args...)
	r.perf.Stdout, r.perf.Stderr = io.Discard, io.Discard
	r.perf.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.perf.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "scale: perf: %v\n", err)
		r.perf = nil
		return
	}
	benchutil.Sleep(ctx, 500*time.Millisecond) // perf takes a moment to attach
}

// stopPerf ends the perf record under way (SIGINT: it writes its file and exits).
func (r *runner) stopPerf() {
	if r.perf == nil {
		return
	}
	_ = r.perf.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = r.perf.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = r.perf.Process.Kill()
		<-done
	}
	r.perf = nil
}

// stopAll ends whatever still runs: perf, the init (SIGKILL to unshare takes the namespace with
// it), and the counter once it has read what was left in the pipe.
func (r *runner) stopAll() {
	r.stopPerf()
	if r.unsh != nil && r.unsh.Process != nil && r.gone != nil {
		select {
		case <-r.gone:
		default:
			_ = r.unsh.Process.Kill()
			<-r.gone
		}
		// The init, orphaned, is reaped by this machine's init. It turns zombie only once every
		// process of its namespace was reaped: then the namespace is empty.
		for deadline := time.Now().Add(30 * time.Second); r.pid != 0 && time.Now().Before(deadline); {
			if f := statFields(r.pid); len(f) == 0 || f[0] == "Z" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if r.errFile != nil {
		r.errFile.Close() // unshare's Wait returned: nothing writes to it any more
		r.errFile = nil
	}
	if r.cnt != nil && r.cnt.Process != nil {
		select {
		case <-r.cntOut:
		case <-time.After(10 * time.Second):
			_ = r.cnt.Process.Kill()
			<-r.cntOut
		}
		_ = r.cnt.Wait()
	}
}

// ---- the verdict and the report ----

func verdict(rep *report) {
	var notes []string
	for _, r := range rep.Results {
		if r.Init != "gaffer" {
			continue
		}
		all, _, _ := startTimes(rep, "gaffer", r.Layout)
		if m := median(all); time.Duration(m*float64(time.Millisecond)) > maxStart {
			notes = append(notes, fmt.Sprintf("%s: %d started in %.0f ms (median of %d), want within %v", r.Layout, r.N, m, len(all), maxStart))
		}
		if r.IdleCPUPct >= maxIdlePct {
			notes = append(notes, fmt.Sprintf("%s: idle cpu %.2f%%, want under %.0f%%", r.Layout, r.IdleCPUPct, maxIdlePct))
		}
		if r.Stats != nil && time.Duration(r.Stats.P99Ms*float64(time.Millisecond)) >= maxStatsP99 {
			notes = append(notes, fmt.Sprintf("%s: GET /v1/stats p99 %.2f ms, want under %v", r.Layout, r.Stats.P99Ms, maxStatsP99))
		}
		if r.Stats != nil && r.Stats.Errors > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d GET /v1/stats errors", r.Layout, r.Stats.Errors))
		}
		for i, s := range r.Storms {
			if !s.Complete {
				notes = append(notes, fmt.Sprintf("%s: storm %d not complete (%d children, %d zombies, %d killed still there, %d API errors)",
					r.Layout, i+1, s.Children, s.Zombies, s.Survivors, s.During.Errors))
			}
		}
	}
	rep.Notes, rep.Met = notes, len(notes) == 0
}

func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "# scale %s: %d processes (sleep infinity, restart always), each init PID 1 of a new PID namespace, stdout into a counting pipe\n",
		rep.Time.Format(time.RFC3339), rep.Opts.N)
	fmt.Fprintf(w, "# %s\n# gaffer %s; idle %gs, stats %d clients %gs, %d storms, gaffer backoff %v, nice %d\n\n", rep.Machine, rep.Gaffer,
		rep.Opts.IdleS, rep.Opts.Clients, rep.Opts.StatsS, rep.Opts.Storms, time.Duration(rep.Opts.BackoffS*float64(time.Second)), rep.Opts.Nice)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "# start of %d: ms from unshare's start until the counter read the last start line; the init's own cpu ms by then\n", rep.Opts.N)
	fmt.Fprintln(tw, "layout\tinit\tmedian ms\tmin\tmax\truns\tfirst line ms\tcpu ms\t")
	var ratios []string
	for _, layout := range []string{"instances", "entries"} {
		med, medCPU := map[string]float64{}, map[string]float64{}
		for _, init := range []string{"go-min", "gaffer", "supervisord"} {
			all, first, cpu := startTimes(rep, init, layout)
			if len(all) == 0 {
				continue
			}
			med[init], medCPU[init] = median(all), median(cpu)
			vals := make([]string, len(all))
			for i, v := range all {
				vals[i] = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t\n", layout, init, med[init], slices.Min(all), slices.Max(all), strings.Join(vals, " "), median(first), medCPU[init])
		}
		if g := med["gaffer"]; g > 0 {
			var parts []string
			for _, peer := range []string{"go-min", "supervisord"} {
				if med[peer] > 0 {
					parts = append(parts, fmt.Sprintf("gaffer/%s %s (cpu %s)", peer, ratio(g, med[peer]), ratio(medCPU["gaffer"], medCPU[peer])))
				}
			}
			if len(parts) > 0 {
				ratios = append(ratios, layout+": "+strings.Join(parts, ", "))
			}
		}
	}
	tw.Flush()
	for _, l := range ratios {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "full run\tinit\tfirst ms\tall started ms\tidle cpu ms\tidle cpu %\twake-ups/s\tVmRSS kB\tRssAnon kB\tthreads\tfds\tstop ms\texit\tload\t")
	for _, r := range rep.Results {
		all := fmt.Sprintf("%.0f", r.StartAll)
		if r.RunningAll > 0 {
			all += fmt.Sprintf(" (RUNNING %.0f)", r.RunningAll)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%.0f\t%.3f\t%.1f\t%d\t%d\t%d\t%d\t%.0f\t%d\t%s\t\n", r.Layout, r.Init, r.StartFirst, all,
			r.IdleCPUMs, r.IdleCPUPct, r.IdleWakes, r.VmRSS, r.RssAnon, r.Threads, r.FDs, r.StopMs, r.ExitCode, r.Load)
	}
	tw.Flush()
	for _, layout := range []string{"instances", "entries"} {
		g, s := find(rep, "gaffer", layout), find(rep, "supervisord", layout)
		if g == nil || s == nil {
			continue
		}
		fmt.Fprintf(w, "%s, gaffer/supervisord: all started %s, idle cpu %s, VmRSS %s, RssAnon %s, stop %s\n", layout,
			ratio(g.StartAll, s.StartAll), ratio(g.IdleCPUMs, s.IdleCPUMs), ratio(float64(g.VmRSS), float64(s.VmRSS)), ratio(float64(g.RssAnon), float64(s.RssAnon)), ratio(g.StopMs, s.StopMs))
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "GET /v1/stats\tclients\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tanswer B\tgaffer cpu %\t")
	for _, r := range rep.Results {
		if r.Stats != nil {
			l := r.Stats
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%.1f\t\n", r.Layout, rep.Opts.Clients, l.PerSec, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.Errors, r.StatsBytes, r.StatsCPUPct)
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "exit storm\tinit\t#\tkilled\tkill ms\texits read ms\trestarts read ms\tinit cpu ms\tAPI: reaped ms\tall running ms\t/v1/info n\tp50 ms\tp99 ms\tmax ms\terrors\tbefore p50/p99 ms\tcomplete\t")
	for _, r := range rep.Results {
		for i, s := range r.Storms {
			api := func(v float64) string {
				if r.Init != "gaffer" {
					return "-"
				}
				return fmt.Sprintf("%.0f", v)
			}
			lat := "-\t-\t-\t-\t-\t-"
			if r.Init == "gaffer" {
				lat = fmt.Sprintf("%d\t%.2f\t%.2f\t%.2f\t%d\t%.2f/%.2f", s.During.N, s.During.P50Ms, s.During.P99Ms, s.During.MaxMs, s.During.Errors, s.Before.P50Ms, s.Before.P99Ms)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%v\t\n", r.Layout, r.Init, i+1, s.Killed, s.KillMs, s.ExitedMs, s.StartedMs, s.CPUMs,
				api(s.APIReapedMs), api(s.APIRunningMs), lat, s.Complete)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	if rep.Met {
		fmt.Fprintf(w, "targets (gaffer): all started within %v, idle cpu under %.0f%%, GET /v1/stats p99 under %v, every storm reaped and restarted with the API answering: met\n",
			maxStart, maxIdlePct, maxStatsP99)
	} else {
		fmt.Fprintf(w, "targets, NOT met: %s\n", strings.Join(rep.Notes, "; "))
	}
}

// startTimes lists the start times (all, first line) and the init's cpu time meanwhile, of init
// with layout: the start-only rounds, then the full run.
func startTimes(rep *report, init, layout string) (all, first, cpu []float64) {
	for _, s := range rep.Starts {
		if s.Init == init && s.Layout == layout {
			all, first, cpu = append(all, s.AllMs), append(first, s.FirstMs), append(cpu, s.CPUMs)
		}
	}
	if r := find(rep, init, layout); r != nil {
		all, first, cpu = append(all, r.StartAll), append(first, r.StartFirst), append(cpu, r.StartCPUMs)
	}
	return all, first, cpu
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func find(rep *report, init, layout string) *result {
	for _, r := range rep.Results {
		if r.Init == init && r.Layout == layout {
			return r
		}
	}
	return nil
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// ---- /proc ----

// cpuTicks is utime+stime of pid (every thread) in clock ticks.
func cpuTicks(pid int) int64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	// Fields after the command: state is 0, utime is 11, stime is 12.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// ticksMs converts clock ticks (USER_HZ, 100 on Linux) to milliseconds.
func ticksMs(t int64) float64 { return float64(t) * 10 }

// ctxSwitches sums the voluntary and involuntary context switches of every thread of pid.
func ctxSwitches(pid int) int64 {
	var n int64
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

// machine is one line about where the numbers come from.
func machine() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return fmt.Sprintf("kernel %s, %d cpus, load %s", unix.ByteSliceToString(u.Release[:]), numCPU(), benchutil.Loadavg())
}

func numCPU() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return 0
	}
	return set.Count()
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// ---- HTTP/1.1 by hand over the Unix socket ----
