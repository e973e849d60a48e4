// Command siglat measures signal forwarding latency through an init: the time from kill(init,
// SIGUSR1) to the moment the init's child sees the signal. Every init (gaffer, tini, dumb-init,
// catatonit) runs at once, as PID 1 of its own PID namespace, with the same child: this program in
// receiver mode. Signals go one at a time, round robin over the inits in a rotating order, and the
// next one leaves only after the previous one was acknowledged, so none can coalesce; a signal not
// acknowledged within -timeout counts as lost.
//
// Timing: the sender reads CLOCK_MONOTONIC right before kill(2); the receiver reads it when its
// os/signal channel delivers the signal and writes the reading to a FIFO of its own (a FIFO by path,
// so no init's handling of stdio is involved). The difference is the latency. The receiver is a Go
// program, so every figure includes Go's own signal delivery (handler, the signal goroutine, a
// channel): the "direct" row measures that floor with no init between, and the "added" columns
// subtract it. The floor is the same for every init, which is what makes the ratios fair.
//
//	siglat -gaffer ./gaffer -n 2000          # needs root for the PID namespaces (or -pid1=false)
//	siglat receive FIFO                      # the child; not for direct use
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// ackSize is one acknowledgement: the receiver's count of signals and its CLOCK_MONOTONIC reading.
// Far below PIPE_BUF, so every write to the FIFO is atomic.
const ackSize = 16

func main() {
	if len(os.Args) == 3 && os.Args[1] == "receive" {
		if err := receive(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "siglat receive: %v\n", err)
			os.Exit(1)
		}
		return
	}
	gaffer := flag.String("gaffer", "gaffer", "the gaffer `binary` under test")
	mingo := flag.String("mingo", "mingo", "the bench/mingo `binary`, the smallest Go init, for reference")
	inits := flag.String("inits", "gaffer,tini,dumb-init,catatonit,go-min", "comma-separated inits to measure")
	n := flag.Int("n", 2000, "signals per init")
	warmup := flag.Int("warmup", 50, "signals per init sent first and not counted")
	timeout := flag.Duration("timeout", time.Second, "a signal not acknowledged within this is lost")
	pid1 := flag.Bool("pid1", true, "run each init as PID 1 of a new PID namespace (needs root)")
	direct := flag.Bool("direct", true, "also signal a receiver directly, with no init: the floor")
	out := flag.String("out", "", "write every latency (ns) and the summary as JSON to `file`")
	wrap := flag.String("wrap", "", "with -pid1, run each init through `SCRIPT` in a new mount namespace too (bench/pid1env.sh: its own /proc and /run, as in a container)")
	var extra []string
	flag.Func("extra", "also measure `NAME=INIT ARGS...`: an init's argv up to its --, space-separated (repeatable)", func(v string) error {
		if name, argv, ok := strings.Cut(v, "="); ok && name != "" && len(strings.Fields(argv)) > 0 {
			extra = append(extra, v)
			return nil
		}
		return errors.New("want NAME=INIT [ARG...]")
	})
	flag.Parse()
	if *pid1 && os.Geteuid() != 0 {
		fatalf("-pid1 needs root (CLONE_NEWPID); run as root or with -pid1=false")
	}
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	known := map[string][]string{
		"gaffer":    {*gaffer, "--"},
		"tini":      {"tini", "-s", "--"}, // -s: no warning when not PID 1 (-pid1=false)
		"dumb-init": {"dumb-init"},
		"catatonit": {"catatonit", "--"},
		"go-min":    {*mingo, "--"},
	}
	dir, err := os.MkdirTemp("", "siglat-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(dir)

	var ts []*target
	if *direct {
		ts = append(ts, &target{name: "direct"})
	}
	for _, name := range strings.Split(*inits, ",") {
		argv, ok := known[name]
		if !ok {
			fatalf("unknown init %q", name)
		}
		ts = append(ts, &target{name: name, argv: argv})
	}
	for _, e := range extra {
		name, argv, _ := strings.Cut(e, "=")
		ts = append(ts, &target{name: name, argv: strings.Fields(argv)})
	}

	// Stop everything on Ctrl-C or a kill, as on any error.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() {
			var wg sync.WaitGroup
			for _, t := range ts {
				wg.Go(t.stop)
			}
			wg.Wait()
			os.RemoveAll(dir)
		})
	}
	go func() {
		s := <-sigs
		stopAll()
		fmt.Fprintf(os.Stderr, "siglat: %v: stopped\n", s)
		os.Exit(130)
	}()
	fail := func(format string, args ...any) {
		stopAll()
		fatalf(format, args...)
	}

	for _, t := range ts {
		if err := t.start(self, dir, *pid1 && t.argv != nil, *wrap); err != nil {
			fail("%s: %v", t.name, err)
		}
	}
	for i := -*warmup; i < *n; i++ {
		k := (i + *warmup) % len(ts)
		for j := range ts {
			t := ts[(k+j)%len(ts)]
			lat, err := t.ping(*timeout)
			switch {
			case errors.Is(err, errLost):
				if i >= 0 {
					t.lost++
				}
			case err != nil:
				fail("%s: %v", t.name, err)
			case i >= 0:
				t.lat = append(t.lat, lat)
			}
		}
	}
	for _, t := range ts {
		if err := t.alive(); err != nil {
			fail("%s: %v", t.name, err)
		}
	}
	stopAll()
	sum := summarize(ts)
	report(os.Stdout, sum, *n, *warmup, *pid1, *timeout)
	if *out != "" {
		raw := map[string]any{"summary": sum, "latency_ns": map[string][]time.Duration{}}
		for _, t := range ts {
			raw["latency_ns"].(map[string][]time.Duration)[t.name] = t.lat
		}
		b, _ := json.Marshal(raw)
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	lost := false
	for _, t := range ts {
		if t.lost > 0 {
			fmt.Fprintf(os.Stderr, "siglat: %s lost %d of %d signals\n", t.name, t.lost, *n)
			lost = true
		}
	}
	if lost {
		os.Exit(3)
	}
}

// target is one init (or none, for "direct") with its receiver.
type target struct {
	name string
	argv []string // the init's argv up to and including "--"; nil: the receiver alone
	cmd  *exec.Cmd
	pid  int      // what the signals go to
	fifo *os.File // read end of the receiver's acknowledgements
	lat  []time.Duration
	lost int
	done chan struct{} // closed when cmd has been waited for
	mu   sync.Mutex
}

var errLost = errors.New("lost")

func (t *target) start(self, dir string, newPID bool, wrap string) error {
	path := filepath.Join(dir, t.name+".fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return err
	}
	// O_RDWR: the open does not wait for a writer, and reads never see EOF when a receiver dies
	// (a dead receiver shows as lost signals, and then as a dead init).
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	t.fifo = f
	argv := append(slices.Clone(t.argv), self, "receive", path)
	if newPID && wrap != "" {
		argv = append([]string{wrap}, argv...)
	}
	t.cmd = exec.Command(argv[0], argv[1:]...)
	t.cmd.Stderr = os.Stderr
	// Setpgid: Ctrl-C reaches this program only, which then stops every init in order.
	// Pdeathsig is the backstop should this program be killed: SIGKILL to an init that is PID 1
	// takes its whole namespace. (It fires when the forking thread exits; this program never
	// locks a goroutine to a thread, so Go never ends one before the process does.)
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if newPID {
		t.cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
		if wrap != "" {
			t.cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNS
		}
	}
	t.mu.Lock()
	err = t.cmd.Start()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.pid = t.cmd.Process.Pid
	t.done = make(chan struct{})
	go func() {
		_ = t.cmd.Wait()
		close(t.done)
	}()
	// The receiver says it is ready (its signal handler is in place) with an acknowledgement of 0.
	if err := f.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return fmt.Errorf("FIFO without deadlines: %w", err)
	}
	var b [ackSize]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return fmt.Errorf("receiver not ready: %w", err)
	}
	return nil
}

// ping sends one SIGUSR1 and waits for its acknowledgement.
func (t *target) ping(timeout time.Duration) (time.Duration, error) {
	t0 := now()
	if err := unix.Kill(t.pid, unix.SIGUSR1); err != nil {
		return 0, fmt.Errorf("kill %d: %w", t.pid, err)
	}
	deadline := time.Now().Add(timeout)
	if err := t.fifo.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	var b [ackSize]byte
	for {
		if _, err := io.ReadFull(t.fifo, b[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if err := t.alive(); err != nil {
					return 0, err
				}
				return 0, errLost
			}
			return 0, err
		}
		t1 := time.Duration(binary.LittleEndian.Uint64(b[8:]))
		// An acknowledgement of an earlier signal that was given up on as lost: skip it.
		if t1 < t0 {
			continue
		}
		return t1 - t0, nil
	}
}

func (t *target) alive() error {
	select {
	case <-t.done:
		return fmt.Errorf("exited early: %v", t.cmd.ProcessState)
	default:
		return nil
	}
}

// stop ends the init and its receiver: SIGTERM, which every init forwards and which kills the
// receiver, then SIGKILL (which, to PID 1 of a namespace, kills the whole namespace) after 3s.
func (t *target) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd == nil || t.cmd.Process == nil || t.done == nil {
		return
	}
	select {
	case <-t.done:
		return
	default:
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(3 * time.Second):
		fmt.Fprintf(os.Stderr, "siglat: %s did not stop on SIGTERM within 3s: SIGKILL\n", t.name)
		_ = t.cmd.Process.Kill()
		<-t.done
	}
}

// receive is the child: it acknowledges every SIGUSR1 with its CLOCK_MONOTONIC reading.
func receive(path string) error {
	c := make(chan os.Signal, 64)
	signal.Notify(c, syscall.SIGUSR1)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	var b [ackSize]byte
	if _, err := f.Write(b[:]); err != nil {
		return err
	}
	var count uint64
	for range c {
		t := now()
		count++
		binary.LittleEndian.PutUint64(b[:8], count)
		binary.LittleEndian.PutUint64(b[8:], uint64(t))
		if _, err := f.Write(b[:]); err != nil {
			return err
		}
	}
	return nil
}

// now is CLOCK_MONOTONIC, the same clock in every process.
func now() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// summary is one init's figures, in microseconds.
type summary struct {
	Name                     string
	N, Lost                  int
	P50, P90, P99, Max, Mean float64
}

func summarize(ts []*target) []summary {
	var out []summary
	for _, t := range ts {
		s := summary{Name: t.name, N: len(t.lat), Lost: t.lost}
		if len(t.lat) > 0 {
			l := slices.Clone(t.lat)
			slices.Sort(l)
			q := func(p float64) float64 { return us(l[min(len(l)-1, int(p*float64(len(l))))]) }
			s.P50, s.P90, s.P99, s.Max = q(0.50), q(0.90), q(0.99), us(l[len(l)-1])
			var sum time.Duration
			for _, d := range l {
				sum += d
			}
			s.Mean = us(sum / time.Duration(len(l)))
		}
		out = append(out, s)
	}
	return out
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

func report(w io.Writer, sum []summary, n, warmup int, pid1 bool, timeout time.Duration) {
	where := "as PID 1 of a new PID namespace"
	if !pid1 {
		where = "as a plain child (not PID 1)"
	}
	fmt.Fprintf(w, "## SIGUSR1 forwarding latency, kill(init) -> child's Go handler: %d signals each (+%d warmup), one at a time, round robin; inits %s; lost = no ack within %v; us\n",
		n, warmup, where, timeout)
	var base, tini *summary
	for i := range sum {
		switch sum[i].Name {
		case "direct":
			base = &sum[i]
		case "tini":
			tini = &sum[i]
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "target\tacked\tlost\tp50\tp90\tp99\tmax\tmean\t+p50\t+p99\tx p50 vs tini\tx p99 vs tini\tx +p50 vs tini\tx +p99 vs tini\t\n")
	for _, s := range sum {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t", s.Name, s.N, s.Lost, s.P50, s.P90, s.P99, s.Max, s.Mean)
		if base != nil && s.Name != "direct" {
			fmt.Fprintf(tw, "%.1f\t%.1f\t", s.P50-base.P50, s.P99-base.P99)
		} else {
			fmt.Fprint(tw, "-\t-\t")
		}
		if tini != nil && s.Name != "direct" {
			fmt.Fprintf(tw, "%.2f\t%.2f\t", s.P50/tini.P50, s.P99/tini.P99)
			if base != nil {
				fmt.Fprintf(tw, "%s\t%s\t\n", ratio(s.P50-base.P50, tini.P50-base.P50), ratio(s.P99-base.P99, tini.P99-base.P99))
			} else {
				fmt.Fprint(tw, "-\t-\t\n")
			}
		} else {
			fmt.Fprint(tw, "-\t-\t-\t-\t\n")
		}
	}
	tw.Flush()
	if base != nil {
		fmt.Fprintln(w, "direct: the receiver signalled with no init between (Go's own delivery, the floor); +pXX: pXX minus direct's pXX")
	}
	var g, m *summary
	for i := range sum {
		switch sum[i].Name {
		case "gaffer":
			g = &sum[i]
		case "go-min":
			m = &sum[i]
		}
	}
	if g != nil && m != nil && m.P50 > 0 && m.P99 > 0 {
		fmt.Fprintf(w, "gaffer vs go-min (the smallest Go init, bench/mingo): x p50 %.2f, x p99 %.2f\n", g.P50/m.P50, g.P99/m.P99)
	}
}

// ratio formats a/b, or n/a when noise made either side of a difference negative.
func ratio(a, b float64) string {
	if a < 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "siglat: "+format+"\n", args...)
	os.Exit(1)
}
