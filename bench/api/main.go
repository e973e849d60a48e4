// Command api measures the cost of asking the init what runs: gaffer's GET /v1/stats against
// supervisord's supervisor.getAllProcessInfo (XML-RPC), each over its Unix socket, each
// supervising the same N idle processes (`sleep 1000`), in one run:
//
//   - requests/s and latency (p50, p90, p99, p99.9, max) of C concurrent clients, each on its own
//     kept-alive connection, asking as fast as they can for D; the clients speak HTTP/1.1 by hand
//     and check one answer in 100 (net/http and decoding every answer cost the clients, on the same
//     cpus, more than the server spends, and the server's numbers would be the clients');
//   - the supervisor's own cpu time (utime+stime from /proc/PID/stat) while one client watches:
//     gaffer's /v1/stats?watch=1&interval=1s stream, supervisord polled once a second (it has no
//     watch), for W; and while nobody asks, for the same W;
//   - the supervisor's RSS (VmRSS) with the N processes running, before and after the load.
//
// It is not a test: nothing fails on a number. Run it through bench/api.sh, which builds gaffer and
// keeps the results. Every process it starts is stopped on exit, also on SIGINT and SIGTERM.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"gaffer/bench/internal/rawhttp"
	"io"
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
	"syscall"
	"time"
)

var (
	gafferBin = flag.String("gaffer", "gaffer", "the gaffer binary")
	nprocs    = flag.Int("n", 100, "supervised processes")
	clients   = flag.Int("c", 16, "concurrent clients")
	duration  = flag.Duration("d", 5*time.Second, "how long the clients ask")
	warmup    = flag.Duration("warmup", 500*time.Millisecond, "asking before measuring")
	watchFor  = flag.Duration("w", 10*time.Second, "how long one client watches (and the idle baseline)")
	jsonOut   = flag.String("json", "", "write the results as JSON to this file")
	only      = flag.String("only", "", "measure only gaffer or supervisord")
	route     = flag.String("route", "/v1/stats", "gaffer's route under load (to compare: /v1/processes, /v1/info)")
)

// target is one supervisor under test.
type target struct {
	name  string
	cmd   *exec.Cmd
	dir   string
	sock  string
	req   func() *http.Request // one stats request
	raw   []byte               // the same request, as sent by the load clients
	check func([]byte) error   // checks one answer
	watch func(ctx context.Context, hc *http.Client) error
	ready func(hc *http.Client) (bool, error) // all N processes running
	done  chan struct{}                       // closed when cmd has exited
}

// result is what was measured of one target.
type result struct {
	Name        string  `json:"name"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	ReqPerSec   float64 `json:"req_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	P999Ms      float64 `json:"p99_9_ms"`
	MaxMs       float64 `json:"max_ms"`
	AnswerBytes int     `json:"answer_bytes"`
	LoadCPUPct  float64 `json:"load_cpu_percent"` // the supervisor's cpu during the load (100 = one cpu)
	WatchCPUMs  float64 `json:"watch_cpu_ms"`     // cpu time used during the watch
	WatchCPUPct float64 `json:"watch_cpu_percent"`
	IdleCPUMs   float64 `json:"idle_cpu_ms"`
	RSSKiB      int     `json:"rss_kib"`       // with N processes, before the load
	RSSAfterKiB int     `json:"rss_after_kib"` // after the load and the watch
}

var (
	mu      sync.Mutex
	running []*target // stopped on exit
)

func main() {
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	cancel()
	stopAll()
	os.Exit(code)
}

func run(ctx context.Context) int {
	base, err := os.MkdirTemp("", "gaffer-bench-api-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(base)
	var results []result
	for _, mk := range []func(string) (*target, error){gafferTarget, supervisordTarget} {
		if ctx.Err() != nil {
			return 130
		}
		t, err := mk(base)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		if t == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s with %d processes\n", t.name, *nprocs)
		r, err := measure(ctx, t)
		stop(t)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", t.name, err)
			return 1
		}
		results = append(results, r)
	}
	report(os.Stdout, results)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"time": time.Now().UTC(), "processes": *nprocs, "clients": *clients,
			"duration_s": duration.Seconds(), "watch_s": watchFor.Seconds(), "results": results,
		}, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	return 0
}

// unixClient is an HTTP client whose connections go to sock; conns is how many it keeps alive.
func unixClient(sock string, conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true,
	}}
}

func gafferTarget(base string) (*target, error) {
	if *only != "" && *only != "gaffer" {
		return nil, nil
	}
	dir := filepath.Join(base, "gaffer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "g.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "[settings]\nsocket = %q\n", sock)
	for i := range *nprocs {
		fmt.Fprintf(&b, "\n[process.p%03d]\ncmd = \"sleep 1000\"\n", i)
	}
	conf := filepath.Join(dir, "gaffer.toml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "gaffer", dir: dir, sock: sock}
	t.cmd = exec.Command(*gafferBin, "up", "-c", conf)
	t.req = func() *http.Request {
		r, _ := http.NewRequest("GET", "http://gaffer/v1/stats", nil)
		return r
	}
	t.raw = []byte("GET " + *route + " HTTP/1.1\r\nHost: gaffer\r\n\r\n")
	t.check = func(b []byte) error {
		if *route != "/v1/stats" {
			return nil
		}
		var snap struct {
			Processes []struct {
				Pid int `json:"pid"`
			} `json:"processes"`
		}
		if err := json.Unmarshal(b, &snap); err != nil {
			return err
		}
		if len(snap.Processes) != *nprocs {
			return fmt.Errorf("%d processes in the answer, want %d", len(snap.Processes), *nprocs)
		}
		return nil
	}
	t.ready = func(hc *http.Client) (bool, error) {
		resp, err := hc.Get("http://gaffer/v1/processes")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var ps []struct {
			Pid int `json:"pid"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
			return false, err
		}
		n := 0
		for _, p := range ps {
			if p.Pid != 0 {
				n++
			}
		}
		return n == *nprocs, nil
	}
	t.watch = func(ctx context.Context, hc *http.Client) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://gaffer/v1/stats?watch=1&interval=1s", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		n := 0
		for sc.Scan() {
			if err := t.check(sc.Bytes()); err != nil {
				return err
			}
			n++
		}
		if ctx.Err() == nil {
			return fmt.Errorf("the watch ended after %d answers: %v", n, sc.Err())
		}
		if n < int(watchFor.Seconds())-1 {
			return fmt.Errorf("only %d answers in %v", n, *watchFor)
		}
		return nil
	}
	return t, start(t)
}

const rpcCall = `<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo</methodName><params></params></methodCall>`

func supervisordTarget(base string) (*target, error) {
	if *only != "" && *only != "supervisord" {
		return nil, nil
	}
	if _, err := exec.LookPath("supervisord"); err != nil {
		return nil, errors.New("supervisord is not installed (apt-get install -y supervisor)")
	}
	dir := filepath.Join(base, "supervisord")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "supervisor.sock")
	var b strings.Builder
	fmt.Fprintf(&b, `[unix_http_server]
file=%[1]s/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
silent=true
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
`, dir)
	for i := range *nprocs {
		fmt.Fprintf(&b, "\n[program:p%03d]\ncommand=sleep 1000\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n", i)
	}
	conf := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "supervisord", dir: dir, sock: sock}
	t.cmd = exec.Command("supervisord", "-n", "-c", conf)
	t.req = func() *http.Request {
		r, _ := http.NewRequest("POST", "http://supervisor/RPC2", strings.NewReader(rpcCall))
		r.Header.Set("Content-Type", "text/xml")
		return r
	}
	t.raw = []byte(fmt.Sprintf("POST /RPC2 HTTP/1.1\r\nHost: supervisor\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s", len(rpcCall), rpcCall))
	t.check = func(b []byte) error {
		if !bytes.Contains(b, []byte("<methodResponse>")) || bytes.Contains(b, []byte("<fault>")) {
			return fmt.Errorf("not an answer: %.200s", b)
		}
		if n := bytes.Count(b, []byte("<name>statename</name>")); n != *nprocs {
			return fmt.Errorf("%d processes in the answer, want %d", n, *nprocs)
		}
		return nil
	}
	t.ready = func(hc *http.Client) (bool, error) {
		resp, err := hc.Do(t.req())
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			return false, nil
		}
		return bytes.Count(body, []byte("<string>RUNNING</string>")) == *nprocs, nil
	}
	t.watch = func(ctx context.Context, hc *http.Client) error {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if err := once(hc, t); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
	return t, start(t)
}

// start starts t's supervisor and waits until its N processes run.
func start(t *target) error {
	t.cmd.Stdout, t.cmd.Stderr = io.Discard, os.Stderr
	// Its own process group: a Ctrl-C at the terminal is for this program, which stops it in order.
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := t.cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", t.name, err)
	}
	t.done = make(chan struct{})
	go func() { t.cmd.Wait(); close(t.done) }()
	mu.Lock()
	running = append(running, t)
	mu.Unlock()
	hc := unixClient(t.sock, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := t.ready(hc)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if ok {
			return nil
		}
		select {
		case <-t.done:
			return fmt.Errorf("%s exited before its processes ran", t.name)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the %d processes are not running after 30s", t.name, *nprocs)
		}
	}
}

// once sends one stats request with net/http and checks the answer.
func once(hc *http.Client, t *target) error {
	resp, err := hc.Do(t.req())
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return t.check(body)
}

func measure(ctx context.Context, t *target) (result, error) {
	r := result{Name: t.name}
	pid := t.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond) // let start-up settle before reading the RSS
	r.RSSKiB = rssKiB(pid)

	// Load: C clients, each on its own kept-alive connection, speaking HTTP/1.1 by hand (net/http
	// costs the client more cpu than the server spends, on the same cpus).
	rcs := make([]*rawhttp.Client, *clients)
	for i := range rcs {
		rcs[i] = &rawhttp.Client{Sock: t.sock, Req: t.raw}
	}
	body, err := rcs[0].Do()
	if err == nil {
		err = t.check(body)
	}
	if err != nil {
		return r, fmt.Errorf("first request: %w", err)
	}
	r.AnswerBytes = len(body)
	var (
		lmu       sync.Mutex
		latencies []time.Duration
		errs      int
		firstErr  error
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
				for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
					t0 := time.Now()
					body, err := rc.Do()
					if err == nil && n%100 == 0 { // the content of one answer in 100
						err = t.check(body)
					}
					mine = append(mine, time.Since(t0))
					if err != nil {
						bad++
						e = err
					}
				}
				if record {
					lmu.Lock()
					latencies = append(latencies, mine...)
					errs += bad
					if firstErr == nil {
						firstErr = e
					}
					lmu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	phase(*warmup, false)
	t0, lc0 := time.Now(), cpuTicks(pid)
	phase(*duration, true)
	elapsed, lc1 := time.Since(t0), cpuTicks(pid)
	r.LoadCPUPct = ticksMs(lc1-lc0) / float64(elapsed.Milliseconds()) * 100
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %d errors, the first: %v\n", t.name, errs, firstErr)
	}
	slices.Sort(latencies)
	r.Requests, r.Errors = len(latencies), errs
	r.ReqPerSec = float64(len(latencies)) / elapsed.Seconds()
	r.P50Ms = ms(pct(latencies, 0.50))
	r.P90Ms = ms(pct(latencies, 0.90))
	r.P99Ms = ms(pct(latencies, 0.99))
	r.P999Ms = ms(pct(latencies, 0.999))
	r.MaxMs = ms(latencies[len(latencies)-1])

	// One client watching every second, then nobody asking.
	hc := unixClient(t.sock, 1)
	wctx, wcancel := context.WithTimeout(ctx, *watchFor)
	c0 := cpuTicks(pid)
	err = t.watch(wctx, hc)
	c1 := cpuTicks(pid)
	wcancel()
	if err != nil {
		return r, fmt.Errorf("watch: %w", err)
	}
	r.WatchCPUMs = ticksMs(c1 - c0)
	r.WatchCPUPct = r.WatchCPUMs / float64(watchFor.Milliseconds()) * 100
	hc.CloseIdleConnections()
	for _, rc := range rcs {
		rc.Close()
	}
	time.Sleep(200 * time.Millisecond)
	c0 = cpuTicks(pid)
	select {
	case <-time.After(*watchFor):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	r.IdleCPUMs = ticksMs(cpuTicks(pid) - c0)
	r.RSSAfterKiB = rssKiB(pid)
	return r, nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTicks is utime+stime of pid in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	// Fields after the command: state is 0, utime is 11, stime is 12.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// ticksMs converts clock ticks (USER_HZ, 100 on Linux) to milliseconds.
func ticksMs(t int64) float64 { return float64(t) * 10 }

func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// stop ends t's supervisor with SIGTERM (it stops its processes), then kills what is left of its
// tree after 10 s.
func stop(t *target) {
	select {
	case <-t.done:
		return
	default:
	}
	tree := descendants(t.cmd.Process.Pid)
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		t.cmd.Process.Kill()
		<-t.done
	}
	for _, p := range tree {
		syscall.Kill(p, syscall.SIGKILL) // those already gone: ESRCH
	}
}

func stopAll() {
	mu.Lock()
	defer mu.Unlock()
	for _, t := range running {
		stop(t)
	}
}

// descendants lists every process under pid.
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, w := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(w); err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

func report(w io.Writer, rs []result) {
	fmt.Fprintf(w, "# API cost, %s; %d processes (sleep 1000), %d clients for %v (keep-alive, unix socket), watch %v\n",
		time.Now().UTC().Format(time.RFC3339), *nprocs, *clients, *duration, *watchFor)
	fmt.Fprintf(w, "# gaffer: GET %s; supervisord: POST /RPC2 supervisor.getAllProcessInfo\n", *route)
	fmt.Fprintf(w, "%-12s %9s %8s %8s %8s %7s %10s %9s %11s %10s %9s %9s\n",
		"", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "answer B", "load cpu", "watch cpu", "idle cpu", "RSS KiB", "RSS after")
	for _, r := range rs {
		fmt.Fprintf(w, "%-12s %9.0f %8.2f %8.2f %8.2f %7d %10d %8.0f%% %7.0fms %4.1f%% %8.0fms %9d %9d\n",
			r.Name, r.ReqPerSec, r.P50Ms, r.P99Ms, r.MaxMs, r.Errors, r.AnswerBytes, r.LoadCPUPct, r.WatchCPUMs, r.WatchCPUPct, r.IdleCPUMs, r.RSSKiB, r.RSSAfterKiB)
	}
	if len(rs) == 2 {
		g, s := rs[0], rs[1]
		ratio := func(a, b float64) string {
			if b == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", a/b)
		}
		fmt.Fprintf(w, "%-12s %9s %8s %8s %8s %7s %10s %9s %11s %10s %9s %9s\n", "gaffer/sup",
			ratio(g.ReqPerSec, s.ReqPerSec), ratio(g.P50Ms, s.P50Ms), ratio(g.P99Ms, s.P99Ms), ratio(g.MaxMs, s.MaxMs), "",
			ratio(float64(g.AnswerBytes), float64(s.AnswerBytes)), ratio(g.LoadCPUPct, s.LoadCPUPct), ratio(g.WatchCPUMs, s.WatchCPUMs), ratio(g.IdleCPUMs, s.IdleCPUMs),
			ratio(float64(g.RSSKiB), float64(s.RSSKiB)), ratio(float64(g.RSSAfterKiB), float64(s.RSSAfterKiB)))
	}
	for _, r := range rs {
		if r.Name == "gaffer" {
			verdict := func(ok bool) string {
				if ok {
					return "met"
				}
				return "NOT met"
			}
			fmt.Fprintf(w, "# aim (issue 4): over 5000 req/s: %s (%.0f); p99 under 5 ms: %s (%.2f ms; p90 %.2f, p99.9 %.2f)\n",
				verdict(r.ReqPerSec > 5000), r.ReqPerSec, verdict(r.P99Ms < 5), r.P99Ms, r.P90Ms, r.P999Ms)
		}
	}
}
