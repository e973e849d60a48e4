package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"gaffer/api"
	"gaffer/config"
	"gaffer/core"
	"gaffer/sockfile"
	"gaffer/stats"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// defaultSocket is where gaffer listens when it is PID 1 or runs `gaffer up`.
const defaultSocket = "/run/gaffer.sock"

// clientFlags are the flags of every command that talks to a running gaffer.
func clientFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "socket", Aliases: []string{"s"}, EnvVars: []string{"GAFFER_SOCKET"}, Usage: "the API socket `PATH`",
			DefaultText: defaultSocket + ", else the first fallback that answers"},
		&cli.BoolFlag{Name: "json", Usage: "print the API's JSON as it is"},
	}, extra...)
}

// clientTimeout bounds a client command's request (start, restart and reload wait up to 60 s).
const clientTimeout = 70 * time.Second

// clientCommands are the commands that control a running gaffer over its socket.
func clientCommands() []*cli.Command {
	cmd := func(name, usage, args string, action func(*ctl) error, extra ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, UsageText: "gaffer " + name + " [--socket PATH] [--json] " + args,
			Flags: clientFlags(extra...), OnUsageError: onUsage,
			Action: func(c *cli.Context) error {
				x := &ctl{c: c, client: api.Client{Timeout: clientTimeout}, json: c.Bool("json"), out: c.App.Writer}
				return action(x)
			},
		}
	}
	health := cmd("health", "exit 0 when healthy, 1 when not, 2 when it cannot tell; one line on stdout (Docker HEALTHCHECK, Kubernetes exec probes)", "[--level alive|ready] [NAME...]", (*ctl).health,
		&cli.StringFlag{Name: "level", Aliases: []string{"l"}, Value: core.LevelAlive, Usage: "`alive`: no process fatal or unhealthy; ready: and every one ready, gaffer not draining"},
		&cli.DurationFlag{Name: "timeout", Value: healthTimeout, Usage: "give up (exit 2) when gaffer has not answered within `D`"})
	// A health check's only output is its one line on stdout, usage errors included.
	health.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		fmt.Fprintf(c.App.Writer, "error: %v\n", err)
		return exitCode{code: 2}
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
		cmd("shutdown", "stop every process in order and exit, as SIGTERM does (after the drain, unless --no-drain)", "[--no-drain]", (*ctl).shutdown,
			&cli.BoolFlag{Name: "no-drain", Usage: "stop at once, without the drain (settings.drain)"}),
		cmd("reload", "read the configuration again and apply what changed (--dry-run: only say what would change)", "[--dry-run]", (*ctl).reload,
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the plan, change nothing"}),
		health,
	}
}

// ctl is one client command.
type ctl struct {
	c      *cli.Context
	client api.Client // its Path is set by connect
	json   bool
	out    io.Writer
}

// connect finds the socket to talk to, once: the one asked for (--socket, GAFFER_SOCKET), else the
// first of defaultSockets that accepts a connection. Its error is one line.
func (x *ctl) connect(ctx context.Context) error {
	if x.client.Path != "" {
		return nil
	}
	if x.c.IsSet("socket") {
		p := x.c.String("socket")
		if p == "" {
			return usagef("%s: --socket (or GAFFER_SOCKET) is empty", x.c.Command.Name)
		}
		x.client.Path = p
		return nil
	}
	p, err := findSocket(ctx, defaultSockets(os.Getenv, os.Geteuid()))
	if err != nil {
		return err
	}
	x.client.Path = p
	return nil
}

// findSocket returns the first candidate that accepts a connection. A private directory is used
// only when it passes the server's rules (sockfile.CheckPrivateDir). When none answers, the error
// is the first candidate's that exists (a refused connection, a refused directory), else "no gaffer
// socket found (tried: ...)".
func findSocket(ctx context.Context, cands []socketCandidate) (string, error) {
	var tried []string
	var first error
	var d net.Dialer
	for _, c := range cands {
		if len(c.path) > sockfile.MaxPath {
			continue // gaffer cannot listen there either
		}
		tried = append(tried, c.path)
		if c.private != "" {
			if err := sockfile.CheckPrivateDir(c.private); err != nil {
				if !errors.Is(err, os.ErrNotExist) && first == nil {
					first = err
				}
				continue
			}
		}
		// A socket someone else made where gaffer's could be ($XDG_RUNTIME_DIR=/tmp, say) would
		// get this client's stdin writes and answer its health checks: only root's or ours.
		if err := trustedOwner(c.path, os.Geteuid()); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		conn, err := d.DialContext(ctx, "unix", c.path)
		if err == nil {
			conn.Close()
			return c.path, nil
		}
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) && first == nil {
			first = fmt.Errorf("cannot reach gaffer at %s: %w", c.path, errnoOf(err))
		}
	}
	if first != nil {
		return "", first
	}
	return "", fmt.Errorf("no gaffer socket found (tried: %s)", strings.Join(tried, ", "))
}

// trustedOwner refuses a socket at path that belongs to neither root nor uid; a path with nothing
// there passes (the connection then fails as it would).
func trustedOwner(path string, uid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil
	}
	if st.Uid != 0 && int(st.Uid) != uid {
		return fmt.Errorf("refusing %s: it belongs to uid %d, neither root nor you (uid %d)", path, st.Uid, uid)
	}
	return nil
}

// do sends one request on the socket connect found and returns the status and body; err is a
// client error of one line (exit 1), or a usage error.
func (x *ctl) do(method, path string, body []byte) (int, []byte, error) {
	ctx := context.Background()
	if err := x.connect(ctx); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return 0, nil, err
		}
		return 0, nil, failed("%v", err)
	}
	status, resp, err := x.client.Do(ctx, method, path, body)
	if err != nil {
		return 0, nil, failed("%v", err)
	}
	return status, resp, nil
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
	status, resp, err := x.do(method, path, body)
	if err != nil {
		return nil, err
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
	// A HEALTH column only when some process has a health check, NEXT (the next run) when some
	// is scheduled, STATUS (sd_notify's STATUS=) when some process sent one.
	withHealth := slices.ContainsFunc(procs, func(p core.Process) bool { return p.Health != "" })
	withNext := slices.ContainsFunc(procs, func(p core.Process) bool { return p.Schedule != "" })
	withStatus := slices.ContainsFunc(procs, func(p core.Process) bool { return p.StatusText != "" })
	head := "NAME\tPID\tSTATE\tUPTIME\tRESTARTS\tCPU\tRSS"
	if withHealth {
		head += "\tHEALTH"
	}
	if withNext {
		head += "\tNEXT"
	}
	if withStatus {
		head += "\tSTATUS"
	}
	fmt.Fprintln(tw, head)
	now := time.Now()
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
		if withHealth {
			line += "\t" + healthCell(p)
		}
		if withNext {
			line += "\t" + nextRunCell(p, now)
		}
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

// healthCell is a process's HEALTH in gaffer status: healthy, unknown, unhealthy with the
// consecutive failures ("unhealthy (3)"), or "-" without a health check.
func healthCell(p core.Process) string {
	switch {
	case p.Health == "":
		return "-"
	case p.Health == core.HealthUnhealthy && p.HealthFailures > 0:
		return fmt.Sprintf("%s (%d)", p.Health, p.HealthFailures)
	}
	return p.Health
}

// nextRunCell is a scheduled process's NEXT in gaffer status: "in 4m10s", "now", or "-" when it
// is not scheduled or will not run again.
func nextRunCell(p core.Process, now time.Time) string {
	if p.Schedule == "" || p.NextRun == nil {
		return "-"
	}
	d := p.NextRun.Sub(now).Round(time.Second)
	if d <= 0 {
		return "now"
	}
	return "in " + d.String()
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
	if err := x.connect(context.Background()); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return failed("%v", err)
	}
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
	path := "/v1/shutdown"
	if x.c.Bool("no-drain") {
		path += "?drain=0"
	}
	_, err := x.request("POST", path, nil, nil)
	return err
}

// healthTimeout is gaffer health's default --timeout.
const healthTimeout = 10 * time.Second

// health is what Docker's HEALTHCHECK and Kubernetes' exec probes run: exit 0 healthy, 1
// unhealthy, 2 when it cannot tell (a usage error, no gaffer to ask, an error answer), and always
// exactly one line on stdout saying why (with --json: the report), nothing on stderr.
func (x *ctl) health() error {
	say := func(code int, format string, args ...any) error {
		fmt.Fprintf(x.out, format+"\n", args...)
		if code == 0 {
			return nil
		}
		return exitCode{code: code}
	}
	level := x.c.String("level")
	if level != core.LevelAlive && level != core.LevelReady {
		return say(2, "error: --level %q: want %s or %s", level, core.LevelAlive, core.LevelReady)
	}
	names := x.c.Args().Slice()
	if slices.Contains(names, "") {
		return say(2, "error: an empty process name")
	}
	timeout := x.c.Duration("timeout")
	if timeout <= 0 {
		return say(2, "error: --timeout %v: want a positive duration", timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := x.connect(ctx); err != nil {
		return say(2, "error: %v", err)
	}
	q := url.Values{"level": {level}}
	if len(names) > 0 {
		q["name"] = names
	}
	status, body, err := x.client.Do(ctx, "GET", "/v1/health?"+q.Encode(), nil)
	if err != nil {
		return say(2, "error: %v", err)
	}
	if status != 200 && status != 503 {
		return say(2, "error: %s", apiError(status, body))
	}
	var r core.HealthReport
	if err := json.Unmarshal(body, &r); err != nil {
		return say(2, "error: bad answer from gaffer at %s: %v", x.client.Path, err)
	}
	code := 0
	if status != 200 {
		code = 1
	}
	if x.json {
		return say(code, "%s", bytes.TrimRight(body, "\n"))
	}
	if code == 0 {
		return say(0, "healthy (%s)", healthScope(level, names, r.Checked))
	}
	return say(1, "unhealthy (%s): %s", level, healthReasons(r))
}

// healthScope says what a health answer covered: "ready: 3 processes", "alive: web, db".
func healthScope(level string, names []string, checked int) string {
	switch {
	case len(names) > 0:
		return level + ": " + strings.Join(names, ", ")
	case checked == 1:
		return level + ": 1 process"
	case checked > 1:
		return fmt.Sprintf("%s: %d processes", level, checked)
	}
	return level
}

// healthReasons is why a report is not OK, in one line: "web unhealthy: connection refused;
// draining".
func healthReasons(r core.HealthReport) string {
	var parts []string
	for _, f := range r.Failing {
		reason := oneLine(f.Reason)
		if f.Name != "" {
			reason = f.Name + " " + reason
		}
		parts = append(parts, reason)
	}
	for _, s := range []struct {
		on   bool
		what string
	}{{r.Draining, "draining"}, {r.Stopping, "stopping"}} {
		if s.on && !slices.Contains(parts, s.what) {
			parts = append(parts, s.what)
		}
	}
	if len(parts) == 0 {
		return "not ok"
	}
	return strings.Join(parts, "; ")
}

// oneLine folds a text onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// reload asks gaffer to read its configuration again: the plan one line per process, what needs
// a new gaffer, then "applied" or "dry run: nothing changed"; a configuration with errors is each
// error on stderr and exit 2.
func (x *ctl) reload() error {
	if _, err := x.args(0, 0); err != nil {
		return err
	}
	path := "/v1/reload"
	if x.c.Bool("dry-run") {
		path += "?dry_run=1"
	}
	status, body, err := x.do("POST", path, nil)
	if err != nil {
		return err
	}
	if status != 200 && status != 422 {
		return failed("%s", apiError(status, body))
	}
	var r core.ReloadResult
	if err := json.Unmarshal(body, &r); err != nil {
		return failed("bad answer from gaffer at %s: %v", x.client.Path, err)
	}
	if x.json {
		x.printJSON(body)
	} else if len(r.Errors) == 0 {
		fmt.Fprint(x.out, reloadText(r))
	}
	if len(r.Errors) > 0 {
		for _, e := range r.Errors {
			fmt.Fprintln(x.c.App.ErrWriter, e)
		}
		return exitCode{code: 2, err: fmt.Errorf("reload: the configuration has %s, nothing changed", plural(len(r.Errors), "error"))}
	}
	return nil
}

// reloadText is the plan of a reload as gaffer reload prints it.
func reloadText(r core.ReloadResult) string {
	var b strings.Builder
	for _, st := range r.Plan {
		b.WriteString(st.Name + ": " + st.Action)
		if st.Why != "" {
			b.WriteString(" (" + st.Why + ")")
		}
		b.WriteByte('\n')
	}
	if len(r.NeedsRestart) > 0 {
		b.WriteString("needs restart: " + strings.Join(r.NeedsRestart, ", ") + " (changes only when gaffer starts again)\n")
	}
	switch {
	case r.DryRun:
		b.WriteString("dry run: nothing changed\n")
	case r.Applied:
		b.WriteString("applied\n")
	default:
		b.WriteString("not applied\n")
	}
	return b.String()
}

// plural is "1 error", "3 errors".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
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
