// Package config reads gaffer's multi-process configuration: gaffer.toml, or a Procfile with its
// .env. It validates everything before anything starts, reporting every error as FILE:LINE: message,
// and turns each process back into the plain dict of the Python gaffer's ProcessConfig.to_dict.
package config

import (
	"os"
	"regexp"
	"syscall"
	"time"

	"gaffer/cgroup"
	"gaffer/listen"
)

// Config is a whole validated configuration.
type Config struct {
	File      string   // the (first) file it was read from
	Sources   []string // every file read, in order: a reload reads them again
	Settings  Settings
	Processes []Process // in file order (of the first layer that names each); disabled ones left out
	Disabled  []string  // the processes a layer disabled, in file order

	src *source // where each value was set (Origin, Explain); nil when not loaded from files
}

// Settings are the [settings] table.
type Settings struct {
	Grace      time.Duration // default stop_timeout of every process (default 10s)
	Output     string        // prefix | json | raw (default prefix)
	Timestamps bool
	Color      string // auto | always | never (default auto)

	// Socket is the API socket's path; SocketSet tells an explicit "" (no socket) from no key.
	Socket          string
	SocketSet       bool
	SocketMode      os.FileMode // default 0600
	SocketGroup     string      // group name or gid given; "" keeps gaffer's
	SocketGID       int         // SocketGroup resolved, -1 when not given
	SocketAllowUIDs []int       // peers allowed besides root and gaffer's own uid
	LogBytes        int         // recent output kept per process for the API (default 256 KiB)

	// Drain is how long gaffer reports itself not ready before it stops anything, on SIGTERM,
	// SIGINT or gaffer shutdown (default 0).
	Drain time.Duration
	// ReloadSignal, when not 0, makes gaffer reload its configuration instead of forwarding it.
	ReloadSignal syscall.Signal
}

// Probe is how readiness or health is checked: Kind is tcp, http, https, file, exec, log,
// notify or none.
type Probe struct {
	Kind   string
	Target string         // host:port, URL, path, shell command, or regular expression
	Regexp *regexp.Regexp // Target compiled, for log
}

// Process is one [process.NAME] table (or Procfile line), with defaults filled in.
type Process struct {
	Name           string
	Line           int      // line of its table header (or Procfile line), for messages
	Cmd            []string // argv: a string cmd is shlex-split; with Shell, ["/bin/sh", "-c", cmd]
	Args           []string // appended to Cmd; $VAR and ${VAR} are expanded from the process env at start
	Shell          bool
	Cwd            string
	User           string            // SPEC as for gaffer exec --user; "" keeps gaffer's
	Env            map[string]string // added to gaffer's environment (or to nothing with ClearEnv)
	ClearEnv       bool
	NumProcesses   int    // default 1; instances are NAME.1, NAME.2 ... when > 1
	Restart        string // always | on-failure | never (default never)
	SuccessCodes   []int  // default [0]
	Backoff        time.Duration
	BackoffMax     time.Duration
	MaxRestarts    int           // 0 = unlimited
	RestartWindow  time.Duration // with MaxRestarts: give up after that many restarts within it
	OnEnd          string        // shutdown | ignore (default shutdown; oneshots: shutdown on failure only)
	Oneshot        bool
	After          []string
	Ready          Probe
	ReadyTimeout   time.Duration
	StopSignal     syscall.Signal
	StopTimeout    time.Duration // default Settings.Grace
	RedirectOutput []string      // labels of stdout and stderr; default ["out", "err"]; empty: inherit gaffer's fds
	RedirectInput  bool
	CustomStreams  []string
	TTY            bool
	Detach         bool

	// The systemd protocols (sd_notify, socket activation).
	Watchdog    time.Duration // 0: none; else WATCHDOG=1 must come at least this often
	Listen      []listen.Addr // sockets opened before the process starts, passed as fd 3, 4 ...
	ListenNames []string      // their names in LISTEN_FDNAMES; nil: the process's name for each
	ListenMode  os.FileMode   // mode of its Unix socket files; 0: 0777 less gaffer's umask

	// Limits (memory_max, memory_high, cpu_max, pids_max), when any is set, give the process a
	// cgroup of its own (see limits.go).
	Limits cgroup.Limits

	// Liveness: once ready (or running without a readiness probe), Health is checked every
	// HealthInterval (from the end of one check to the start of the next), each bounded by
	// HealthTimeout; HealthRetries consecutive failures make the process unhealthy, and then
	// OnUnhealthy says what happens. Failures in the first HealthStart after ready do not count.
	Health         Probe // Kind none: no check (log and notify are refused)
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	HealthRetries  int
	HealthStart    time.Duration
	OnUnhealthy    string // restart | shutdown | ignore (default restart)

	// A oneshot with a Schedule runs at those times; at start only with RunAtStart.
	Schedule   Schedule
	RunAtStart bool

	// Disabled (a layer's disabled = true) keeps the process out: not started, stopped by a reload.
	// Load leaves disabled processes out of Config.Processes (see Config.Disabled), so it is
	// false in every Process it returns.
	Disabled bool
}

// Defaults filled in by Load for what a file leaves out.
const (
	DefaultGrace         = 10 * time.Second // settings.grace, and so every stop_timeout
	DefaultBackoff       = time.Second
	DefaultBackoffMax    = 30 * time.Second
	DefaultRestartWindow = 60 * time.Second
	DefaultReadyTimeout  = 60 * time.Second

	// MinBackoff is the shortest backoff a file may ask for: with restart = "always", "0s" made a
	// process that exits at once into a fork loop (800 restarts in 3 s).
	MinBackoff = 10 * time.Millisecond

	DefaultHealthInterval = 10 * time.Second
	DefaultHealthTimeout  = 3 * time.Second
	DefaultHealthRetries  = 3
)

// Values of Process.OnUnhealthy.
const (
	OnUnhealthyRestart  = "restart"
	OnUnhealthyShutdown = "shutdown"
	OnUnhealthyIgnore   = "ignore"
)

// Ceilings on instances, refused by Load (so by gaffer check and gaffer up) with FILE:LINE, and by
// the API's scale route: a typo such as numprocesses = 1000000 must not fork a million children.
// A Procfile's processes count one instance each.
const (
	MaxInstances      = 1024 // numprocesses of one process
	MaxTotalInstances = 4096 // the sum of numprocesses over the whole file
)

// Values of Process.Restart.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// Values of Process.OnEnd.
const (
	OnEndShutdown = "shutdown"
	OnEndIgnore   = "ignore"
)

// Values of Settings.Output.
const (
	OutputPrefix = "prefix"
	OutputJSON   = "json"
	OutputRaw    = "raw"
)

// Values of Settings.Color.
const (
	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// Values of Probe.Kind.
const (
	ProbeNone   = "none"
	ProbeTCP    = "tcp"
	ProbeHTTP   = "http"
	ProbeHTTPS  = "https"
	ProbeFile   = "file"
	ProbeExec   = "exec"
	ProbeNotify = "notify" // READY=1 on the notify socket (sd_notify)
	ProbeLog    = "log"    // a line of its stdout or stderr matches Regexp
)

// DefaultSettings are the settings of a file without a [settings] table.
func DefaultSettings() Settings {
	return Settings{Grace: DefaultGrace, Output: OutputPrefix, Color: ColorAuto, SocketMode: 0o600, SocketGID: -1, LogBytes: 256 << 10}
}

// NewProcess is a process named name running argv, with every default filled in as Load does
// (stop_timeout is DefaultGrace).
func NewProcess(name string, argv ...string) Process {
	p := defaultProcess(name, DefaultGrace)
	if len(argv) > 0 {
		p.Cmd = argv
	}
	return p
}

func defaultProcess(name string, grace time.Duration) Process {
	return Process{
		Name:           name,
		Env:            map[string]string{},
		NumProcesses:   1,
		Restart:        RestartNever,
		SuccessCodes:   []int{0},
		Backoff:        DefaultBackoff,
		BackoffMax:     DefaultBackoffMax,
		RestartWindow:  DefaultRestartWindow,
		OnEnd:          OnEndShutdown,
		Ready:          Probe{Kind: ProbeNone},
		ReadyTimeout:   DefaultReadyTimeout,
		StopSignal:     syscall.SIGTERM,
		StopTimeout:    grace,
		RedirectOutput: []string{"out", "err"},
		Health:         Probe{Kind: ProbeNone},
		HealthInterval: DefaultHealthInterval,
		HealthTimeout:  DefaultHealthTimeout,
		HealthRetries:  DefaultHealthRetries,
		OnUnhealthy:    OnUnhealthyRestart,
	}
}
