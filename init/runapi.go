package pid1

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"gaffer/core"

	"golang.org/x/sys/unix"
)

// runAPI is the API's view of `gaffer -- CMD`: the single child is the process "main". Its output
// and stdin are gaffer's own (nothing is captured on that path), so it keeps no logs and holds no
// stdin or streams, and it cannot be started, restarted or scaled: its end is gaffer's end. It is
// a core.Backend without the capabilities of those.
type runAPI struct {
	loopCalls
	l         *loop
	startedAt time.Time
	bus       eventBus
	pid       int
	argv      []string
}

const mainName = "main"

// runAPI has none of the capabilities (core.Starter, ...): the API answers 409 for them.
var _ core.Backend = (*runAPI)(nil)

func (a *runAPI) view() core.Process {
	p := core.Process{Name: mainName, Group: mainName, Instance: 1, Pid: a.pid, State: stateRunning.String(), StartedAt: a.startedAt, Ready: true, Streams: []string{}}
	_ = a.do(func() {
		if a.l.code >= 0 {
			code := a.l.code
			p.ExitCode, p.Pid, p.State, p.Ready = &code, 0, stateExited.String(), false
			p.ExitSignal = exitSignal(code)
		}
		p.ExitReason, p.OOMKills = a.l.oom.view(a.l.code)
	})
	if p.Pid != 0 {
		p.UptimeS = time.Since(a.startedAt).Seconds()
	}
	return p
}

func (a *runAPI) check(name string) error {
	if name != mainName {
		return fmt.Errorf("no process %q (gaffer -- runs only %q): %w", name, mainName, core.ErrNotFound)
	}
	return nil
}

// Info implements core.Backend.
func (a *runAPI) Info() core.Info {
	info := core.Info{Pid: os.Getpid(), Mode: "run", StartedAt: a.startedAt, UptimeS: time.Since(a.startedAt).Seconds()}
	info.Reaped, info.ZombiesReaped = a.l.r.Counts()
	info.Processes = map[string]int{a.view().State: 1, "total": 1}
	_ = a.do(func() { info.Draining = a.l.draining() })
	return info
}

// Processes implements core.Backend.
func (a *runAPI) Processes() []core.Process { return []core.Process{a.view()} }

// Process implements core.Backend.
func (a *runAPI) Process(name string) (core.Process, map[string]any, error) {
	if err := a.check(name); err != nil {
		return core.Process{}, nil, err
	}
	cfg := map[string]any{"name": mainName, "cmd": a.argv}
	return a.view(), cfg, nil
}

// Pids implements core.Backend.
func (a *runAPI) Pids() map[string]int {
	if p := a.view(); p.Pid != 0 {
		return map[string]int{mainName: p.Pid}
	}
	return map[string]int{}
}

// Signal implements core.Backend.
func (a *runAPI) Signal(name string, sig syscall.Signal, group bool) error {
	if err := a.check(name); err != nil {
		return err
	}
	var err error
	if e := a.do(func() {
		if a.l.code >= 0 {
			err = fmt.Errorf("main has exited: %w", core.ErrConflict)
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

// Stop implements core.Backend: main stops as it would on SIGTERM to gaffer, which then exits.
func (a *runAPI) Stop(ctx context.Context, name string, wait bool) error {
	if err := a.check(name); err != nil {
		return err
	}
	a.Shutdown(false)
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

// Events implements core.Backend.
func (a *runAPI) Events(ctx context.Context) <-chan core.Event { return a.bus.subscribe(ctx) }

// Shutdown implements core.Backend: the same as SIGTERM to gaffer, without its drain unless drain.
func (a *runAPI) Shutdown(drain bool) {
	_ = a.do(func() {
		if !drain {
			a.l.skipDrain()
		}
		a.l.onSignal(unix.SIGTERM)
	})
}

// Health implements core.Backend. The one process of gaffer -- is "main".
func (a *runAPI) Health(level string, names []string) (core.HealthReport, error) {
	if level != core.LevelAlive && level != core.LevelReady {
		return core.HealthReport{}, fmt.Errorf("level %q: want alive or ready: %w", level, core.ErrBadRequest)
	}
	for _, n := range names {
		if n != "main" {
			return core.HealthReport{}, fmt.Errorf("no process %q: %w", n, core.ErrNotFound)
		}
	}
	r := core.HealthReport{Level: level, Failing: []core.HealthFailure{}}
	var draining, stopping bool
	_ = a.do(func() { draining, stopping = a.l.draining(), a.l.stopping() })
	r.Draining, r.Stopping = draining, stopping
	if p := a.view(); p.State != stateRunning.String() {
		r.Failing = append(r.Failing, core.HealthFailure{Name: "main", Reason: "is " + p.State})
	}
	if level == core.LevelReady {
		if draining {
			r.Failing = append(r.Failing, core.HealthFailure{Reason: "draining"})
		} else if stopping {
			r.Failing = append(r.Failing, core.HealthFailure{Reason: "stopping"})
		}
	}
	r.OK, r.Checked = len(r.Failing) == 0, 1
	return r, nil
}
