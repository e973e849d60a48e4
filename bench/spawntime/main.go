// Command spawntime times commands from fork to reaped exit, interleaved: every round runs each
// command once, in an order that rotates from round to round, so that a noisy neighbour slows all
// of them alike instead of the one hyperfine happened to be running. It writes hyperfine's JSON
// export format (results[].command, results[].times in seconds), so bench/hfreport reads it.
//
//	spawntime -runs 300 -warmup 20 -out t.json 'true=/bin/true' 'tini=tini -s -- /bin/true'
//
// A command is split on spaces (no shell), like hyperfine -N. Its stdin is /dev/null, its stdout and
// stderr are discarded; a command that fails or prints anything stops the run, since its timing
// would mean little.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

type command struct {
	name  string
	argv  []string
	times []float64 // wall, seconds
	cpu   []float64 // user + system of the command and the children it waited for, seconds
}

type result struct {
	Command string    `json:"command"`
	Times   []float64 `json:"times"`
	CPU     []float64 `json:"cpu"`
	Median  float64   `json:"median"`
}

func main() {
	runs := flag.Int("runs", 300, "timed runs of each command")
	warmup := flag.Int("warmup", 20, "untimed runs of each command first")
	out := flag.String("out", "", "write the times as hyperfine-style JSON to `file`")
	flag.Parse()
	if flag.NArg() == 0 {
		fatalf("usage: spawntime [-runs N] [-warmup N] [-out FILE] NAME=COMMAND...")
	}
	var cs []*command
	for _, a := range flag.Args() {
		name, cmd, ok := strings.Cut(a, "=")
		if !ok || name == "" || len(strings.Fields(cmd)) == 0 {
			fatalf("bad argument %q: want NAME=COMMAND", a)
		}
		cs = append(cs, &command{name: name, argv: strings.Fields(cmd)})
	}
	// The timed children are waited for at once; an interrupt only ends the loop.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fatalf("%v", err)
	}
	// Output goes to a file, not a pipe: no copying goroutines in the timed path.
	outf, err := os.CreateTemp("", "spawntime-*")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.Remove(outf.Name())
	for r := 0; r < *warmup+*runs; r++ {
		select {
		case s := <-stop:
			fatalf("interrupted by %v", s)
		default:
		}
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			d, cpu, err := once(c.argv, devnull, outf)
			if err != nil {
				fatalf("%s (%s): %v", c.name, strings.Join(c.argv, " "), err)
			}
			if r >= *warmup {
				c.times = append(c.times, d.Seconds())
				c.cpu = append(c.cpu, cpu.Seconds())
			}
		}
	}
	var res struct {
		Results []result `json:"results"`
	}
	for _, c := range cs {
		s := slices.Clone(c.times)
		slices.Sort(s)
		u := slices.Clone(c.cpu)
		slices.Sort(u)
		res.Results = append(res.Results, result{c.name, c.times, c.cpu, s[len(s)/2]})
		fmt.Printf("%-28s median %8.3f ms  p10 %8.3f  p90 %8.3f  cpu median %8.3f ms\n", c.name, s[len(s)/2]*1e3, s[len(s)/10]*1e3, s[len(s)*9/10]*1e3, u[len(u)/2]*1e3)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", " ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

// once runs argv to its end and returns the time from just before the fork to the reaped exit,
// and the cpu time it used (with its waited-for children). out, empty before, takes its stdout
// and stderr.
func once(argv []string, stdin, out *os.File) (time.Duration, time.Duration, error) {
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = stdin, out, out
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	var cpu time.Duration
	if c.ProcessState != nil {
		cpu = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	st, serr := out.Stat()
	if serr == nil && st.Size() > 0 {
		b, _ := os.ReadFile(out.Name())
		return d, cpu, fmt.Errorf("printed %q (%v)", bytes.TrimSpace(b), err)
	}
	return d, cpu, err
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "spawntime: "+format+"\n", args...)
	os.Exit(1)
}
