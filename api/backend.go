// Package api serves gaffer's control and stats API over a Unix socket: HTTP/1.1 with JSON, spoken
// directly on net (net/http would add its start-up cost to every gaffer, also `gaffer --`), so that
// curl --unix-socket works as well as gaffer's own client.
package api

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Errors a Backend returns; the server maps them to HTTP status codes.
var (
	ErrNotFound    = errors.New("not found")     // 404: no such process, stream or label
	ErrConflict    = errors.New("conflict")      // 409: already in that state, or not supported here
	ErrBadRequest  = errors.New("bad request")   // 400
	ErrUnavailable = errors.New("shutting down") // 409 as well: gaffer is stopping
)

// Info is GET /v1/info.
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
}

// Process is one entry of GET /v1/processes.
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
}

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

// Event is one line of GET /v1/events: spawn, ready, exit, restart, gave-up, reap, stop, shutdown.
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

// Backend is what the API asks of gaffer's loop. Every method is safe to call from any goroutine:
// the implementation hands the work to the loop that owns the processes and waits for its answer.
type Backend interface {
	Info() Info
	Processes() []Process
	// Process returns one process (by instance name, or by group name when it has one instance)
	// and its configuration as ProcessConfig.to_dict.
	Process(name string) (Process, map[string]any, error)
	// Signal sends sig to the process, or to its process group.
	Signal(name string, sig syscall.Signal, group bool) error
	// Start, Stop and Restart act on a process (all instances of a group name). With wait they
	// return once it is started (ready) or stopped; ctx bounds the wait.
	Start(ctx context.Context, name string, wait bool) error
	Stop(ctx context.Context, name string, wait bool) error
	Restart(ctx context.Context, name string, wait bool) error
	// WriteStdin writes data to the process's stdin pipe (redirect_input) in one piece: writers
	// never interleave within one call. ErrConflict when it has no stdin pipe.
	WriteStdin(name string, data []byte) error
	// WriteStream writes data to a custom stream of the process.
	WriteStream(name, label string, data []byte) error
	// Scale sets numprocesses of a group.
	Scale(ctx context.Context, name string, n int) error
	// Logs returns up to tail recent lines of the process's stream ("" = every stream); with
	// follow, lines that come later are sent on the channel until ctx ends (closed then). A
	// follower that falls behind loses lines rather than hold up the process: at most StreamBytes
	// are queued for it, counted against StreamBudgetFrom(ctx), and the next line it gets carries
	// the number lost in Dropped.
	Logs(ctx context.Context, name, stream string, tail int, follow bool) ([]LogLine, <-chan LogLine, error)
	// Events sends gaffer's events from now on until ctx ends (closed then), bounded as Logs.
	Events(ctx context.Context) <-chan Event
	// Shutdown starts the same ordered shutdown as SIGTERM.
	Shutdown()
	// Health reports whether every non-oneshot process that should run is running and ready,
	// and why not.
	Health() (ok bool, reasons []string)
	// Pids lists the pid of every running process by name, for stats.
	Pids() map[string]int
}
