// Command relay measures the throughput of line relays side by side, in one run: the raw pipe
// (cat), s6-log (Debian's s6; the line-aware relay), supervisord relaying a child's stdout to
// /dev/stdout (it copies chunks and prefixes nothing), and gaffer's relay package (a child
// spawned and its stdout relayed through relay.Writer, as `gaffer up` does).
//
// Two workloads, both written by a producer in 64 KiB writes: 1 GiB in 1 KiB lines (reported in
// MB/s of input) and 10M lines of 16 bytes (lines/s). The time runs from the producer's first
// write to the last byte out. With -sink pipe (the default) the relay writes into a pipe this
// program drains and counts, which also checks that every line came out; with -sink null it
// writes to /dev/null and the time ends when the relay exits (for supervisord, which does not
// exit, when the producer is done). Each case runs -reps times, interleaved; medians are shown.
//
//	relay [-reps 3] [-sink pipe|null] [-only raw,s6-log,...] [-extra 'NAME=SHELL CMD']
//	relay produce -line 1024 -lines 1048576 [-notify FIFO]   the producer
//	relay gaffer [-format prefix|json|raw] [-timestamps] [-color] -- CMD...   gaffer's relay
//
// An -extra command reads the producer's command line from $PRODUCER, e.g. a future
// -extra 'gaffer-up=printf "bench: %s\n" "$PRODUCER" >/tmp/Procfile && gaffer up -f /tmp/Procfile'.
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
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"gaffer/relay"
)

// writeSize is the size of every write of the producer.
const writeSize = 64 << 10

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "produce":
			os.Exit(produce(os.Args[2:]))
		case "gaffer":
			os.Exit(gafferRelay(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:]))
}

// produce writes -lines lines of -line bytes each to stdout in writes of 64 KiB. With -notify it
// writes "start UNIXNANO" to that FIFO before its first write and "done UNIXNANO" after the last.
func produce(args []string) int {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	size := fs.Int("line", 1024, "bytes per line, newline included; must divide 65536")
	lines := fs.Int64("lines", 1<<20, "number of lines")
	notify := fs.String("notify", "", "FIFO to report start and end times to")
	if fs.Parse(args) != nil {
		return 2
	}
	if *size < 1 || writeSize%*size != 0 {
		fmt.Fprintf(os.Stderr, "produce: -line %d does not divide %d\n", *size, writeSize)
		return 2
	}
	block := make([]byte, writeSize)
	for i := range block {
		block[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%*size%36]
		if i%*size == *size-1 {
			block[i] = '\n'
		}
	}
	var note *os.File
	if *notify != "" {
		var err error
		if note, err = os.OpenFile(*notify, os.O_WRONLY, 0); err != nil {
			fmt.Fprintf(os.Stderr, "produce: %v\n", err)
			return 1
		}
		fmt.Fprintf(note, "start %d\n", time.Now().UnixNano())
	}
	total := *lines * int64(*size)
	for total > 0 {
		n := min(total, writeSize)
		if _, err := os.Stdout.Write(block[:n]); err != nil {
			fmt.Fprintf(os.Stderr, "produce: %v\n", err)
			return 1
		}
		total -= n
	}
	os.Stdout.Close()
	if note != nil {
		fmt.Fprintf(note, "done %d\n", time.Now().UnixNano())
	}
	return 0
}

// gafferRelay runs CMD with its stdout on a pipe and relays that through relay.Writer to stdout.
func gafferRelay(args []string) int {
	fs := flag.NewFlagSet("gaffer", flag.ContinueOnError)
	format := fs.String("format", "prefix", "prefix, json or raw")
	stamps := fs.Bool("timestamps", false, "timestamps in front of prefixed lines")
	color := fs.Bool("color", false, "coloured prefixes")
	if fs.Parse(args) != nil || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: relay gaffer [flags] -- CMD...")
		return 2
	}
	f, err := relay.ParseFormat(*format)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gaffer: %v\n", err)
		return 2
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gaffer: %v\n", err)
		return 1
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "gaffer: %v\n", err)
		return 1
	}
	w.Close()
	out := relay.NewWriter(os.Stdout, relay.Options{Format: f, Timestamps: *stamps, Color: *color, NameWidth: 5})
	cerr := out.Copy(r, relay.Source{Name: "bench", Pid: cmd.Process.Pid, Stream: "out"})
	werr := cmd.Wait()
	for _, err := range []error{cerr, out.Err(), werr} {
		if err != nil {
			fmt.Fprintf(os.Stderr, "gaffer: %v\n", err)
			return 1
		}
	}
	return 0
}

// contender is one relay under test.
type contender struct {
	name  string
	shell string // a shell command reading $PRODUCER; "" for supervisord
	super bool   // supervisord: configured from a file, does not exit by itself
}

type workload struct {
	name  string
	line  int
	lines int64
}

// result is one measured run.
type result struct {
	secs  float64
	lines int64 // lines out, -1 when not counted
	err   error
}

func run(args []string) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "runs of each case")
	sink := fs.String("sink", "pipe", "pipe (drained and counted here) or null (/dev/null)")
	only := fs.String("only", "", "comma-separated contender names to run (default all)")
	gib := fs.Float64("gib", 1, "GiB of 1 KiB lines in the byte workload")
	small := fs.Int64("lines", 10_000_000, "16-byte lines in the line workload")
	var extras []string
	fs.Func("extra", "NAME=SHELL CMD: one more contender; $PRODUCER holds the producer's command", func(s string) error {
		if !strings.Contains(s, "=") {
			return errors.New("want NAME=SHELL CMD")
		}
		extras = append(extras, s)
		return nil
	})
	if fs.Parse(args) != nil || (*sink != "pipe" && *sink != "null") {
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	if strings.ContainsAny(self+os.TempDir(), " \t\n'\"\\$") {
		fmt.Fprintln(os.Stderr, "relay: the paths of this program and of TMPDIR must not need quoting")
		return 1
	}
	me := self
	all := []contender{
		{name: "raw pipe (cat)", shell: `$PRODUCER | cat`},
		{name: "s6-log", shell: `$PRODUCER | s6-log -- 1`},
		{name: "s6-log -b", shell: `$PRODUCER | s6-log -b -- 1`},
		{name: "supervisord", super: true},
		{name: "gaffer prefix", shell: me + ` gaffer -- $PRODUCER`},
		{name: "gaffer prefix+ts+color", shell: me + ` gaffer -timestamps -color -- $PRODUCER`},
		{name: "gaffer json", shell: me + ` gaffer -format json -- $PRODUCER`},
	}
	for _, e := range extras {
		name, cmd, _ := strings.Cut(e, "=")
		all = append(all, contender{name: name, shell: cmd})
	}
	var cs []contender
	for _, c := range all {
		if *only == "" || slices.Contains(strings.Split(*only, ","), c.name) {
			cs = append(cs, c)
		}
	}
	for _, c := range cs {
		bin := ""
		switch {
		case c.super:
			bin = "supervisord"
		case strings.HasPrefix(c.name, "s6-log"):
			bin = "s6-log"
		}
		if _, err := exec.LookPath(bin); bin != "" && err != nil {
			fmt.Fprintf(os.Stderr, "relay: %s missing (apt-get install -y s6 supervisor)\n", bin)
			return 1
		}
	}
	wls := []workload{
		{name: fmt.Sprintf("%g GiB in 1 KiB lines", *gib), line: 1024, lines: int64(*gib * (1 << 20))},
		{name: fmt.Sprintf("%d lines of 16 bytes", *small), line: 16, lines: *small},
	}
	dir, err := os.MkdirTemp("", "relaybench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	res := map[[2]int][]result{}
	for rep := range *reps {
		for wi, wl := range wls {
			for ci, c := range cs {
				fmt.Fprintf(os.Stderr, "relay: rep %d/%d, %s, %s ... ", rep+1, *reps, wl.name, c.name)
				r := measure(dir, self, c, wl, *sink == "pipe")
				if r.err != nil {
					fmt.Fprintf(os.Stderr, "error: %v\n", r.err)
				} else {
					fmt.Fprintf(os.Stderr, "%.3fs\n", r.secs)
				}
				res[[2]int{wi, ci}] = append(res[[2]int{wi, ci}], r)
			}
		}
	}
	report(os.Stdout, wls, cs, res, *sink, *reps)
	return 0
}

// measure runs one contender on one workload.
func measure(dir, self string, c contender, wl workload, countOut bool) result {
	fifo := filepath.Join(dir, "notify")
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return result{err: err}
	}
	// O_RDWR: the open does not wait for the producer, and the FIFO never reports EOF early.
	note, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return result{err: err}
	}
	defer note.Close()
	times := make(chan int64, 2)
	go func() {
		sc := bufio.NewScanner(note)
		for sc.Scan() {
			_, v, _ := strings.Cut(sc.Text(), " ")
			n, _ := strconv.ParseInt(v, 10, 64)
			times <- n
		}
	}()
	// Plain words: sh splits $PRODUCER on blanks and would keep quotes literally (run checks that
	// the paths have no blanks).
	producer := fmt.Sprintf("%s produce -line %d -lines %d -notify %s", self, wl.line, wl.lines, fifo)

	var cmd *exec.Cmd
	if c.super {
		conf := filepath.Join(dir, "supervisord.conf")
		if err := os.WriteFile(conf, []byte(supervisordConf(dir, producer)), 0o600); err != nil {
			return result{err: err}
		}
		cmd = exec.Command("supervisord", "-n", "-c", conf)
	} else {
		cmd = exec.Command("/bin/sh", "-c", c.shell)
		cmd.Env = append(os.Environ(), "PRODUCER="+producer)
	}
	cmd.Stderr = os.Stderr
	var sinkR *os.File
	if countOut {
		r, w, err := os.Pipe()
		if err != nil {
			return result{err: err}
		}
		sinkR, cmd.Stdout = r, w
		defer r.Close()
		defer w.Close()
	} else {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return result{err: err}
		}
		defer null.Close()
		cmd.Stdout = null
	}
	if err := cmd.Start(); err != nil {
		return result{err: err}
	}
	exited := make(chan struct{}) // closed when cmd ended, waitErr set
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	if f, ok := cmd.Stdout.(*os.File); ok {
		f.Close()
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	timeout := time.After(5 * time.Minute)
	var start int64
	select {
	case start = <-times:
	case <-exited:
		return result{err: fmt.Errorf("exited before the producer started: %v", waitErr)}
	case <-timeout:
		stop()
		return result{err: errors.New("producer did not start")}
	}

	r := result{lines: -1}
	if countOut {
		// Drain and count; supervisord never closes its stdout, so stop at the expected count.
		type drained struct {
			lines int64
			end   time.Time
		}
		got := make(chan drained, 1)
		go func() {
			buf := make([]byte, 1<<20)
			var d drained
			for {
				n, err := sinkR.Read(buf)
				if n > 0 {
					d.lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
					d.end = time.Now()
				}
				if err != nil || (c.super && d.lines >= wl.lines) {
					break
				}
			}
			got <- d
		}()
		select {
		case d := <-got:
			r.lines, r.secs = d.lines, d.end.Sub(time.Unix(0, start)).Seconds()
		case <-timeout:
			r.err = errors.New("timeout")
		}
		if c.super || r.err != nil {
			stop()
		}
		<-exited
		if waitErr != nil && !c.super && r.err == nil {
			r.err = waitErr
		}
		if r.err == nil && r.lines != wl.lines {
			r.err = fmt.Errorf("%d lines out, want %d", r.lines, wl.lines)
		}
		return r
	}
	if c.super {
		select {
		case end := <-times:
			r.secs = time.Unix(0, end).Sub(time.Unix(0, start)).Seconds()
		case <-timeout:
			r.err = errors.New("timeout")
		}
		stop()
		return r
	}
	select {
	case <-exited:
		r.secs, r.err = time.Since(time.Unix(0, start)).Seconds(), waitErr
	case <-timeout:
		stop()
		r.err = errors.New("timeout")
	}
	return r
}

// supervisordConf runs the producer once and relays its stdout to supervisord's own stdout.
func supervisordConf(dir, producer string) string {
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
`, dir, producer)
}

// report prints one table per workload: medians, with ratios to the raw pipe and to s6-log.
func report(w io.Writer, wls []workload, cs []contender, res map[[2]int][]result, sink string, reps int) {
	fmt.Fprintf(w, "# relay throughput, %s; producer writes 64 KiB at a time; sink: %s; median of %d\n",
		time.Now().UTC().Format(time.RFC3339), map[string]string{"pipe": "a pipe drained and counted", "null": "/dev/null"}[sink], reps)
	fmt.Fprintf(w, "# %s, %d cpus\n", kernel(), runtime.NumCPU())
	for wi, wl := range wls {
		bytesIn := float64(wl.line) * float64(wl.lines)
		med := make([]float64, len(cs))
		for ci := range cs {
			var secs []float64
			for _, r := range res[[2]int{wi, ci}] {
				if r.err == nil {
					secs = append(secs, r.secs)
				}
			}
			med[ci] = median(secs)
		}
		ref := func(prefix string) float64 {
			for ci, c := range cs {
				if strings.HasPrefix(c.name, prefix) && med[ci] > 0 {
					return med[ci]
				}
			}
			return 0
		}
		raw := ref("raw")
		// Against the faster of s6-log's two modes.
		s6 := 0.0
		for ci, c := range cs {
			if strings.HasPrefix(c.name, "s6-log") && med[ci] > 0 && (s6 == 0 || med[ci] < s6) {
				s6 = med[ci]
			}
		}
		fmt.Fprintf(w, "\n## %s (%.0f MB in)\n", wl.name, bytesIn/1e6)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "relay\tseconds\tMB/s\tMlines/s\tvs raw pipe\tvs s6-log\truns ok\t")
		for ci, c := range cs {
			ok := 0
			for _, r := range res[[2]int{wi, ci}] {
				if r.err == nil {
					ok++
				}
			}
			if med[ci] == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%d/%d\t\n", c.name, ok, reps)
				continue
			}
			fmt.Fprintf(tw, "%s\t%.3f\t%.0f\t%.1f\t%s\t%s\t%d/%d\t\n", c.name, med[ci], bytesIn/med[ci]/1e6,
				float64(wl.lines)/med[ci]/1e6, ratio(raw, med[ci]), ratio(s6, med[ci]), ok, reps)
		}
		tw.Flush()
	}
}

// ratio is the speed of the contender relative to the reference, from their times.
func ratio(ref, secs float64) string {
	if ref == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", ref/secs)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func kernel() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "linux"
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return "linux " + string(b)
}
