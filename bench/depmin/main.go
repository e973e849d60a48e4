// Command depmin is a reference for the benchmarks, not a product: the smallest Go program that
// links what gaffer must link, each library used the way gaffer uses it and nothing more. Its size
// is the floor for gaffer's: Go plus gaffer's required dependencies, without gaffer's own code.
// bench/size.sh builds it like the release (-tags urfave_cli_no_docs, stripped, static) and with
// -tags gaffer_notls, beside gaffer and gaffer-notls.
//
// What it links, as gaffer does:
//
//   - github.com/urfave/cli/v2: an App with commands and flags, help included (its help printer
//     is text/template, which puts the linker in the mode that keeps every exported method);
//
//   - github.com/pelletier/go-toml/v2: Unmarshal into a struct (gaffer.toml);
//
//   - encoding/json: Marshal and Unmarshal (the API);
//
//   - net: a listening Unix socket answering a minimal HTTP/1 response (the API), a dial (probes);
//
//   - crypto/tls: a client handshake (https probes), left out by -tags gaffer_notls as gaffer does;
//
//   - regexp (log readiness), github.com/robfig/cron/v3 (schedules), github.com/google/shlex
//     (command strings), github.com/creack/pty Open (tty processes), gopsutil/v3/mem (the
//     machine's memory), golang.org/x/sys/unix (prctl), os/signal (an init's signals).
//
//     depmin --help
//     depmin check [--config FILE]   decode a config, print it as JSON
//     depmin serve --socket PATH     answer one HTTP/1 request on a Unix socket
//     depmin probe [--tls] [--timeout D] ADDR   dial ADDR (TCP, or TLS)
//     depmin sys                     subreaper, a pty, the machine's memory
//     depmin run -- CMD [ARG...]     an init, as go-min -- CMD is
//     depmin exec [--user SPEC] -- CMD   switch user and exec, as go-min exec does
//
// run and exec are the floors of gaffer --'s and gaffer exec's start-up (bench/startup.sh) and of
// gaffer --'s memory (bench/rss.sh) with these dependencies: go-min's paths, the command line
// parsed by urfave/cli.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"gaffer/bench/internal/mini"
	"gaffer/signals"

	"github.com/creack/pty"
	"github.com/google/shlex"
	"github.com/pelletier/go-toml/v2"
	"github.com/robfig/cron/v3"
	"github.com/shirou/gopsutil/v3/mem"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// sample is the config check decodes without --config.
const sample = `
[process.web]
cmd = "nginx -g 'daemon off;'"
ready = "listening on .*"
schedule = "0 3 * * 0"
`

type process struct {
	Cmd      string    `toml:"cmd" json:"cmd"`
	Ready    string    `toml:"ready" json:"ready,omitempty"`
	Schedule string    `toml:"schedule" json:"schedule,omitempty"`
	Argv     []string  `toml:"-" json:"argv"`
	Next     time.Time `toml:"-" json:"next,omitzero"`
}

type config struct {
	Process map[string]*process `toml:"process" json:"process"`
}

func main() {
	// As gaffer's main does: an init asks for the signals that would kill it before anything else.
	var sigs chan os.Signal
	if len(os.Args) > 1 && os.Args[1] == "run" {
		sigs = make(chan os.Signal, 1024)
		signal.Notify(sigs, signals.Early()...)
	}
	app := &cli.App{
		Name:            "depmin",
		Usage:           "Go plus gaffer's required dependencies: a size reference for the benchmarks",
		HideHelpCommand: true,
		Commands: []*cli.Command{
			{Name: "check", Usage: "decode a config, print it as JSON", Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML `FILE`"},
			}, Action: check},
			{Name: "serve", Usage: "answer one HTTP/1 request on a Unix socket", Flags: []cli.Flag{
				&cli.StringFlag{Name: "socket", Required: true, Usage: "socket `PATH`"},
			}, Action: serve},
			{Name: "probe", Usage: "dial ADDR", ArgsUsage: "ADDR", Flags: []cli.Flag{
				&cli.BoolFlag{Name: "tls", Usage: "speak TLS"},
				&cli.DurationFlag{Name: "timeout", Value: time.Second},
			}, Action: probe},
			{Name: "sys", Usage: "subreaper, a pty, the machine's memory", Action: sys},
			{Name: "run", Usage: "be the init of CMD, as go-min -- CMD is", ArgsUsage: "-- CMD [ARG...]",
				Action: func(c *cli.Context) error {
					os.Exit(mini.Init("depmin", sigs, c.Args().Slice()))
					return nil
				}},
			{Name: "exec", Usage: "switch user and exec CMD, as go-min exec does", ArgsUsage: "-- CMD [ARG...]",
				Flags: []cli.Flag{&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "run as `SPEC`"}},
				Action: func(c *cli.Context) error {
					os.Exit(mini.Exec("depmin", c.String("user"), c.Args().Slice()))
					return nil
				}},
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "depmin: %v\n", err)
		os.Exit(1)
	}
}

func check(c *cli.Context) error {
	data := []byte(sample)
	if f := c.String("config"); f != "" {
		var err error
		if data, err = os.ReadFile(f); err != nil {
			return err
		}
	}
	var cfg config
	if err := toml.Unmarshal(data, &cfg); err != nil {
		return err
	}
	for _, p := range cfg.Process {
		var err error
		if p.Argv, err = shlex.Split(p.Cmd); err != nil {
			return err
		}
		if _, err := regexp.Compile(p.Ready); err != nil {
			return err
		}
		if p.Schedule != "" {
			s, err := cron.ParseStandard(p.Schedule)
			if err != nil {
				return err
			}
			p.Next = s.Next(time.Now())
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s\n", b)
	return err
}

func serve(c *cli.Context) error {
	ln, err := net.Listen("unix", c.String("socket"))
	if err != nil {
		return err
	}
	defer ln.Close()
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"request": line})
	_, err = fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return err
}

func probe(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Args().First())
	if err != nil {
		return err
	}
	if c.Bool("tls") {
		tc, err := dialTLS(ctx, conn)
		if err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	return conn.Close()
}

func sys(c *cli.Context) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return err
	}
	master, slave, err := pty.Open()
	if err != nil {
		return err
	}
	master.Close()
	slave.Close()
	vm, err := mem.VirtualMemoryWithContext(c.Context)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "memory: %d bytes\n", vm.Total)
	return err
}
