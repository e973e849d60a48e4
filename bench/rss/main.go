// Command rss measures the idle memory of each init running as PID 1 of a new PID namespace (what
// `unshare -p -f INIT -- sleep 1000` gives) with one child, `sleep 1000`. Once the child has
// exec'd sleep and a settling pause has passed, it reads VmRSS (and its anon/file split) from
// /proc/PID/status and Pss from /proc/PID/smaps_rollup, then kills the namespace. Each init is
// measured -samples times, alternating, and the median is reported with ratios to tini.
//
// Needs root (CLONE_NEWPID).
package main

import (
	"bufio"
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// fields are read from /proc/PID/status (kB) and smaps_rollup (kB, "Pss..." names).
var statusFields = []string{"VmRSS", "RssAnon", "RssFile", "VmHWM", "Threads"}
var rollupFields = []string{"Pss", "Pss_Anon", "Pss_File"}

type target struct {
	name string
	argv []string // the init's argv up to and including its "--", if any; the child follows
}

// sample is one measurement of one init: field name -> value.
type sample map[string]int

func main() {
	gaffer := flag.String("gaffer", "gaffer", "the gaffer `binary` under test")
	mingo := flag.String("mingo", "mingo", "the bench/mingo `binary`, the smallest Go init, for reference")
	inits := flag.String("inits", "gaffer,tini,dumb-init,catatonit,go-min", "comma-separated inits to measure")
	samples := flag.Int("samples", 5, "measurements per init (median reported)")
	settle := flag.Duration("settle", 500*time.Millisecond, "pause between the child running and the reading")
	out := flag.String("out", "", "write the raw samples as JSON to `file`")
	wrap := flag.String("wrap", "", "run each init through `SCRIPT` in a new mount namespace too (bench/pid1env.sh: its own /proc and /run, as in a container)")
	targetKB := flag.Int("target-anon-kb", 800, "gaffer's RssAnon target, reported as met or not")
	var extra []target
	flag.Func("extra", "also measure `NAME=INIT ARGS...`: an init's argv up to its --, space-separated (repeatable)", func(v string) error {
		name, argv, ok := strings.Cut(v, "=")
		if !ok || name == "" || len(strings.Fields(argv)) == 0 {
			return errors.New("want NAME=INIT [ARG...]")
		}
		extra = append(extra, target{name, strings.Fields(argv)})
		return nil
	})
	flag.Parse()

	known := map[string]target{
		"gaffer":    {"gaffer", []string{*gaffer, "--"}},
		"tini":      {"tini", []string{"tini", "--"}},
		"dumb-init": {"dumb-init", []string{"dumb-init"}},
		"catatonit": {"catatonit", []string{"catatonit", "--"}},
		"go-min":    {"go-min", []string{*mingo, "--"}},
	}
	var ts []target
	for _, n := range strings.Split(*inits, ",") {
		t, ok := known[n]
		if !ok {
			fatalf("unknown init %q", n)
		}
		ts = append(ts, t)
	}
	ts = append(ts, extra...)
	if os.Geteuid() != 0 {
		fatalf("needs root to make PID namespaces")
	}

	live := &liveSet{m: map[int]*exec.Cmd{}}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		live.killAll()
		fmt.Fprintf(os.Stderr, "rss: %v: stopped\n", s)
		os.Exit(130)
	}()

	results := map[string][]sample{}
	for i := 0; i < *samples; i++ {
		for j := range ts {
			t := ts[(i+j)%len(ts)]
			s, err := measure(live, t, *settle, *wrap)
			if err != nil {
				live.killAll()
				fatalf("%s: %v", t.name, err)
			}
			results[t.name] = append(results[t.name], s)
		}
	}
	if *out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	report(os.Stdout, ts, results, *samples, *settle, *targetKB)
}

// measure starts one init as PID 1 of a new PID namespace with `sleep 1000` as its child, reads
// its memory once the child is running, and kills the namespace.
func measure(live *liveSet, t target, settle time.Duration, wrap string) (sample, error) {
	argv := append(slices.Clone(t.argv), "sleep", "1000")
	if wrap != "" {
		argv = append([]string{wrap}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr // stdin and stdout: /dev/null
	// Setpgid: a Ctrl-C at the terminal reaches this program only, which then kills the namespace.
	// Pdeathsig is the backstop should this program be killed (it never locks a goroutine to a
	// thread, so the forking thread lives as long as the process).
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if wrap != "" {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	live.add(cmd)
	defer live.kill(cmd)
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c := childRunning(pid, "sleep"); c > 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the child did not start within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(settle)
	if childRunning(pid, "sleep") == 0 {
		return nil, errors.New("the child is gone")
	}
	s := sample{}
	if err := readKB(fmt.Sprintf("/proc/%d/status", pid), statusFields, s); err != nil {
		return nil, err
	}
	if err := readKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), rollupFields, s); err != nil {
		return nil, err
	}
	return s, nil
}

// childRunning returns the pid of a child of pid whose comm is name, or 0. A Go program forks from
// any of its threads, so every task's children list is read.
func childRunning(pid int, name string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			comm, err := os.ReadFile("/proc/" + c + "/comm")
			if err == nil && strings.TrimSpace(string(comm)) == name {
				n, _ := strconv.Atoi(c)
				return n
			}
		}
	}
	return 0
}

// readKB reads "Name: value [kB]" lines of a /proc file into s for the wanted names.
func readKB(path string, names []string, s sample) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(names, k) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, k, err)
		}
		s[k] = n
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := s[n]; !ok {
			return fmt.Errorf("%s: no %s", path, n)
		}
	}
	return nil
}

func report(w io.Writer, ts []target, res map[string][]sample, samples int, settle time.Duration, targetKB int) {
	fmt.Fprintf(w, "## idle memory as PID 1 (CLONE_NEWPID) with child `sleep 1000`: median of %d samples, read %v after the child runs; kB\n", samples, settle)
	cols := append(append([]string{}, statusFields...), rollupFields...)
	med := func(name, field string) int {
		var xs []int
		for _, s := range res[name] {
			xs = append(xs, s[field])
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "init\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprint(tw, "VmRSS min-max\texe kB\tx RssAnon vs tini\tx VmRSS vs tini\tx Pss vs tini\t\n")
	_, haveTini := res["tini"]
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t", t.name)
		for _, c := range cols {
			fmt.Fprintf(tw, "%d\t", med(t.name, c))
		}
		lo, hi := 1<<62, 0
		for _, s := range res[t.name] {
			lo, hi = min(lo, s["VmRSS"]), max(hi, s["VmRSS"])
		}
		fmt.Fprintf(tw, "%d-%d\t%s\t", lo, hi, exeKB(t.argv[0]))
		if haveTini {
			fmt.Fprintf(tw, "%.2f\t%.2f\t%.2f\t\n", float64(med(t.name, "RssAnon"))/float64(med("tini", "RssAnon")),
				float64(med(t.name, "VmRSS"))/float64(med("tini", "VmRSS")), float64(med(t.name, "Pss"))/float64(med("tini", "Pss")))
		} else {
			fmt.Fprint(tw, "-\t-\t-\t\n")
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "exe kB: size of the init's executable file (shared libraries not counted); RssFile is mostly its pages")
	if _, ok := res["gaffer"]; ok {
		v := med("gaffer", "VmRSS")
		if _, ok := res["go-min"]; ok {
			m := med("go-min", "VmRSS")
			fmt.Fprintf(w, "gaffer vs go-min (the smallest Go init, bench/mingo): +%d kB RssAnon (x %.2f), +%d kB VmRSS (+%d kB file)\n",
				med("gaffer", "RssAnon")-med("go-min", "RssAnon"), float64(med("gaffer", "RssAnon"))/float64(med("go-min", "RssAnon")),
				v-m, med("gaffer", "RssFile")-med("go-min", "RssFile"))
		}
		a := med("gaffer", "RssAnon")
		verdict := "met"
		if a > targetKB {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "gaffer RssAnon %d kB (what each container pays; VmRSS %d kB, the rest is the executable's pages in the page cache, shared by the containers of one image): target <= %d kB %s\n", a, v, targetKB, verdict)
	}
}

// exeKB is the size of the executable an argv[0] names, or "?".
func exeKB(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return "?"
	}
	st, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return strconv.FormatInt(st.Size()/1024, 10)
}

// liveSet holds the namespaces started and not yet killed, for cleanup on a signal or an error.
type liveSet struct {
	mu sync.Mutex
	m  map[int]*exec.Cmd // guarded by mu
}

func (l *liveSet) add(c *exec.Cmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[c.Process.Pid] = c
}

// kill sends SIGKILL to the namespace's PID 1, which takes every process of the namespace with it,
// and waits for it.
func (l *liveSet) kill(c *exec.Cmd) {
	l.mu.Lock()
	_, ok := l.m[c.Process.Pid]
	delete(l.m, c.Process.Pid)
	l.mu.Unlock()
	if !ok {
		return
	}
	_ = c.Process.Kill()
	_ = c.Wait()
}

func (l *liveSet) killAll() {
	l.mu.Lock()
	cs := make([]*exec.Cmd, 0, len(l.m))
	for _, c := range l.m {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		l.kill(c)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "rss: "+format+"\n", args...)
	os.Exit(1)
}
