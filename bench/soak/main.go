// Command soak runs `gaffer up` as PID 1 of a new PID namespace for a long time under steady churn
// and reports whether gaffer stays flat: its VmRSS, RssAnon, open fds and goroutines at the start
// (after a warm-up) and at the end, with the growth in %, and the zombies left in its namespace.
// By default 10 minutes after a 30 s warm-up; -short: 60 s after 20 s; -d and -warmup set them.
//
// The load, all at once for the whole run:
//
//   - flapper: `sleep 0.09` with restart = "always" and a 10 ms backoff, so it exits and is
//     restarted about every 100 ms;
//   - ten talkers (this program, -child talk) writing lines continuously (100 lines/s of 100 bytes
//     each by default), and saying so when they get SIGUSR1 or SIGHUP; each starts with 3000 lines
//     at five times that rate, one write each as later on: more than gaffer's log ring of a process
//     holds (256 KiB by default), so that the rings are full of what they hold in the steady state
//     (one chunk per read, here per line) within seconds and their filling is not mistaken for
//     growth;
//   - gaffer's stdout going into a pipe read by a separate counting process (this program,
//     -child count), not /dev/null;
//   - API clients: one polling GET /v1/stats, two following talkers' logs
//     (GET /v1/processes/NAME/logs?follow=1) and reading every line, one sending signals at random
//     (POST /v1/processes/NAME/signal with USR1 or HUP to a talker or the flapper, and SIGUSR1 to
//     gaffer itself, which forwards it to every process).
//
// With -storm, a process (a shell that runs `(true &)` N times) makes -orphans short-lived orphans
// once the warm-up is over, which gaffer, as PID 1, must reap; meanwhile one client asks
// GET /v1/info and GET /v1/processes in turn, and the latency of those answers is reported (p50,
// p99, max), beside the same measured for a few seconds before the storm.
//
// It is not a test: nothing fails on a time. It exits 0 when everything wanted was met (no growth
// beyond 10% after the warm-up, no zombie, with -storm every orphan reaped and API p99 under 50 ms),
// 3 when a wanted figure was not met (after the report), 1 when something broke (gaffer died, the
// API did not answer), 2 on a usage error. Every process it started is gone when it exits, also on
// SIGINT and SIGTERM: gaffer runs under `unshare --kill-child`, so the namespace dies with this
// program even when it is SIGKILLed.
//
// Needs root (PID namespaces) and unshare (util-linux).
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
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

// options are the command line.
type options struct {
	gaffer    string
	duration  time.Duration
	warmup    time.Duration
	short     bool
	storm     bool
	orphans   int
	talkers   int
	rate      int
	burst     int
	seed      uint64
	jsonOut   string
	stderrOut string
}

// Wanted: what "flat" means.
const (
	maxGrowthPct = 10.0
	maxStormP99  = 50 * time.Millisecond
)

func main() {
	var o options
	child := flag.String("child", "", "internal: run as a helper (talk, count)")
	flag.StringVar(&o.gaffer, "gaffer", "", "the gaffer `binary` (default: build the working tree like tests/main_test.go)")
	flag.DurationVar(&o.duration, "d", 10*time.Minute, "how long gaffer runs, warm-up included (60s with -short)")
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "churn before the first sample (20s with -short)")
	flag.BoolVar(&o.short, "short", false, "a quick run: -d 60s -warmup 10s unless given")
	flag.BoolVar(&o.storm, "storm", false, "after the warm-up, make -orphans orphans and measure the API's latency meanwhile")
	flag.IntVar(&o.orphans, "orphans", 20000, "orphans made by -storm")
	flag.IntVar(&o.talkers, "talkers", 10, "processes writing output continuously")
	flag.IntVar(&o.rate, "rate", 100, "lines per second each talker writes (-child talk: its own rate)")
	flag.IntVar(&o.burst, "burst", 3000, "lines each talker writes first, at five times -rate")
	flag.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "seed of the random signals")
	flag.StringVar(&o.jsonOut, "json", "", "write the figures as JSON to `file`")
	flag.StringVar(&o.stderrOut, "stderr", "", "also write gaffer's stderr to `file` (GODEBUG=gctrace=1 in the environment reaches gaffer)")
	flag.Parse()
	switch *child {
	case "":
	case "talk":
		talk(o.rate, o.burst)
		return
	case "count":
		count()
		return
	default:
		fmt.Fprintf(os.Stderr, "soak: unknown -child %q\n", *child)
		os.Exit(2)
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.short {
		if !set["d"] {
			o.duration = 60 * time.Second
		}
		if !set["warmup"] {
			// 10 s read +7-17% on runs flat from 17 s on: gaffer's heap is still settling then.
			o.warmup = 20 * time.Second
		}
	}
	if flag.NArg() > 0 || o.warmup <= 0 || o.duration <= o.warmup || o.talkers < 1 || o.rate < 1 || o.burst < 0 || o.orphans < 1 {
		fmt.Fprintln(os.Stderr, "soak: usage: soak [-short] [-d 10m] [-warmup 30s] [-storm [-orphans 20000]] [-gaffer BIN] [-json FILE]; -d must exceed -warmup")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "soak: needs root (gaffer runs as PID 1 of a new PID namespace)")
		os.Exit(1)
	}
	// A closed stdout (`| head`) is then an error of the report's writes, not death by SIGPIPE
	// before the cleanup.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	cancel()
	os.Exit(code)
}

// ---- the helpers gaffer runs, and the counter ----

// talk writes lines of about 100 bytes, one write each: burst lines at five times rate per second,
// then rate per second until killed, and a line for every SIGUSR1 or SIGHUP.
func talk(rate, burst int) {
	name := os.Getenv("GAFFER_PROCESS_NAME")
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGHUP)
	w := bufio.NewWriter(os.Stdout)
	every := time.Second / time.Duration(rate)
	tick := time.NewTicker(every)
	if burst > 0 {
		tick.Reset(every / 5)
	}
	filler := strings.Repeat("x", 70)
	for seq := 0; ; {
		select {
		case s := <-sigs:
			fmt.Fprintf(w, "%s got %v\n", name, s)
		case <-tick.C:
			fmt.Fprintf(w, "%s seq=%08d %s\n", name, seq, filler)
			if seq++; seq == burst {
				tick.Reset(every)
			}
		}
		if err := w.Flush(); err != nil {
			os.Exit(1)
		}
	}
}

// count reads gaffer's stdout and prints "bytes lines malformed" once a second and, prefixed by
// "final", at EOF. A malformed line is one without gaffer's "NAME | " prefix.
func count() {
	var nbytes, lines, bad atomic.Int64
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Bytes()
			nbytes.Add(int64(len(l)) + 1)
			lines.Add(1)
			if !strings.Contains(string(l), " | ") {
				bad.Add(1)
			}
		}
		close(done)
	}()
	tick := time.NewTicker(time.Second)
	for {
		select {
		case <-tick.C:
			fmt.Printf("%d %d %d\n", nbytes.Load(), lines.Load(), bad.Load())
		case <-done:
			fmt.Printf("final %d %d %d\n", nbytes.Load(), lines.Load(), bad.Load())
			return
		}
	}
}

// ---- the run ----

// soak is one run: the processes it started and what it counted.
type soak struct {
	o      options
	dir    string
	sock   string
	self   string
	unsh   *exec.Cmd     // unshare, whose child is gaffer
	gpid   int           // gaffer's pid as seen from here
	gone   chan struct{} // closed when unshare has exited
	cnt    *exec.Cmd     // the counter
	cntOut chan struct{} // closed when the counter's output ended
	stderr *tail         // gaffer's stderr
	// stderrFile gets a copy of it (-stderr); closed by stopAll.
	stderrFile *os.File

	mu      sync.Mutex
	counted [3]int64 // bytes, lines, malformed lines of gaffer's stdout, as last reported
	final   bool     // counted is the counter's final report

	statsLat                        []time.Duration
	statsErr                        int
	followed, reconnects, followErr atomic.Int64
	sigAPI, sigConflict, sigErr     atomic.Int64
	sigGaffer                       atomic.Int64
}

// sample is what is read of gaffer at one moment; memory in kB.
type sample struct {
	At            float64 `json:"t_s"` // since gaffer started
	VmRSS         int     `json:"vmrss_kb"`
	RssAnon       int     `json:"rssanon_kb"`
	Threads       int     `json:"threads"`
	FDs           int     `json:"fds"`
	Goroutines    *int    `json:"goroutines"` // nil when /v1/info does not say
	Zombies       int     `json:"zombies"`
	ZombiesReaped uint64  `json:"zombies_reaped"`
	Reaped        uint64  `json:"reaped"`
	Restarts      int     `json:"flapper_restarts"`
	Lines         int64   `json:"lines_relayed"`
}

// latency sums up request durations.
type latency struct {
	N      int     `json:"requests"`
	Errors int     `json:"errors"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// stormResult is what -storm measured.
type stormResult struct {
	Orphans     int                `json:"orphans"`
	Reaped      uint64             `json:"zombies_reaped_rise"`
	Seconds     float64            `json:"seconds"`
	MaxZombies  int                `json:"max_zombies_seen"`
	Before      map[string]latency `json:"latency_before"`
	During      map[string]latency `json:"latency_during"`
	DuringAllMs latency            `json:"latency_during_all"`
}

// result is the whole report.
type result struct {
	Time        time.Time    `json:"time"`
	Gaffer      string       `json:"gaffer"`
	DurationS   float64      `json:"duration_s"`
	WarmupS     float64      `json:"warmup_s"`
	Talkers     int          `json:"talkers"`
	Rate        int          `json:"rate"`
	Burst       int          `json:"burst"`
	Seed        uint64       `json:"seed"`
	Start, End  sample       `json:"-"`
	Timeline    []sample     `json:"timeline"`
	Growth      [4]*float64  `json:"-"`
	GrowthPct   any          `json:"growth_percent"`
	Stats       latency      `json:"stats_polls"`
	Followed    int64        `json:"log_lines_followed"`
	Reconnects  int64        `json:"log_follow_reconnects"`
	FollowErr   int64        `json:"log_follow_errors"`
	SigAPI      int64        `json:"signals_api_ok"`
	SigConflict int64        `json:"signals_api_409"`
	SigErr      int64        `json:"signals_api_errors"`
	SigGaffer   int64        `json:"signals_to_gaffer"`
	Relayed     [3]int64     `json:"relayed_bytes_lines_malformed"`
	ExitCode    int          `json:"gaffer_exit_code"`
	StderrLines int          `json:"gaffer_stderr_lines"`
	Storm       *stormResult `json:"storm,omitempty"`
	Met         bool         `json:"met"`
	Notes       []string     `json:"not_met,omitempty"`
}

func run(ctx context.Context, o options) int {
	s := &soak{o: o, stderr: &tail{max: 64 << 10}}
	var err error
	if s.self, err = os.Executable(); err != nil {
		return fail("cannot find this program: %v", err)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return fail("unshare (util-linux) is not installed")
	}
	if s.dir, err = os.MkdirTemp("", "gaffer-soak-"); err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(s.dir)
	if o.gaffer == "" {
		fmt.Fprintln(os.Stderr, "soak: building gaffer")
		if o.gaffer, err = buildGaffer(s.dir); err != nil {
			return fail("%v", err)
		}
		s.o.gaffer = o.gaffer
	}
	defer s.stopAll()
	if err := s.start(ctx); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "soak: gaffer pid %d, %v (warm-up %v)%s\n", s.gpid, o.duration, o.warmup,
		map[bool]string{true: fmt.Sprintf(", storm of %d orphans", o.orphans)}[o.storm])
	begin := time.Now()
	res := &result{Time: time.Now().UTC(), Gaffer: o.gaffer, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(),
		Talkers: o.talkers, Rate: o.rate, Burst: o.burst, Seed: o.seed}

	work, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	s.startLoad(work, &wg)
	stop := func() { stopWork(); wg.Wait() }
	defer stop()

	hc := unixClient(s.sock)
	// wait waits until the given time, or says why the run must end early.
	wait := func(until time.Time) error {
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-s.gone:
			return errors.New("gaffer exited during the run")
		case <-time.After(time.Until(until)):
			return nil
		}
	}
	every := max(o.duration/10, 5*time.Second)
	if err := wait(begin.Add(o.warmup)); err != nil {
		return s.broke(err)
	}
	res.Start = s.sample(hc, begin)
	res.Timeline = append(res.Timeline, res.Start)
	fmt.Fprintf(os.Stderr, "soak: start sample taken at %.0fs\n", res.Start.At)
	end := begin.Add(o.duration)
	if o.storm {
		st, err := s.runStorm(ctx, hc, begin, res)
		if err != nil {
			return s.broke(err)
		}
		res.Storm = st
		if t := time.Now().Add(5 * time.Second); t.After(end) {
			end = t
		}
	}
	for at := time.Now().Add(every); !at.After(end.Add(-every / 2)); at = at.Add(every) {
		if err := wait(at); err != nil {
			return s.broke(err)
		}
		res.Timeline = append(res.Timeline, s.sample(hc, begin))
	}
	if err := wait(end); err != nil {
		return s.broke(err)
	}
	res.End = s.sample(hc, begin)
	res.Timeline = append(res.Timeline, res.End)
	stop()
	// A signal sent just before the SIGTERM may still kill the flapper (no handler) during the
	// shutdown, which gaffer rightly reports as an unclean stop (exit 138): let the last ones land
	// and the restarts they cause settle first. A benchmark's pause, not a test's synchronisation.
	time.Sleep(time.Second)
	res.ExitCode = s.shutdown()
	s.collect(res)
	s.verdict(res)
	report(os.Stdout, res)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	if !res.Met {
		return 3
	}
	return 0
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "soak: "+format+"\n", args...)
	return 1
}

// broke reports why the run ended early, with the end of gaffer's stderr.
func (s *soak) broke(err error) int {
	if t := s.stderr.String(); t != "" {
		fmt.Fprintf(os.Stderr, "soak: gaffer's stderr ends with:\n%s\n", t)
	}
	return fail("%v", err)
}

// buildGaffer builds the working tree as tests/main_test.go does, into dir.
func buildGaffer(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("cannot find the module to build gaffer from: run from the repository, or give -gaffer")
	}
	bin := filepath.Join(dir, "gaffer")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build gaffer: %v\n%s", err, out)
	}
	return bin, nil
}

// config is the gaffer.toml of the run.
func (s *soak) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[settings]\nsocket = %q\ngrace = \"5s\"\n", s.sock)
	b.WriteString(`
[process.flapper]
cmd = ["sleep", "0.09"]
restart = "always"
backoff = "10ms"
backoff_max = "10ms"
`)
	for i := 1; i <= s.o.talkers; i++ {
		fmt.Fprintf(&b, "\n[process.talk%02d]\ncmd = [%q, \"-child\", \"talk\", \"-rate\", \"%d\", \"-burst\", \"%d\"]\n", i, s.self, s.o.rate, s.o.burst)
	}
	if s.o.storm {
		// Each `(true &)` is a subshell whose background child outlives it: an orphan for PID 1.
		// The signals the soak sends at random must not end the storm, so the shell ignores them.
		b.WriteString(`
[process.storm]
cmd = ["sh", "-c", "trap '' USR1 HUP; while read n; do i=0; while [ $i -lt $n ]; do (true &); i=$((i+1)); done; echo storm done $n; done"]
redirect_input = true
`)
	}
	return b.String()
}

// start writes the config and starts the counter and gaffer, and waits until every talker runs.
func (s *soak) start(ctx context.Context) error {
	s.sock = filepath.Join(s.dir, "gaffer.sock")
	conf := filepath.Join(s.dir, "gaffer.toml")
	if err := os.WriteFile(conf, []byte(s.config()), 0o644); err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	defer w.Close()

	s.cnt = exec.Command(s.self, "-child", "count")
	s.cnt.Stdin, s.cnt.Stderr = r, os.Stderr
	s.cnt.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cout, err := s.cnt.StdoutPipe()
	if err != nil {
		return err
	}
	if err := s.cnt.Start(); err != nil {
		return fmt.Errorf("cannot start the counter: %w", err)
	}
	s.cntOut = make(chan struct{})
	go s.readCounts(cout)

	// --kill-child: unshare's child (gaffer) gets SIGKILL when unshare dies, however it dies.
	s.unsh = exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", s.o.gaffer, "up", "-c", conf)
	s.unsh.Dir = s.dir
	s.unsh.Stdout = w
	s.unsh.Stderr = s.stderr
	if s.o.stderrOut != "" {
		f, err := os.Create(s.o.stderrOut)
		if err != nil {
			return err
		}
		s.stderrFile = f
		s.unsh.Stderr = io.MultiWriter(s.stderr, f)
	}
	// Its own process group, so that a Ctrl-C is this program's to handle; SIGKILL when it dies.
	s.unsh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.unsh.Start(); err != nil {
		return fmt.Errorf("cannot start unshare: %w", err)
	}
	s.gone = make(chan struct{})
	go func() { _ = s.unsh.Wait(); close(s.gone) }()

	// gaffer is unshare's child once that has exec'd the binary.
	exe, err := filepath.EvalSymlinks(s.o.gaffer)
	if err != nil {
		return err
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.gpid == 0 {
		for _, c := range benchutil.Children(s.unsh.Process.Pid) {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c)); l == exe {
				s.gpid = c
			}
		}
		if err := s.pause(ctx, deadline, "gaffer to start"); err != nil {
			return err
		}
	}
	hc := unixClient(s.sock)
	for {
		var ps []struct {
			Name string `json:"name"`
			Pid  int    `json:"pid"`
		}
		if err := getJSON(hc, "/v1/processes", &ps); err == nil {
			n := 0
			for _, p := range ps {
				if strings.HasPrefix(p.Name, "talk") && p.Pid != 0 {
					n++
				}
			}
			if n == s.o.talkers {
				return nil
			}
		}
		if err := s.pause(ctx, deadline, "the talkers to run"); err != nil {
			return err
		}
	}
}

// pause waits a little, or says why waiting for what is over.
func (s *soak) pause(ctx context.Context, deadline time.Time, what string) error {
	select {
	case <-ctx.Done():
		return errors.New("interrupted")
	case <-s.gone:
		return fmt.Errorf("gaffer exited while waiting for %s: %s", what, s.stderr.String())
	case <-time.After(20 * time.Millisecond):
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("timed out after 30s waiting for %s", what)
	}
	return nil
}

func (s *soak) readCounts(r io.Reader) {
	defer close(s.cntOut)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		final := len(f) == 4 && f[0] == "final"
		if final {
			f = f[1:]
		}
		if len(f) != 3 {
			continue
		}
		var c [3]int64
		for i := range c {
			c[i], _ = strconv.ParseInt(f[i], 10, 64)
		}
		s.mu.Lock()
		s.counted, s.final = c, final
		s.mu.Unlock()
	}
}

// startLoad starts the API clients and the random signals.
func (s *soak) startLoad(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(4)
	go func() { defer wg.Done(); s.pollStats(ctx) }()
	for _, name := range []string{"talk01", fmt.Sprintf("talk%02d", s.o.talkers)} {
		go func() { defer wg.Done(); s.follow(ctx, name) }()
	}
	go func() { defer wg.Done(); s.signals(ctx) }()
}

// pollStats asks GET /v1/stats four times a second.
func (s *soak) pollStats(ctx context.Context) {
	hc := unixClient(s.sock)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t0 := time.Now()
		var st struct {
			Processes []json.RawMessage `json:"processes"`
		}
		err := getJSON(hc, "/v1/stats", &st)
		d := time.Since(t0)
		s.mu.Lock()
		if err != nil || len(st.Processes) == 0 {
			if ctx.Err() == nil {
				s.statsErr++
			}
		} else {
			s.statsLat = append(s.statsLat, d)
		}
		s.mu.Unlock()
	}
}

// follow reads name's logs with follow=1, and follows again when the stream ends.
func (s *soak) follow(ctx context.Context, name string) {
	hc := &http.Client{Transport: unixTransport(s.sock)} // no timeout: the stream is endless
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			s.reconnects.Add(1)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://gaffer/v1/processes/"+name+"/logs?tail=10&follow=1", nil)
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				s.followErr.Add(1)
				benchutil.Sleep(ctx, 100*time.Millisecond)
			}
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte(`"line"`)) {
				s.followed.Add(1)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != 200 && ctx.Err() == nil {
			s.followErr.Add(1)
			benchutil.Sleep(ctx, 100*time.Millisecond)
		}
	}
}

// signals sends a signal every 20-200 ms: USR1 or HUP over the API to a talker (60%) or to the
// flapper (30%, which dies of it or is between runs: 409), or SIGUSR1 to gaffer (10%), which
// forwards it to every running process.
func (s *soak) signals(ctx context.Context) {
	rng := rand.New(rand.NewPCG(s.o.seed, 0x50a4))
	hc := unixClient(s.sock)
	for benchutil.Sleep(ctx, time.Duration(20+rng.IntN(180))*time.Millisecond) {
		p := rng.IntN(10)
		if p == 0 {
			if err := syscall.Kill(s.gpid, syscall.SIGUSR1); err == nil {
				s.sigGaffer.Add(1)
			}
			continue
		}
		name := "flapper"
		if p > 3 {
			name = fmt.Sprintf("talk%02d", 1+rng.IntN(s.o.talkers))
		}
		sig := []string{"USR1", "HUP"}[rng.IntN(2)]
		code, err := post(hc, "/v1/processes/"+name+"/signal", `{"signal":"`+sig+`"}`)
		switch {
		case ctx.Err() != nil:
		case err == nil && code == 200:
			s.sigAPI.Add(1)
		case err == nil && code == 409:
			s.sigConflict.Add(1)
		default:
			s.sigErr.Add(1)
		}
	}
}

// sample reads gaffer's figures: each is the median of five readings 100 ms apart, as fds and
// goroutines move with the flapper's runs and the API's connections.
func (s *soak) sample(hc *http.Client, begin time.Time) sample {
	var rss, anon, threads, fds, gor, zomb []int
	var info infoAnswer
	var haveG bool
	for i := range 5 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		st := benchutil.Status(s.gpid)
		rss, anon, threads = append(rss, st["VmRSS"]), append(anon, st["RssAnon"]), append(threads, st["Threads"])
		fds = append(fds, benchutil.CountFDs(s.gpid))
		zomb = append(zomb, zombies(s.gpid))
		if err := getJSON(hc, "/v1/info", &info); err == nil && info.Goroutines != nil {
			haveG = true
			gor = append(gor, *info.Goroutines)
		}
	}
	sm := sample{At: time.Since(begin).Seconds(), VmRSS: median(rss), RssAnon: median(anon), Threads: median(threads),
		FDs: median(fds), Zombies: median(zomb), ZombiesReaped: info.ZombiesReaped, Reaped: info.Reaped}
	if haveG {
		g := median(gor)
		sm.Goroutines = &g
	}
	var ps []struct {
		Name     string `json:"name"`
		Restarts int    `json:"restarts"`
	}
	if getJSON(hc, "/v1/processes", &ps) == nil {
		for _, p := range ps {
			if p.Name == "flapper" {
				sm.Restarts = p.Restarts
			}
		}
	}
	s.mu.Lock()
	sm.Lines = s.counted[1]
	s.mu.Unlock()
	return sm
}

type infoAnswer struct {
	ZombiesReaped uint64 `json:"zombies_reaped"`
	Reaped        uint64 `json:"reaped"`
	Goroutines    *int   `json:"goroutines"`
}

// runStorm measures the API's latency for 3 s, then has the storm process make the orphans and
// measures it again until gaffer has reaped them all (at most 5 minutes).
func (s *soak) runStorm(ctx context.Context, hc *http.Client, begin time.Time, res *result) (*stormResult, error) {
	st := &stormResult{Orphans: s.o.orphans}
	var base infoAnswer
	if err := getJSON(hc, "/v1/info", &base); err != nil {
		return nil, fmt.Errorf("GET /v1/info: %w", err)
	}
	lc := unixClient(s.sock)
	measure := func(ctx context.Context) map[string][]time.Duration {
		lat := map[string][]time.Duration{"/v1/info": nil, "/v1/processes": nil, "errors": nil}
		for i := 0; ctx.Err() == nil; i++ {
			route := []string{"/v1/info", "/v1/processes"}[i%2]
			t0 := time.Now()
			var v any
			if err := getJSON(lc, route, &v); err != nil {
				if ctx.Err() == nil {
					lat["errors"] = append(lat["errors"], 0)
				}
			} else {
				lat[route] = append(lat[route], time.Since(t0))
			}
			benchutil.Sleep(ctx, 2*time.Millisecond)
		}
		return lat
	}
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	st.Before = summarize(measure(bctx))
	bcancel()

	fmt.Fprintf(os.Stderr, "soak: storm of %d orphans\n", s.o.orphans)
	t0 := time.Now()
	if code, err := post(hc, "/v1/processes/storm/stdin", strconv.Itoa(s.o.orphans)+"\n"); err != nil || code != 200 {
		return nil, fmt.Errorf("POST /v1/processes/storm/stdin: status %d, %v", code, err)
	}
	dctx, dcancel := context.WithCancel(ctx)
	during := make(chan map[string][]time.Duration)
	go func() { during <- measure(dctx) }()
	want := base.ZombiesReaped + uint64(s.o.orphans)
	deadline := time.Now().Add(5 * time.Minute)
	var now infoAnswer
	for {
		if z := zombies(s.gpid); z > st.MaxZombies {
			st.MaxZombies = z
		}
		if err := getJSON(hc, "/v1/info", &now); err == nil && now.ZombiesReaped >= want {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "soak: storm: %d of %d orphans reaped after 5 minutes\n", now.ZombiesReaped-base.ZombiesReaped, s.o.orphans)
			break
		}
		select {
		case <-ctx.Done():
			dcancel()
			<-during
			return nil, errors.New("interrupted")
		case <-s.gone:
			dcancel()
			<-during
			return nil, errors.New("gaffer exited during the storm")
		case <-time.After(200 * time.Millisecond):
		}
	}
	st.Seconds = time.Since(t0).Seconds()
	dcancel()
	lat := <-during
	st.During = summarize(lat)
	st.DuringAllMs = summarizeOne(append(slices.Clone(lat["/v1/info"]), lat["/v1/processes"]...), len(lat["errors"]))
	// Count again a moment later: more than asked for means orphans from elsewhere.
	time.Sleep(time.Second)
	if err := getJSON(hc, "/v1/info", &now); err == nil {
		st.Reaped = now.ZombiesReaped - base.ZombiesReaped
	}
	fmt.Fprintf(os.Stderr, "soak: storm over after %.1fs\n", st.Seconds)
	return st, nil
}

func summarize(lat map[string][]time.Duration) map[string]latency {
	out := map[string]latency{}
	for _, route := range []string{"/v1/info", "/v1/processes"} {
		out[route] = summarizeOne(lat[route], 0)
	}
	if e := len(lat["errors"]); e > 0 {
		out["errors"] = latency{Errors: e}
	}
	return out
}

func summarizeOne(d []time.Duration, errs int) latency {
	l := latency{N: len(d), Errors: errs}
	if len(d) == 0 {
		return l
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return math.Round(float64(x)/1e4) / 100 }
	q := func(p float64) time.Duration { return d[max(0, int(math.Ceil(p*float64(len(d))))-1)] }
	l.P50Ms, l.P99Ms, l.MaxMs = ms(q(0.5)), ms(q(0.99)), ms(d[len(d)-1])
	return l
}

// shutdown stops gaffer the ordered way (SIGTERM) and returns unshare's exit code, which is
// gaffer's; SIGKILL after 30 s.
func (s *soak) shutdown() int {
	_ = syscall.Kill(s.gpid, syscall.SIGTERM)
	select {
	case <-s.gone:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "soak: gaffer still running 30s after SIGTERM: SIGKILL")
		_ = s.unsh.Process.Kill()
		<-s.gone
	}
	return s.unsh.ProcessState.ExitCode()
}

// stopAll ends whatever still runs: gaffer (SIGKILL to unshare takes the namespace with it) and
// the counter, once it has read what was left in the pipe.
func (s *soak) stopAll() {
	if s.unsh != nil && s.unsh.Process != nil {
		select {
		case <-s.gone:
		default:
			_ = s.unsh.Process.Kill()
			<-s.gone
		}
	}
	if s.cnt != nil && s.cnt.Process != nil {
		select {
		case <-s.cntOut:
		case <-time.After(10 * time.Second):
			_ = s.cnt.Process.Kill()
			<-s.cntOut
		}
		_ = s.cnt.Wait()
	}
	if s.stderrFile != nil {
		s.stderrFile.Close()
		s.stderrFile = nil
	}
}

// collect gathers the counts once everything has stopped.
func (s *soak) collect(res *result) {
	s.stopAll()
	s.mu.Lock()
	defer s.mu.Unlock()
	res.Stats = summarizeOne(s.statsLat, s.statsErr)
	res.Relayed = s.counted
	if !s.final {
		res.Notes = append(res.Notes, "the counter gave no final count")
	}
	res.Followed, res.Reconnects, res.FollowErr = s.followed.Load(), s.reconnects.Load(), s.followErr.Load()
	res.SigAPI, res.SigConflict, res.SigErr, res.SigGaffer = s.sigAPI.Load(), s.sigConflict.Load(), s.sigErr.Load(), s.sigGaffer.Load()
	s.stderr.mu.Lock()
	res.StderrLines = s.stderr.lines
	s.stderr.mu.Unlock()
}

// verdict compares the figures with what is wanted.
func (s *soak) verdict(res *result) {
	a, b := res.Start, res.End
	pairs := [4][2]int{{a.VmRSS, b.VmRSS}, {a.RssAnon, b.RssAnon}, {a.FDs, b.FDs}}
	if a.Goroutines != nil && b.Goroutines != nil {
		pairs[3] = [2]int{*a.Goroutines, *b.Goroutines}
	}
	names := []string{"VmRSS", "RssAnon", "open fds", "goroutines"}
	growth := map[string]*float64{}
	for i, p := range pairs {
		if i == 3 && (a.Goroutines == nil || b.Goroutines == nil) {
			growth[names[i]] = nil
			continue
		}
		g := math.Round(pct(p[0], p[1])*10) / 10
		res.Growth[i] = &g
		growth[names[i]] = &g
		if g > maxGrowthPct {
			res.Notes = append(res.Notes, fmt.Sprintf("%s grew %.1f%% (%d -> %d)", names[i], g, p[0], p[1]))
		}
	}
	res.GrowthPct = growth
	if b.Zombies != 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d zombies at the end", b.Zombies))
	}
	if st := res.Storm; st != nil {
		if st.Reaped < uint64(st.Orphans) {
			res.Notes = append(res.Notes, fmt.Sprintf("storm: %d of %d orphans reaped", st.Reaped, st.Orphans))
		}
		if p99 := time.Duration(st.DuringAllMs.P99Ms * float64(time.Millisecond)); p99 >= maxStormP99 {
			res.Notes = append(res.Notes, fmt.Sprintf("storm: API p99 %.2f ms, want under %v", st.DuringAllMs.P99Ms, maxStormP99))
		}
		if st.DuringAllMs.Errors > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("storm: %d API errors", st.DuringAllMs.Errors))
		}
	}
	if res.ExitCode != 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("gaffer exited %d after SIGTERM, want 0", res.ExitCode))
	}
	if res.Relayed[2] > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d relayed lines without a prefix", res.Relayed[2]))
	}
	res.Met = len(res.Notes) == 0
}

func pct(a, b int) float64 {
	if a == 0 {
		if b == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return 100 * float64(b-a) / float64(a)
}

// report prints the figures as text.
func report(w io.Writer, r *result) {
	fmt.Fprintf(w, "# soak %s: gaffer up as PID 1, %v (warm-up %v), flapper every ~100ms, %d talkers x %d lines/s (the first %d five times faster), seed %d\n",
		r.Time.Format(time.RFC3339), time.Duration(r.DurationS*float64(time.Second)), time.Duration(r.WarmupS*float64(time.Second)), r.Talkers, r.Rate, r.Burst, r.Seed)
	fmt.Fprintf(w, "# %s; load %s\n\n", r.Gaffer, benchutil.Loadavg())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t s\tVmRSS kB\tRssAnon kB\tthreads\tfds\tgoroutines\tzombies\tzombies reaped\treaped\tflapper restarts\tlines relayed\t")
	for _, sm := range r.Timeline {
		fmt.Fprintf(tw, "%.0f\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t\n", sm.At, sm.VmRSS, sm.RssAnon, sm.Threads, sm.FDs,
			orNA(sm.Goroutines), sm.Zombies, sm.ZombiesReaped, sm.Reaped, sm.Restarts, sm.Lines)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tstart\tend\tgrowth\t")
	a, b := r.Start, r.End
	rows := []struct {
		name string
		a, b string
	}{{"VmRSS kB", strconv.Itoa(a.VmRSS), strconv.Itoa(b.VmRSS)}, {"RssAnon kB", strconv.Itoa(a.RssAnon), strconv.Itoa(b.RssAnon)},
		{"open fds", strconv.Itoa(a.FDs), strconv.Itoa(b.FDs)}, {"goroutines", orNA(a.Goroutines), orNA(b.Goroutines)}}
	for i, row := range rows {
		g := "n/a"
		if r.Growth[i] != nil {
			g = fmt.Sprintf("%+.1f%%", *r.Growth[i])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", row.name, row.a, row.b, g)
	}
	fmt.Fprintf(tw, "zombies (Z, ppid gaffer)\t%d\t%d\t\t\n", a.Zombies, b.Zombies)
	tw.Flush()
	// A leak grows in the second half as in the first; a heap still settling after the warm-up
	// does not.
	if mid := r.Timeline[len(r.Timeline)/2]; len(r.Timeline) >= 3 {
		fmt.Fprintf(w, "second half only (t=%.0fs to the end): VmRSS %+.1f%%, RssAnon %+.1f%%\n", mid.At, pct(mid.VmRSS, b.VmRSS), pct(mid.RssAnon, b.RssAnon))
	}
	fmt.Fprintf(w, "\nflapper restarts %d; relayed %d lines (%d MB), %d without a prefix; gaffer's stderr %d lines; exit %d after SIGTERM\n",
		b.Restarts, r.Relayed[1], r.Relayed[0]>>20, r.Relayed[2], r.StderrLines, r.ExitCode)
	fmt.Fprintf(w, "API: GET /v1/stats x%d, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors; logs followed %d lines (%d reconnects, %d errors); signals: %d over the API (+%d answered 409, %d errors), %d SIGUSR1 to gaffer\n",
		r.Stats.N, r.Stats.P50Ms, r.Stats.P99Ms, r.Stats.MaxMs, r.Stats.Errors, r.Followed, r.Reconnects, r.FollowErr, r.SigAPI, r.SigConflict, r.SigErr, r.SigGaffer)
	if st := r.Storm; st != nil {
		fmt.Fprintf(w, "\nstorm: %d orphans, zombies_reaped rose by %d in %.1fs (at most %d zombies seen at once)\n", st.Orphans, st.Reaped, st.Seconds, st.MaxZombies)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "latency ms\trequests\tp50\tp99\tmax\terrors\t")
		for _, when := range []string{"before", "during"} {
			m := st.Before
			if when == "during" {
				m = st.During
			}
			for _, route := range []string{"/v1/info", "/v1/processes"} {
				l := m[route]
				fmt.Fprintf(tw, "%s %s\t%d\t%.2f\t%.2f\t%.2f\t%d\t\n", when, route, l.N, l.P50Ms, l.P99Ms, l.MaxMs, m["errors"].Errors)
			}
		}
		l := st.DuringAllMs
		fmt.Fprintf(tw, "during, both\t%d\t%.2f\t%.2f\t%.2f\t%d\t\n", l.N, l.P50Ms, l.P99Ms, l.MaxMs, l.Errors)
		tw.Flush()
	}
	fmt.Fprintln(w)
	if r.Met {
		fmt.Fprintf(w, "wanted: growth at most %.0f%% after the warm-up, no zombie%s: met\n", maxGrowthPct, map[bool]string{true: ", every orphan reaped, API p99 under 50 ms"}[r.Storm != nil])
	} else {
		fmt.Fprintf(w, "wanted, NOT met: %s\n", strings.Join(r.Notes, "; "))
	}
}

func orNA(p *int) string {
	if p == nil {
		return "n/a"
	}
	return strconv.Itoa(*p)
}

// ---- /proc ----

// zombies counts the processes in state Z whose parent is pid.
func zombies(pid int) int {
	n := 0
	for _, c := range benchutil.Children(pid) {
		if stat(c) == 'Z' {
			n++
		}
	}
	return n
}

// stat returns the state letter of pid (0 when it is gone).
func stat(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || end+2 >= len(b) {
		return 0
	}
	return b[end+2]
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// ---- HTTP over the Unix socket ----

func unixTransport(sock string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 1, DisableCompression: true,
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: unixTransport(sock)}
}

func getJSON(hc *http.Client, path string, v any) error {
	resp, err := hc.Get("http://gaffer" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func post(hc *http.Client, path, body string) (int, error) {
	resp, err := hc.Post("http://gaffer"+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// tail keeps the last max bytes written to it, and counts lines.
type tail struct {
	mu    sync.Mutex
	max   int
	b     []byte
	lines int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines += bytes.Count(p, []byte("\n"))
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
