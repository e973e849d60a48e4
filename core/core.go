// Package core is what gaffer's supervisor reports and offers to a front end, and the kinds of
// errors its operations return. It imports nothing of gaffer's: package pid1 implements Backend,
// package api serves one over HTTP, and neither imports the other (the supervisor does not know
// HTTP exists).
package core

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Kinds of errors a Backend returns, wrapped with the details: test them with errors.Is. The API
// maps them to HTTP status codes.
var (
	ErrNotFound    = errors.New("not found")     // no such process, stream or label (404)
	ErrConflict    = errors.New("conflict")      // already in that state, or not supported here (409)
	ErrBadRequest  = errors.New("bad request")   // the request itself is wrong (400)
	ErrUnavailable = errors.New("shutting down") // gaffer is stopping (409 as well)
)

// Info describes gaffer itself (GET /v1/info).
type Info struct {
	Version       string         `json:"version"`
	Pid           int            `json:"pid"`
	Mode          string         `json:"mode"` // "run" (gaffer -- CMD) or "up"
	StartedAt     time.Time      `json:"started_at"`
	UptimeS       float64        `json:"uptime_s"`
	Socket        string         `json:"socket"`
	ZombiesReaped uint64         `json:"zombies_reaped"` // orphans reaped that no one had started
	Reaped        uint64         `json:"reaped"`         // every child reaped
	Processes     map[string]int `json:"processes"`      // count per state, and "total"
	Goroutines    int            `json:"goroutines"`     // of gaffer, filled by the server
	OpenFDs       int            `json:"open_fds"`       // gaffer's open file descriptors, filled by the server
	// OutputDroppedBytes counts relayed output and event bytes that could not be written, because
	// gaffer's stdout or stderr was blocked (at exit) or closed.
	OutputDroppedBytes int64 `json:"output_dropped_bytes"`
	// NotifyIgnored counts sd_notify messages ignored: from outside every process's tree, from a
	// process without ready = "notify" or a watchdog, over the size limit, or a refused MAINPID.
	NotifyIgnored uint64 `json:"notify_ignored"`
	// Draining is true from a stop request until the drain (settings.drain) is over: readiness
	// fails at once while the processes keep running.
	Draining bool `json:"draining"`
}

// Process is one supervised process, as GET /v1/processes lists it.
type Process struct {
	Name       string    `json:"name"`  // "web", or "web.2" for instances
	Group      string    `json:"group"` // the configured name: "web"
	Instance   int       `json:"instance"`
	Pid        int       `json:"pid"`   // 0 when not running
	State      string    `json:"state"` // pending starting running ready stopping exited backoff fatal
	Restarts   int       `json:"restarts"`
	ExitCode   *int      `json:"exit_code"`   // the last exit, nil before the first
	ExitSignal string    `json:"exit_signal"` // "TERM" when the last exit was a death by signal, else ""
	StartedAt  time.Time `json:"started_at"`
	UptimeS    float64   `json:"uptime_s"` // 0 when not running
	Ready      bool      `json:"ready"`    // counts for /healthz
	Oneshot    bool      `json:"oneshot"`
	Streams    []string  `json:"streams"` // labels that /logs serves: "out", "err" (or their redirect_output labels) and custom streams
	// StatusText is the last STATUS= the process sent over sd_notify in this run ("" for none).
	StatusText string `json:"status_text"`

	// ExitReason says how the last run ended: ExitReasonExit, ExitReasonSignal, or ExitReasonOOM
	// (SIGKILL by the kernel's OOM killer); "" before the first exit.
	ExitReason string `json:"exit_reason"`
	// OOMKills counts the OOM kills gaffer saw in the process's tree: of the process itself, or
	// of a process it forked.
	OOMKills int `json:"oom_kills"`

	// Liveness (health = "..."): Health is HealthHealthy, HealthUnhealthy or HealthUnknown (no
	// result yet in this run), "" for a process without a health check. HealthFailures counts the
	// consecutive failed checks, HealthError is the last failure's reason, HealthChecksFailed
	// every failed check since gaffer started.
	Health             string `json:"health,omitempty"`
	HealthFailures     int    `json:"health_failures,omitempty"`
	HealthError        string `json:"health_error,omitempty"`
	HealthChecksFailed uint64 `json:"health_checks_failed,omitempty"`

	// Scheduled oneshots (schedule = "..."): the next time it runs, nil when it will not.
	Schedule string     `json:"schedule,omitempty"`
	NextRun  *time.Time `json:"next_run,omitempty"`
}

// Values of Process.Health.
const (
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

// Levels of a health question (GET /v1/health?level=, gaffer health --level).
const (
	// LevelAlive: gaffer answers and none of the processes asked about is fatal, given up or
	// unhealthy.
	LevelAlive = "alive"
	// LevelReady: alive, and every one of them is ready (or running, without a readiness
	// probe) and not unhealthy, and gaffer is neither draining nor stopping.
	LevelReady = "ready"
)

// HealthReport answers a health question.
type HealthReport struct {
	OK       bool            `json:"ok"`
	Level    string          `json:"level"`
	Draining bool            `json:"draining"`
	Stopping bool            `json:"stopping"`
	Failing  []HealthFailure `json:"failing"` // empty when OK
	// Checked is how many processes (instances) the answer looked at.
	Checked int `json:"checked"`
}

// HealthFailure is one reason a HealthReport is not OK: a process ("" for gaffer itself) and why.
type HealthFailure struct {
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

// ReloadStep is what a reload does (or would do) to one process.
type ReloadStep struct {
	Name   string `json:"name"`
	Action string `json:"action"` // add, remove, restart, scale, update, keep
	Why    string `json:"why,omitempty"`
}

// ReloadResult is the answer of a reload: its plan, and whether it was applied. Errors (each
// FILE:LINE: message) mean the new configuration was refused and nothing changed.
type ReloadResult struct {
	Applied      bool         `json:"applied"`
	DryRun       bool         `json:"dry_run"`
	Plan         []ReloadStep `json:"plan"`
	Errors       []string     `json:"errors,omitempty"`
	NeedsRestart []string     `json:"needs_restart,omitempty"` // settings that change only with a new gaffer
}

// Values of Process.ExitReason.
const (
	ExitReasonExit   = "exit"   // it exited by itself (or could not start)
	ExitReasonSignal = "signal" // a signal ended it
	ExitReasonOOM    = "oom"    // the OOM killer ended it
)

// LogLine is one line of a process's output, kept in a ring buffer per process.
type LogLine struct {
	Time   time.Time `json:"time"`
	Name   string    `json:"name"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
	// Dropped is the number of lines a follower lost (it fell behind) just before this one; the
	// server sends it as {"dropped": N} before the line.
	Dropped int `json:"-"`
}

// Event is one thing that happened in gaffer (GET /v1/events): spawn, ready, exit, restart,
// gave-up, reap, stop, shutdown.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Name   string    `json:"name,omitempty"`
	Pid    int       `json:"pid,omitempty"`
	Code   *int      `json:"code,omitempty"`
	Detail string    `json:"detail,omitempty"`
	// Dropped is the number of events a follower lost just before this one, as in LogLine.
	Dropped int `json:"-"`
}

// Backend is what a front end asks of gaffer's loop, in both modes (gaffer up and gaffer --).
// What only one mode can do is a capability of its own (Starter, Scaler, InputWriter, LogReader),
// found with a type assertion. Every method is safe to call from any goroutine: the
// implementation hands the work to the loop that owns the processes and waits for its answer.
type Backend interface {
	Info() Info
	Processes() []Process
	// Process returns one process (by instance name, or by group name when it has one instance)
	// and its configuration as ProcessConfig.to_dict.
	Process(name string) (Process, map[string]any, error)
	// Pids lists the pid of every running process by name, for stats.
	Pids() map[string]int
	// Signal sends sig to the process, or to its process group.
	Signal(name string, sig syscall.Signal, group bool) error
	// Stop stops a process (all instances of a group name). With wait it returns once it is
	// stopped; ctx bounds the wait.
	Stop(ctx context.Context, name string, wait bool) error
	// Events sends gaffer's events from now on until ctx ends (closed then). A follower that
	// falls behind loses events rather than hold up the loop: at most StreamBytes are queued for
	// it, counted against StreamBudgetFrom(ctx), and the next event it gets carries the number
	// lost in Dropped.
	Events(ctx context.Context) <-chan Event
	// Shutdown starts the same ordered shutdown as SIGTERM: after the drain (settings.drain,
	// --drain) when drain is true, at once otherwise.
	Shutdown(drain bool)
	// Health answers at level (LevelAlive or LevelReady) for the processes named (group or
	// instance names), or for every supervised process when names is empty. ErrNotFound for an
	// unknown name, ErrBadRequest for an unknown level.
	Health(level string, names []string) (HealthReport, error)
}

// Starter is a Backend that can start processes.
type Starter interface {
	// Start and Restart act on a process (all instances of a group name). With wait they return
	// once it is started (ready); ctx bounds the wait.
	Start(ctx context.Context, name string, wait bool) error
	Restart(ctx context.Context, name string, wait bool) error
}

// Reloader is a Backend that can read its configuration again and apply the difference.
type Reloader interface {
	// Reload reads the configuration's sources again; unless dryRun, it applies the difference.
	// A configuration with errors changes nothing: the result lists them (error nil).
	Reload(ctx context.Context, dryRun bool) (ReloadResult, error)
}

// Scaler is a Backend that can change the number of instances of a process.
type Scaler interface {
	// Scale sets numprocesses of a group.
	Scale(ctx context.Context, name string, n int) error
}

// InputWriter is a Backend that holds its processes' input pipes.
type InputWriter interface {
	// WriteStdin writes data to the process's stdin pipe (redirect_input) in one piece: writers
	// never interleave within one call. ErrConflict when it has no stdin pipe.
	WriteStdin(name string, data []byte) error
	// WriteStream writes data to a custom stream of the process.
	WriteStream(name, label string, data []byte) error
}

// LogReader is a Backend that keeps its processes' output.
type LogReader interface {
	// Logs returns up to tail recent lines of the process's stream ("" = every stream); with
	// follow, lines that come later are sent on the channel until ctx ends (closed then),
	// bounded as Backend.Events.
	Logs(ctx context.Context, name, stream string, tail int, follow bool) ([]LogLine, <-chan LogLine, error)
}
