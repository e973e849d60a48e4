package pid1

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"gaffer/api"

	"golang.org/x/sys/unix"
)

// runAPI is the API's view of `gaffer -- CMD`: the single child is the process "main". Its output
// and stdin are gaffer's own (nothing is captured on that path), so logs, stdin and streams are
// not available, and it cannot be started, restarted or scaled: its end is gaffer's end.
type runAPI struct {
	loopCalls
	l         *loop
	startedAt time.Time
	bus       eventBus
	pid       int
	argv      []string
}

const mainName = "main"

var errRunMode = fmt.Errorf("not available in gaffer -- mode (use gaffer up): %w", api.ErrConflict)

func (a *runAPI) view() api.Process {
	p := api.Process{Name: mainName, Group: mainName, Instance: 1, Pid: a.pid, State: stateRunning.String(), StartedAt: a.startedAt, Ready: true, Streams: []string{}}
	_ = a.do(func() {
		if a.l.code >= 0 {
			code := a.l.code
			p.ExitCode, p.Pid, p.State, p.Ready = &code, 0, stateExited.String(), false
			p.ExitSignal = exitSignal(code)
		}
	})
	if p.Pid != 0 {
		p.UptimeS = time.Since(a.startedAt).Seconds()
	}
	return p
}

func (a *runAPI) check(name string) error {
	if name != mainName {
		return fmt.Errorf("no process %q (gaffer -- runs only %q): %w", name, mainName, api.ErrNotFound)
	}
	return nil
}

// Info implements api.Backend.
func (a *runAPI) Info() api.Info {
	info := api.Info{Pid: os.Getpid(), Mode: "run", StartedAt: a.startedAt, UptimeS: time.Since(a.startedAt).Seconds()}
	info.Reaped, info.ZombiesReaped = a.l.r.Counts()
	info.Processes = map[string]int{a.view().State: 1, "total": 1}
	return info
}

// Processes implements api.Backend.
func (a *runAPI) Processes() []api.Process { return []api.Process{a.view()} }

// Process implements api.Backend.
func (a *runAPI) Process(name string) (api.Process, map[string]any, error) {
	if err := a.check(name); err != nil {
		return api.Process{}, nil, err
	}
	cfg := map[string]any{"name": mainName, "cmd": a.argv}
	return a.view(), cfg, nil
}

// Pids implements api.Backend.
func (a *runAPI) Pids() map[string]int {
	if p := a.view(); p.Pid != 0 {
		return map[string]int{mainName: p.Pid}
	}
	return map[string]int{}
}

// Signal implements api.Backend.
func (a *runAPI) Signal(name string, sig syscall.Signal, group bool) error {
	if err := a.check(name); err != nil {
		return err
	}
	var err error
	if e := a.do(func() {
		if a.l.code >= 0 {
			err = fmt.Errorf("main has exited: %w", api.ErrConflict)
			return
		}
		target := a.pid
		if group {
			target = -target
		}
		err = killErr(unix.Kill(target, sig))
	}); e != nil {
		return e
	}
	return err
}

// Start implements api.Backend.
func (a *runAPI) Start(context.Context, string, bool) error { return errRunMode }

// Restart implements api.Backend.
func (a *runAPI) Restart(context.Context, string, bool) error { return errRunMode }

// Scale implements api.Backend.
func (a *runAPI) Scale(context.Context, string, int) error { return errRunMode }

// WriteStdin implements api.Backend.
func (a *runAPI) WriteStdin(string, []byte) error { return errRunMode }

// WriteStream implements api.Backend.
func (a *runAPI) WriteStream(string, string, []byte) error { return errRunMode }

// Logs implements api.Backend.
func (a *runAPI) Logs(context.Context, string, string, int, bool) ([]api.LogLine, <-chan api.LogLine, error) {
	return nil, nil, errRunMode
}

// Stop implements api.Backend: main stops as it would on SIGTERM to gaffer, which then exits.
func (a *runAPI) Stop(ctx context.Context, name string, wait bool) error {
	if err := a.check(name); err != nil {
		return err
	}
	a.Shutdown()
	if !wait {
		return nil
	}
	select {
	case <-a.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Events implements api.Backend.
func (a *runAPI) Events(ctx context.Context) <-chan api.Event { return a.bus.subscribe(ctx) }

// Shutdown implements api.Backend: the same as SIGTERM to gaffer.
func (a *runAPI) Shutdown() {
	_ = a.do(func() { a.l.onSignal(unix.SIGTERM) })
}

// Health implements api.Backend.
func (a *runAPI) Health() (bool, []string) {
	if p := a.view(); p.State != stateRunning.String() {
		return false, []string{"main is " + p.State}
	}
	return true, nil
}
