// Command relay measures output relays side by side, in one run, the way a container's output is
// read: the relay writes into a pipe that a separate process (a log shipper, `docker logs`) reads.
//
// Each measured run is a pipeline of processes, all of them programs, none a shell:
//
//	raw pipe      produce | count
//	cat           produce | cat | count                 (-only, not run by default)
//	s6-log        produce | s6-log -- 1 | count          (Debian's s6: a line-aware relay)
//	supervisord   supervisord -n (runs produce, stdout_logfile=/dev/stdout) | count
//	gaffer up     gaffer up -c FILE (runs produce, output = "prefix") | count
//
// produce writes lines of -line bytes as fast as it can, in 64 KiB writes; count is this program
// again, reading its stdin (256 KiB reads) and counting bytes, lines and the producer's lines
// (each ends in "~\n", which no relay adds). A run's time goes from the producer's first write to
// the moment count has seen the producer's last line (CLOCK_MONOTONIC, shared by all processes),
// so it leaves out the start of the relay and the producer, and the exit of the relay. count then
// drains to EOF (supervisord, which never exits by itself, is stopped once count is done) and
// checks that every line came out.
//
// Two workloads: -gib GiB in 1 KiB lines (read in MB/s of input) and -lines lines of 16 bytes
// (lines/s). Every case runs -reps times; within each repetition the workloads alternate and the
// order of the relays rotates, so that every relay sees the same machine on average. The report
// gives medians, the spread (min-max), and ratios of medians, with the range of the ratios taken
// within each repetition (the same minute of a noisy machine). -raw FILE keeps one line per run.
//
//	relay [-reps 5] [-gib 1] [-lines 10000000] [-smoke] [-only NAME,...] [-gaffer PATH] [-raw FILE]
//	      [-strace DIR]   also run each gaffer once more under strace -f -c, summaries into DIR
//	relay produce -line 1024 -lines 1048576 [-start FILE]
//	relay count -line 1024 -lines 1048576
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
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
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeSize is the size of every write of the producer.
const writeSize = 64 << 10

// mark ends every line of the producer, so that count tells them from a relay's own lines.
const mark = '~'

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "produce":
			os.Exit(produce(os.Args[2:]))
		case "count":
			os.Exit(count(os.Args[2:]))
		case "go-min":
			os.Exit(goMin(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:]))
}

// monotonic returns CLOCK_MONOTONIC in nanoseconds, comparable between processes.
func monotonic() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano()
}

// produce writes -lines lines of -line bytes each ("abc...~\n") to stdout in writes of 64 KiB.
// With -start it writes the time of its first write to that file first.
func produce(args []string) int {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	size := fs.Int("line", 1024, "bytes per line, newline included; at least 2, must divide 65536")
	lines := fs.Int64("lines", 1<<20, "number of lines")
	start := fs.String("start", "", "file to write the start time to")
	if fs.Parse(args) != nil {
		return 2
	}
	// Whoever started us (gaffer, supervisord, the harness) may be killed: do not outlive it.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	if *size < 2 || writeSize%*size != 0 {
		fmt.Fprintf(os.Stderr, "produce: -line %d does not divide %d\n", *size, writeSize)
		return 2
	}
	block := make([]byte, writeSize)
	for i := range block {
		switch i % *size {
		case *size - 1:
			block[i] = '\n'
		case *size - 2:
			block[i] = mark
		default:
			block[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%*size%36]
		}
	}
	if *start != "" {
		if err := os.WriteFile(*start, []byte(strconv.FormatInt(monotonic(), 10)), 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "produce: %v\n", err)
			return 1
		}
	}
	total := *lines * int64(*size)
	for total > 0 {
		n, err := rawWrite(1, block[:min(total, writeSize)])
		if err != nil {
			fmt.Fprintf(os.Stderr, "produce: %v\n", err)
			return 1
		}
		total -= int64(n)
	}
	if *start != "" {
		// The relays that run the producer (gaffer, supervisord, go-min) have its CPU time in
		// their own rusage: the harness subtracts it.
		var ru unix.Rusage
		if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
			cpu := ru.Utime.Nano() + ru.Stime.Nano()
			_ = os.WriteFile(*start+".cpu", []byte(strconv.FormatInt(cpu, 10)), 0o600)
		}
	}
	return 0
}

// rawWrite and rawRead are write(2) and read(2) without Go's scheduler: a blocked call keeps its
// thread and its P, so the producer and the counter make no futex or nanosleep calls of their own
// (no hand-off of the P, no other thread to wake), and strace -f of a relay that runs the producer
// counts the relay's calls and the producer's writes, nothing else. A signal (the runtime's
// preemption) restarts them (SA_RESTART) or cuts a write short, which the callers handle.
func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		if e == unix.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(n), nil
}

func rawRead(fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return 0, e
		case n == 0:
			return 0, io.EOF
		}
		return int(n), nil
	}
}

// count reads stdin to EOF. Once it has seen -lines lines of the producer, it prints
// "done END_NS" on stdout; at EOF "eof PRODUCER_LINES LINES BYTES".
func count(args []string) int {
	fs := flag.NewFlagSet("count", flag.ContinueOnError)
	want := fs.Int64("lines", 1<<20, "lines the producer writes")
	bufSize := fs.Int("buf", 256<<10, "read size")
	if fs.Parse(args) != nil {
		return 2
	}
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	buf := make([]byte, *bufSize)
	var marks, lines, total int64
	done := false
	for {
		n, err := rawRead(0, buf)
		if n > 0 {
			b := buf[:n]
			total += int64(n)
			lines += int64(bytes.Count(b, []byte{'\n'}))
			marks += int64(bytes.Count(b, []byte{mark}))
			if !done && marks >= *want {
				fmt.Printf("done %d\n", monotonic())
				done = true
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "count: %v\n", err)
			return 1
		}
	}
	fmt.Printf("eof %d %d %d\n", marks, lines, total)
	return 0
}

// goMin is the smallest Go relay that does what gaffer's does: it runs CMD with its stdout on a
// pipe (os.Pipe, read through Go's poller, as gaffer reads it), grows that pipe and its stdout to
// 1 MiB, and writes every line with a prefix to its own stdout, all complete lines of one read in
// one write. It is what Go costs.
func goMin(args []string) int {
	if len(args) < 2 || args[0] != "--" {
		fmt.Fprintln(os.Stderr, "usage: relay go-min -- CMD...")
		return 2
	}
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-min:", err)
		return 1
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "go-min:", err)
		return 1
	}
	w.Close()
	// As gaffer does for a busy stream: 1 MiB pipes in and out (see relay.busyPipe).
	for _, f := range []*os.File{r, os.Stdout} {
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20) })
		}
	}
	prefix := []byte("bench  | ")
	buf := make([]byte, 128<<10)
	out := make([]byte, 0, 256<<10)
	start, end := 0, 0
	for {
		if start == end {
			start, end = 0, 0
		} else if len(buf)-end < 64<<10 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, err := r.Read(buf[end:])
		end += n
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			out = append(out, prefix...)
			out = append(out, buf[start:start+i+1]...)
			start += i + 1
		}
		if len(out) > 0 {
			if _, err := os.Stdout.Write(out); err != nil {
				fmt.Fprintln(os.Stderr, "go-min:", err)
				return 1
			}
			out = out[:0]
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "go-min:", err)
		return 1
	}
	return 0
}

// contender is one relay under test.
type contender struct {
	name string
	kind string // "raw", "cat", "go-min", "s6-log", "supervisord", "gaffer"
	bin  string // gaffer: the binary, when not -gaffer
	// args: extra arguments (s6-log), or the [settings] of gaffer's config.
	args []string
}

func contenders() []contender {
	return []contender{
		{name: "raw pipe", kind: "raw"},
		{name: "cat", kind: "cat"},
		{name: "go-min", kind: "go-min"},
		{name: "s6-log", kind: "s6-log"},
		{name: "supervisord", kind: "supervisord"},
		{name: "gaffer up", kind: "gaffer", args: []string{`output = "prefix"`}},
		// Run only when named in -only:
		{name: "s6-log -b", kind: "s6-log", args: []string{"-b"}},
		{name: "gaffer up ts+color", kind: "gaffer", args: []string{`output = "prefix"`, `timestamps = true`, `color = "always"`}},
		{name: "gaffer up json", kind: "gaffer", args: []string{`output = "json"`}},
		{name: "gaffer up raw", kind: "gaffer", args: []string{`output = "raw"`}},
	}
}

const defaultSet = 6 // the first six run when -only is not given

type workload struct {
	name  string
	line  int
	lines int64
}

// result is one measured run.
type result struct {
	secs  float64
	cpu   float64 // seconds of CPU the relay used (user and system); 0 for the raw pipe
	lines int64   // lines out, the relay's own included
	bytes int64
	err   error
}

// harness runs pipelines and stops what it started when told to.
type harness struct {
	self, gaffer, dir string
	pipeSize          int

	mu    sync.Mutex
	procs []*os.Process // guarded by mu; the processes of the run under way
}

func run(args []string) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	reps := fs.Int("reps", 5, "runs of each case")
	only := fs.String("only", "", "comma-separated relay names (default: raw pipe,cat,go-min,s6-log,supervisord,gaffer up)")
	gib := fs.Float64("gib", 1, "GiB of 1 KiB lines in the byte workload")
	small := fs.Int64("lines", 10_000_000, "16-byte lines in the line workload")
	smoke := fs.Bool("smoke", false, "small sizes, one repetition: checks that the harness works")
	gaffer := fs.String("gaffer", "gaffer", "the gaffer binary")
	rawFile := fs.String("raw", "", "file to append one line per run to")
	pipeSize := fs.Int("pipe", 0, "size of every pipe of the pipelines (F_SETPIPE_SZ); 0: the system's default, 64 KiB")
	straceDir := fs.String("strace", "", "directory: run each gaffer once more under strace -f -c")
	var others []contender
	fs.Func("also", "NAME=PATH: one more gaffer binary to measure, as gaffer up (to compare builds)", func(s string) error {
		name, path, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want NAME=PATH")
		}
		others = append(others, contender{name: name, kind: "gaffer", bin: path, args: []string{`output = "prefix"`}})
		return nil
	})
	if fs.Parse(args) != nil {
		return 2
	}
	if *smoke {
		*gib, *small, *reps = 1.0/64, 200_000, 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	all := contenders()
	var cs []contender
	if *only == "" {
		cs = all[:defaultSet]
	} else {
		for _, name := range strings.Split(*only, ",") {
			i := slices.IndexFunc(all, func(c contender) bool { return c.name == name })
			if i < 0 {
				fmt.Fprintf(os.Stderr, "relay: unknown relay %q\n", name)
				return 2
			}
			cs = append(cs, all[i])
		}
	}
	cs = append(cs, others...)
	for _, c := range cs {
		bin := map[string]string{"cat": "cat", "s6-log": "s6-log", "supervisord": "supervisord", "gaffer": *gaffer}[c.kind]
		if c.bin != "" {
			bin = c.bin
		}
		if _, err := exec.LookPath(bin); bin != "" && err != nil {
			fmt.Fprintf(os.Stderr, "relay: %s missing (apt-get install -y s6 supervisor; -gaffer PATH)\n", bin)
			return 1
		}
	}
	gafferPath, _ := exec.LookPath(*gaffer)
	wls := []workload{
		{name: size(*gib) + " in 1 KiB lines", line: 1024, lines: int64(*gib * (1 << 20))},
		{name: fmt.Sprintf("%d lines of 16 bytes", *small), line: 16, lines: *small},
	}
	dir, err := os.MkdirTemp("", "relaybench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	h := &harness{self: self, gaffer: gafferPath, dir: dir, pipeSize: *pipeSize}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		h.killAll()
		os.RemoveAll(dir)
		os.Exit(128 + int(s.(syscall.Signal)))
	}()

	var raw io.Writer = io.Discard
	if *rawFile != "" {
		f, err := os.OpenFile(*rawFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			return 1
		}
		defer f.Close()
		raw = f
	}
	fmt.Fprintf(raw, "# rep\tworkload\trelay\tseconds\tMB/s\tMlines/s\trelay_cpu_s\tlines_out\tbytes_out\terror\n")

	res := map[[2]int][]result{}
	failed := false
	for rep := range *reps {
		for wi, wl := range wls {
			for k := range cs {
				ci := (k + rep + wi) % len(cs) // rotate the order
				c := cs[ci]
				fmt.Fprintf(os.Stderr, "relay: rep %d/%d, %s, %s ... ", rep+1, *reps, wl.name, c.name)
				r := h.measure(c, wl, nil)
				mbs, mls := 0.0, 0.0
				if r.err != nil {
					failed = true
					fmt.Fprintf(os.Stderr, "error: %v\n", r.err)
				} else {
					mbs, mls = float64(wl.line)*float64(wl.lines)/r.secs/1e6, float64(wl.lines)/r.secs/1e6
					fmt.Fprintf(os.Stderr, "%.3fs\n", r.secs)
				}
				fmt.Fprintf(raw, "%d\t%s\t%s\t%.6f\t%.1f\t%.3f\t%.3f\t%d\t%d\t%v\n", rep+1, wl.name, c.name, r.secs, mbs, mls, r.cpu, r.lines, r.bytes, r.err)
				res[[2]int{wi, ci}] = append(res[[2]int{wi, ci}], r)
			}
		}
	}
	report(os.Stdout, wls, cs, res, *reps)
	if *straceDir != "" {
		for _, c := range cs {
			if c.kind != "gaffer" && c.kind != "go-min" {
				continue
			}
			for _, wl := range wls {
				out := filepath.Join(*straceDir, fmt.Sprintf("strace-%s-%d.txt", strings.ReplaceAll(c.name, " ", "_"), wl.line))
				r := h.measure(c, wl, []string{"strace", "-f", "-c", "-o", out})
				if r.err != nil {
					failed = true
					fmt.Fprintf(os.Stderr, "relay: strace of %s: %v\n", c.name, r.err)
					continue
				}
				fmt.Printf("\n## strace -f -c of %s (and its producer), %s\n", c.name, wl.name)
				printStrace(os.Stdout, out)
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}

// printStrace prints the calls of a strace -c summary that tell hand-offs from work.
func printStrace(w io.Writer, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintf(w, "%-12s %10s %10s\n", "syscall", "calls", "errors")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		name := f[len(f)-1]
		switch name {
		case "read", "write", "futex", "nanosleep", "epoll_pwait", "epoll_wait", "sched_yield", "splice", "total":
			calls, errs := f[3], "0"
			if len(f) == 6 {
				errs = f[4]
			}
			fmt.Fprintf(w, "%-12s %10s %10s\n", name, calls, errs)
		}
	}
}

func (h *harness) track(p *os.Process) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs = append(h.procs, p)
}

func (h *harness) untrackAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs = nil
}

func (h *harness) killAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.procs {
		_ = p.Kill()
	}
}

// measure runs one contender on one workload; wrap, when given, goes in front of the relay's
// command (strace), whose time then means nothing.
func (h *harness) measure(c contender, wl workload, wrap []string) result {
	startFile := filepath.Join(h.dir, "start")
	os.Remove(startFile)
	os.Remove(startFile + ".cpu")
	producer := []string{h.self, "produce", "-line", strconv.Itoa(wl.line), "-lines", strconv.FormatInt(wl.lines, 10), "-start", startFile}

	// The pipeline: [producer |] relay | count; raw: producer | count.
	var cmds []*exec.Cmd
	var relay *exec.Cmd
	switch c.kind {
	case "raw":
	case "cat":
		relay = exec.Command("cat")
	case "go-min":
		relay = exec.Command(h.self, append([]string{"go-min", "--"}, producer...)...)
	case "s6-log":
		relay = exec.Command("s6-log", append(append([]string{}, c.args...), "--", "1")...)
	case "supervisord":
		conf := filepath.Join(h.dir, "supervisord.conf")
		if err := os.WriteFile(conf, []byte(supervisordConf(h.dir, producer)), 0o600); err != nil {
			return result{err: err}
		}
		relay = exec.Command("supervisord", "-n", "-c", conf)
	case "gaffer":
		conf := filepath.Join(h.dir, "gaffer.toml")
		if err := os.WriteFile(conf, []byte(gafferConf(c.args, producer)), 0o600); err != nil {
			return result{err: err}
		}
		bin := h.gaffer
		if c.bin != "" {
			bin = c.bin
		}
		relay = exec.Command(bin, "up", "-c", conf, "--socket", filepath.Join(h.dir, "gaffer.sock"))
	}
	if relay != nil && wrap != nil {
		relay = exec.Command(wrap[0], append(append(wrap[1:], relay.Path), relay.Args[1:]...)...)
	}
	if c.kind == "raw" || c.kind == "cat" || c.kind == "s6-log" {
		cmds = append(cmds, exec.Command(producer[0], producer[1:]...))
	}
	if relay != nil {
		cmds = append(cmds, relay)
	}
	counter := exec.Command(h.self, "count", "-lines", strconv.FormatInt(wl.lines, 10))
	cmds = append(cmds, counter)
	report, err := counter.StdoutPipe()
	if err != nil {
		return result{err: err}
	}
	for i, cmd := range cmds {
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if i+1 < len(cmds) {
			r, w, err := os.Pipe()
			if err != nil {
				return result{err: err}
			}
			if h.pipeSize > 0 {
				if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, h.pipeSize); err != nil {
					return result{err: fmt.Errorf("F_SETPIPE_SZ: %w", err)}
				}
			}
			cmd.Stdout, cmds[i+1].Stdin = w, r
			defer r.Close()
			defer w.Close()
		}
	}
	defer h.untrackAll()
	var started []*exec.Cmd
	stop := func() {
		for _, cmd := range started {
			_ = cmd.Process.Kill()
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			stop()
			for _, cmd := range started {
				_ = cmd.Wait()
			}
			return result{err: err}
		}
		started = append(started, cmd)
		h.track(cmd.Process)
	}
	// Only the processes hold the pipes now: EOF reaches count when the relay is gone.
	for _, cmd := range cmds {
		for _, f := range []any{cmd.Stdin, cmd.Stdout} {
			if f, ok := f.(*os.File); ok {
				f.Close()
			}
		}
	}

	type line struct {
		text string
		err  error
	}
	lines := make(chan line, 2)
	go func() {
		sc := bufio.NewScanner(report)
		for sc.Scan() {
			lines <- line{text: sc.Text()}
		}
		lines <- line{err: errors.Join(sc.Err(), io.EOF)}
	}()
	timeout := time.NewTimer(10 * time.Minute)
	defer timeout.Stop()
	next := func() (string, error) {
		select {
		case l := <-lines:
			return l.text, l.err
		case <-timeout.C:
			stop()
			return "", errors.New("timeout")
		}
	}

	var r result
	var end int64
	text, err := next()
	if err == nil {
		_, err = fmt.Sscanf(text, "done %d", &end)
	}
	if c.kind == "supervisord" {
		// It never exits by itself; the producer has, and count has every line.
		_ = relay.Process.Signal(syscall.SIGTERM)
	}
	var marks int64
	if err == nil {
		if text, err = next(); err == nil {
			_, err = fmt.Sscanf(text, "eof %d %d %d", &marks, &r.lines, &r.bytes)
		}
	}
	if err != nil {
		stop()
	}
	for _, cmd := range cmds {
		if werr := cmd.Wait(); werr != nil && err == nil && c.kind != "supervisord" {
			err = fmt.Errorf("%s: %w", filepath.Base(cmd.Path), werr)
		}
	}
	if err != nil {
		return result{err: err}
	}
	b, err := os.ReadFile(startFile)
	if err != nil {
		return result{err: fmt.Errorf("the producer's start: %w", err)}
	}
	start, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return result{err: fmt.Errorf("the producer's start: %w", err)}
	}
	r.secs = float64(end-start) / 1e9
	if relay != nil && wrap == nil {
		r.cpu = (relay.ProcessState.UserTime() + relay.ProcessState.SystemTime()).Seconds()
		if c.kind == "gaffer" || c.kind == "supervisord" || c.kind == "go-min" {
			b, err := os.ReadFile(startFile + ".cpu")
			if err != nil {
				return result{err: fmt.Errorf("the producer's cpu: %w", err)}
			}
			ns, _ := strconv.ParseInt(string(b), 10, 64)
			r.cpu -= float64(ns) / 1e9
		}
	}
	switch {
	case marks != wl.lines:
		r.err = fmt.Errorf("%d of the producer's lines out, want %d", marks, wl.lines)
	case r.bytes < wl.lines*int64(wl.line):
		r.err = fmt.Errorf("%d bytes out, want at least %d", r.bytes, wl.lines*int64(wl.line))
	}
	return r
}

// supervisordConf runs the producer once and relays its stdout to supervisord's own stdout.
func supervisordConf(dir string, producer []string) string {
	return fmt.Sprintf(`[supervisord]
nodaemon=true
silent=true
logfile=/dev/null
logfile_maxbytes=0
pidfile=%s/supervisord.pid

[program:bench]
command=%s
autostart=true
autorestart=false
startsecs=0
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
stderr_logfile=/dev/stderr
stderr_logfile_maxbytes=0
`, dir, strings.Join(producer, " "))
}

// gafferConf runs the producer once, as `gaffer up` runs a process; gaffer exits when it ends.
func gafferConf(settings, producer []string) string {
	var b strings.Builder
	b.WriteString("[settings]\n")
	for _, s := range settings {
		b.WriteString(s + "\n")
	}
	b.WriteString("\n[process.bench]\ncmd = [")
	for i, a := range producer {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(a))
	}
	b.WriteString("]\n")
	return b.String()
}

// report prints one table per workload: medians, spread, and ratios to the peers.
func report(w io.Writer, wls []workload, cs []contender, res map[[2]int][]result, reps int) {
	var u unix.Utsname
	_ = unix.Uname(&u)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "# relay into a pipe read by a counting process, %s; linux %s, %d cpus, load %s\n",
		time.Now().UTC().Format(time.RFC3339), unix.ByteSliceToString(u.Release[:]), runtime.NumCPU(),
		strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(w, "# producer writes 64 KiB at a time; medians of %d runs, (min-max); ratios of medians, (range within one repetition)\n", reps)
	for wi, wl := range wls {
		bytesIn := float64(wl.line) * float64(wl.lines)
		secs := make([][]float64, len(cs)) // by contender, by rep; 0 for a failed run
		med := make([]float64, len(cs))
		cpu := make([]float64, len(cs))
		for ci := range cs {
			var ok, cpus []float64
			for _, r := range res[[2]int{wi, ci}] {
				s := 0.0
				if r.err == nil {
					s = r.secs
					ok = append(ok, s)
					cpus = append(cpus, r.cpu)
				}
				secs[ci] = append(secs[ci], s)
			}
			med[ci] = median(ok)
			cpu[ci] = median(cpus)
		}
		ref := func(name string) int {
			return slices.IndexFunc(cs, func(c contender) bool { return c.name == name })
		}
		refs := []struct{ name, col string }{{"raw pipe", "x raw pipe"}, {"supervisord", "x supervisord"}, {"s6-log", "x s6-log"}}
		fmt.Fprintf(w, "\n## %s (%.0f MB in)\n", wl.name, bytesIn/1e6)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		head := "relay\tMB/s\tM lines/s\t(min-max M lines/s)\trelay cpu s\t"
		for _, rf := range refs {
			head += rf.col + "\t"
		}
		fmt.Fprintln(tw, head+"runs ok")
		for ci, c := range cs {
			ok := 0
			lo, hi := 0.0, 0.0
			for _, s := range secs[ci] {
				if s > 0 {
					ok++
					v := float64(wl.lines) / s / 1e6
					if lo == 0 || v < lo {
						lo = v
					}
					hi = max(hi, v)
				}
			}
			if med[ci] == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t%d/%d\n", c.name, ok, reps)
				continue
			}
			row := fmt.Sprintf("%s\t%.0f\t%.2f\t(%.2f-%.2f)\t%.2f\t", c.name, bytesIn/med[ci]/1e6, float64(wl.lines)/med[ci]/1e6, lo, hi, cpu[ci])
			for _, rf := range refs {
				ri := ref(rf.name)
				if ri < 0 || med[ri] == 0 || ri == ci {
					row += "\t"
					continue
				}
				// Per repetition: the same minute of the machine.
				var per []float64
				for k := range min(len(secs[ci]), len(secs[ri])) {
					if secs[ci][k] > 0 && secs[ri][k] > 0 {
						per = append(per, secs[ri][k]/secs[ci][k])
					}
				}
				if len(per) == 0 {
					row += fmt.Sprintf("%.2fx\t", med[ri]/med[ci])
					continue
				}
				row += fmt.Sprintf("%.2fx (%.2f-%.2f)\t", med[ri]/med[ci], slices.Min(per), slices.Max(per))
			}
			fmt.Fprintf(tw, "%s%d/%d\n", row, ok, reps)
		}
		tw.Flush()
	}
}

// size names an amount of GiB.
func size(gib float64) string {
	if gib < 1 {
		return fmt.Sprintf("%g MiB", gib*1024)
	}
	return fmt.Sprintf("%g GiB", gib)
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
