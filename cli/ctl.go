package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gaffer/api"
	"gaffer/config"
	"gaffer/core"
	"gaffer/stats"

	"github.com/urfave/cli/v2"
)

// defaultSocket is where gaffer listens when it is PID 1 or runs `gaffer up`.
const defaultSocket = "/run/gaffer.sock"

// clientFlags are the flags of every command that talks to a running gaffer.
func clientFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "socket", Aliases: []string{"s"}, EnvVars: []string{"GAFFER_SOCKET"}, Value: defaultSocket, Usage: "the API socket `PATH`"},
		&cli.BoolFlag{Name: "json", Usage: "print the API's JSON as it is"},
	}, extra...)
}

// clientCommands are the commands that control a running gaffer over its socket.
func clientCommands() []*cli.Command {
	cmd := func(name, usage, args string, action func(*ctl) error, extra ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, UsageText: "gaffer " + name + " [--socket PATH] [--json] " + args,
			Flags: clientFlags(extra...), OnUsageError: onUsage,
			Action: func(c *cli.Context) error {
				x := &ctl{c: c, client: api.Client{Path: c.String("socket"), Timeout: 70 * time.Second}, json: c.Bool("json"), out: c.App.Writer}
				return action(x)
			},
		}
	}
	return []*cli.Command{
		cmd("status", "show every process: pid, state, uptime, restarts, cpu, memory", "", (*ctl).status),
		cmd("stats", "show cpu, memory, fds and io per process (-w: every second)", "[-w] [NAME]", (*ctl).stats,
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "keep printing, every --interval"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "with -w, how often"}),
		cmd("signal", "send a signal to a process (-g: to its process group)", "SIG NAME", (*ctl).signal,
			&cli.BoolFlag{Name: "group", Aliases: []string{"g"}, Usage: "signal the whole process group"}),
		cmd("start", "start a stopped process and wait until it is ready", "NAME", func(x *ctl) error { return x.action("start") }),
		cmd("stop", "stop a process (it stays stopped) and wait until it exited", "NAME", func(x *ctl) error { return x.action("stop") }),
		cmd("restart", "stop and start a process", "NAME", func(x *ctl) error { return x.action("restart") }),
		cmd("logs", "print a process's recent output (-f: and follow it)", "[-f] [-n N] NAME", (*ctl).logs,
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "how many recent lines"},
			&cli.StringFlag{Name: "stream", Usage: "only this stream (out, err, or a custom stream's label)"}),
		cmd("send", "write TEXT (and a newline), or standard input, to a process's stdin", "NAME [TEXT...]", (*ctl).send,
			&cli.StringFlag{Name: "stream", Usage: "write to this custom stream instead of stdin"}),
		cmd("scale", "set how many instances of a process run", "NAME N", (*ctl).scale),
		cmd("events", "print gaffer's events as they happen (spawn, ready, exit, restart ...)", "", (*ctl).events),
		cmd("shutdown", "stop every process in order and exit, as SIGTERM does", "", (*ctl).shutdown),
		cmd("health", "exit 0 when every process that should run is ready, else 1 (Docker HEALTHCHECK)", "", (*ctl).health),
	}
}

// ctl is one client command.
type ctl struct {
	c      *cli.Context
	client api.Client
	json   bool
	out    io.Writer
}

// failed is a client error: one line, exit 1.
func failed(format string, args ...any) error {
	return exitCode{code: 1, err: fmt.Errorf(format, args...)}
}

// args checks the number of positional arguments.
func (x *ctl) args(min, max int) ([]string, error) {
	a := x.c.Args().Slice()
	if len(a) < min || len(a) > max {
		return nil, usagef("%s: wrong number of arguments (see gaffer %s --help)", x.c.Command.Name, x.c.Command.Name)
	}
	return a, nil
}

// request sends one request and decodes a 2xx JSON answer into v (when not nil); any failure is
// one line.
func (x *ctl) request(method, path string, body []byte, v any) ([]byte, error) {
	status, resp, err := x.client.Do(context.Background(), method, path, body)
	if err != nil {
		return nil, failed("%v", err)
	}
	if status < 200 || status > 299 {
		return resp, failed("%s", apiError(status, resp))
	}
	if v != nil {
		if err := json.Unmarshal(resp, v); err != nil {
			return resp, failed("bad answer from gaffer: %v", err)
		}
	}
	return resp, nil
}

// apiError is the message of an error answer: its "error" field, else the status.
func apiError(status int, body []byte) string {
	var e struct {
		Error   string   `json:"error"`
		Reasons []string `json:"reasons"`
	}
	if json.Unmarshal(body, &e) == nil {
		if e.Error != "" {
			return e.Error
		}
		if len(e.Reasons) > 0 {
			return strings.Join(e.Reasons, "; ")
		}
	}
	return fmt.Sprintf("gaffer answered %d", status)
}

func (x *ctl) printJSON(b []byte) {
	x.out.Write(bytes.TrimRight(b, "\n"))
	fmt.Fprintln(x.out)
}

func (x *ctl) status() error {
	if _, err := x.args(0, 0); err != nil {
		return err
	}
	var procs []core.Process
	raw, err := x.request("GET", "/v1/processes", nil, &procs)
	if err != nil {
		return err
	}
	if x.json {
		x.printJSON(raw)
		return nil
	}
	var snap stats.Snapshot
	_, _ = x.request("GET", "/v1/stats", nil, &snap)
	byName := map[string]stats.Entry{}
	for _, e := range snap.Processes {
		byName[e.Name] = e
	}
	tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
	// A STATUS column (sd_notify's STATUS=) only when some process sent one.
	withStatus := slices.ContainsFunc(procs, func(p core.Process) bool { return p.StatusText != "" })
	head := "NAME\tPID\tSTATE\tUPTIME\tRESTARTS\tCPU\tRSS"
	if withStatus {
		head += "\tSTATUS"
	}
	fmt.Fprintln(tw, head)
	for _, p := range procs {
		pid, uptime, cpu, rss := "-", "-", "-", "-"
		if p.Pid != 0 {
			pid, uptime = strconv.Itoa(p.Pid), (time.Duration(p.UptimeS) * time.Second).String()
			if e, ok := byName[p.Name]; ok {
				cpu, rss = fmt.Sprintf("%.1f%%", e.Tree.CPUPercent), bytesize(e.Tree.MemoryRSS)
			}
		}
		state := p.State
		if p.ExitCode != nil && p.Pid == 0 {
			state += fmt.Sprintf(" (%d)", *p.ExitCode)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s", p.Name, pid, state, uptime, p.Restarts, cpu, rss)
		if withStatus {
			line += "\t" + p.StatusText
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if w := memoryWarning(snap.Container); w != "" {
		fmt.Fprintln(x.out, w)
	}
	return nil
}

func (x *ctl) stats() error {
	a, err := x.args(0, 1)
	if err != nil {
		return err
	}
	path := "/v1/stats"
	if len(a) == 1 {
		path = "/v1/processes/" + url.PathEscape(a[0]) + "/stats"
	}
	print := func(b []byte) error {
		if x.json {
			x.printJSON(b)
			return nil
		}
		var snap stats.Snapshot
		if len(a) == 1 {
			var e stats.Entry
			if err := json.Unmarshal(b, &e); err != nil {
				return err
			}
			snap.Processes = []stats.Entry{e}
		} else if err := json.Unmarshal(b, &snap); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPID\tCPU%\tRSS\tTHREADS\tFDS\tREAD\tWRITE\tPROCS")
		for _, e := range snap.Processes {
			t := e.Tree
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%d\t%d\t%s\t%s\t%d\n", e.Name, e.Pid, t.CPUPercent, bytesize(t.MemoryRSS), t.NumThreads, t.NumFDs, bytesize(t.IOReadBytes), bytesize(t.IOWriteBytes), e.Procs)
		}
		if len(a) == 0 {
			g := snap.Gaffer
			fmt.Fprintf(tw, "(gaffer)\t-\t%.1f\t%s\t%d\t%d\t%s\t%s\t1\n", g.CPUPercent, bytesize(g.MemoryRSS), g.NumThreads, g.NumFDs, bytesize(g.IOReadBytes), bytesize(g.IOWriteBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if line := containerLine(snap.Container); line != "" {
			fmt.Fprintln(x.out, line)
		}
		return nil
	}
	if !x.c.Bool("watch") {
		raw, err := x.request("GET", path, nil, nil)
		if err != nil {
			return err
		}
		return print(raw)
	}
	// The server's floor, checked here too: a usage error is exit 2, also with no gaffer to ask.
	if d := x.c.Duration("interval"); d < 100*time.Millisecond {
		return usagef("stats: --interval %v: want at least 100ms", d)
	}
	return x.stream("GET", path+"?watch=1&interval="+url.QueryEscape(x.c.Duration("interval").String()), nil, print)
}

// stream prints a JSON-line stream until gaffer ends it.
func (x *ctl) stream(method, path string, body []byte, fn func([]byte) error) error {
	status, err := x.client.Stream(context.Background(), method, path, body, fn)
	if err != nil {
		return failed("%v", err)
	}
	if status < 200 || status > 299 {
		return failed("gaffer answered %d", status)
	}
	return nil
}

func (x *ctl) signal() error {
	a, err := x.args(2, 2)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"signal": a[0], "group": x.c.Bool("group")})
	_, err = x.request("POST", "/v1/processes/"+url.PathEscape(a[1])+"/signal", body, nil)
	return err
}

func (x *ctl) action(verb string) error {
	a, err := x.args(1, 1)
	if err != nil {
		return err
	}
	raw, err := x.request("POST", "/v1/processes/"+url.PathEscape(a[0])+"/"+verb+"?wait=1", nil, nil)
	if err == nil && x.json {
		x.printJSON(raw)
	}
	return err
}

func (x *ctl) logs() error {
	a, err := x.args(1, 1)
	if err != nil {
		return err
	}
	if n := x.c.Int("lines"); n < 0 {
		return usagef("logs: -n %d: want 0 or more lines", n)
	}
	q := url.Values{"tail": {strconv.Itoa(x.c.Int("lines"))}}
	if s := x.c.String("stream"); s != "" {
		q.Set("stream", s)
	}
	if x.c.Bool("follow") {
		q.Set("follow", "1")
	}
	return x.stream("GET", "/v1/processes/"+url.PathEscape(a[0])+"/logs?"+q.Encode(), nil, x.jsonLines("lines", func(b []byte) error {
		var l core.LogLine
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		fmt.Fprintln(x.out, l.Line)
		return nil
	}))
}

func (x *ctl) send() error {
	a, err := x.args(1, 1<<20)
	if err != nil {
		return err
	}
	var data []byte
	if len(a) > 1 {
		data = []byte(strings.Join(a[1:], " ") + "\n")
	} else if data, err = io.ReadAll(os.Stdin); err != nil {
		return failed("read stdin: %v", err)
	}
	path := "/v1/processes/" + url.PathEscape(a[0]) + "/stdin"
	if s := x.c.String("stream"); s != "" {
		path = "/v1/processes/" + url.PathEscape(a[0]) + "/streams/" + url.PathEscape(s)
	}
	_, err = x.request("POST", path, data, nil)
	return err
}

func (x *ctl) scale() error {
	a, err := x.args(2, 2)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(a[1])
	if err != nil || n < 0 {
		return usagef("scale: %q is not a number of instances", a[1])
	}
	if n > config.MaxInstances {
		return usagef("scale: %d instances: at most %d", n, config.MaxInstances)
	}
	body, _ := json.Marshal(map[string]int{"numprocesses": n})
	_, err = x.request("POST", "/v1/processes/"+url.PathEscape(a[0])+"/scale", body, nil)
	return err
}

// jsonLines prints a stream's JSON lines: as they came with --json, else with print; the
// server's {"dropped":N} in place of what this client fell behind on is said in a line of its own.
func (x *ctl) jsonLines(what string, print func([]byte) error) func([]byte) error {
	return func(b []byte) error {
		if x.json {
			x.printJSON(b)
			return nil
		}
		if n, ok := droppedMarker(b); ok {
			fmt.Fprintf(x.out, "[gaffer: %d %s dropped: this client fell behind]\n", n, what)
			return nil
		}
		return print(b)
	}
}

func (x *ctl) events() error {
	if _, err := x.args(0, 0); err != nil {
		return err
	}
	return x.stream("GET", "/v1/events?follow=1", nil, x.jsonLines("events", func(b []byte) error {
		var e core.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return err
		}
		line := e.Time.Format("15:04:05.000") + " " + e.Kind
		if e.Name != "" {
			line += " " + e.Name
		}
		if e.Pid != 0 {
			line += fmt.Sprintf(" pid=%d", e.Pid)
		}
		if e.Code != nil {
			line += fmt.Sprintf(" code=%d", *e.Code)
		}
		if e.Detail != "" {
			line += " " + e.Detail
		}
		fmt.Fprintln(x.out, line)
		return nil
	}))
}

// droppedMarker reads a stream's {"dropped": N}: N lines the server dropped before the next one.
func droppedMarker(b []byte) (int, bool) {
	if !bytes.HasPrefix(b, []byte(`{"dropped":`)) {
		return 0, false
	}
	var d api.Dropped
	if json.Unmarshal(b, &d) != nil {
		return 0, false
	}
	return d.Count, true
}

func (x *ctl) shutdown() error {
	if _, err := x.args(0, 0); err != nil {
		return err
	}
	_, err := x.request("POST", "/v1/shutdown", nil, nil)
	return err
}

func (x *ctl) health() error {
	if _, err := x.args(0, 0); err != nil {
		return err
	}
	status, body, err := x.client.Do(context.Background(), "GET", "/healthz", nil)
	if err != nil {
		return failed("%v", err)
	}
	if x.json {
		x.printJSON(body)
	}
	if status != 200 {
		return failed("unhealthy: %s", apiError(status, body))
	}
	return nil
}

// containerLine is `gaffer stats`' line of the container's cgroup: memory (the working set, what
// the kubelet evicts by), cpu and pids against their limits in percent, throttling and OOM
// kills; "" when gaffer found no cgroup.
func containerLine(c *stats.Container) string {
	if c == nil {
		return ""
	}
	var parts []string
	if m := c.Memory; m != nil {
		part := "memory " + bytesize(m.WorkingSetBytes)
		if m.LimitBytes != nil && *m.LimitBytes > 0 {
			part += fmt.Sprintf(" of %s (%.1f%%)", bytesize(*m.LimitBytes), 100*float64(m.WorkingSetBytes)/float64(*m.LimitBytes))
		} else {
			part += " (no limit)"
		}
		parts = append(parts, part)
	}
	if cpu := c.CPU; cpu != nil {
		part := fmt.Sprintf("cpu %.1f%%", c.CPUPercent)
		if cpu.LimitCores != nil && *cpu.LimitCores > 0 {
			part += fmt.Sprintf(" of %s cpus (%.1f%%)", strconv.FormatFloat(*cpu.LimitCores, 'f', -1, 64), c.CPUPercent / *cpu.LimitCores)
		} else {
			part += " (no limit)"
		}
		if cpu.ThrottledPeriods > 0 {
			part += fmt.Sprintf(", throttled in %d of %d periods (%.1fs)", cpu.ThrottledPeriods, cpu.Periods, cpu.ThrottledSeconds)
		}
		parts = append(parts, part)
	}
	if p := c.Pids; p != nil {
		part := fmt.Sprintf("pids %d", p.Current)
		if p.Limit != nil && *p.Limit > 0 {
			part += fmt.Sprintf(" of %d (%.1f%%)", *p.Limit, 100*float64(p.Current)/float64(*p.Limit))
		} else {
			part += " (no limit)"
		}
		parts = append(parts, part)
	}
	if m := c.Memory; m != nil && m.OOMKills > 0 {
		parts = append(parts, fmt.Sprintf("%d OOM kills", m.OOMKills))
	}
	return fmt.Sprintf("container (cgroup v%d): %s", c.Version, strings.Join(parts, ", "))
}

// memoryFull is the share of its memory limit above which `gaffer status` warns.
const memoryFull = 0.9

// memoryWarning is `gaffer status`' line when the container's working set is above memoryFull of
// its limit; "" otherwise.
func memoryWarning(c *stats.Container) string {
	if c == nil || c.Memory == nil || c.Memory.LimitBytes == nil || *c.Memory.LimitBytes == 0 {
		return ""
	}
	m := c.Memory
	share := float64(m.WorkingSetBytes) / float64(*m.LimitBytes)
	if share <= memoryFull {
		return ""
	}
	return fmt.Sprintf("warning: the container uses %.0f%% of its memory limit (working set %s of %s): the OOM killer is near", 100*share, bytesize(m.WorkingSetBytes), bytesize(*m.LimitBytes))
}

// bytesize prints a byte count for people: 12.3M.
func bytesize(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	f, suffix := float64(n), "KMGTP"
	i := -1
	for f >= unit && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f%c", f, suffix[i])
}
