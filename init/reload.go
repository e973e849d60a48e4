package pid1

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gaffer/config"
	"gaffer/core"
	"gaffer/relay"
)

// Actions of a reload's plan (core.ReloadStep.Action).
const (
	reloadAdd     = "add"     // newly configured: started when its dependencies are satisfied
	reloadRemove  = "remove"  // no longer configured (or disabled): stopped, dependents first, and removed
	reloadRestart = "restart" // a key that affects how it runs changed: restarted with the new one
	reloadScale   = "scale"   // numprocesses changed
	reloadUpdate  = "update"  // keys that do not affect the running process changed: applied in place
	reloadKeep    = "keep"    // unchanged: keeps its pid
)

// runKeys are the keys of a process whose change restarts it: they are how its process is made.
var runKeys = []string{
	"cmd", "args", "shell", "cwd", "user", "env", "clear_env", "redirect_output", "redirect_input",
	"custom_streams", "tty", "detach", "watchdog", "listen", "listen_names", "listen_mode",
	"memory_max", "memory_high", "cpu_max", "pids_max",
}

// liveSettings are the settings a reload applies to the running gaffer; a change of any other
// is reported as needing a restart of gaffer.
var liveSettings = []string{"grace", "drain", "reload_signal", "output", "timestamps", "color", "socket_mode", "socket_group", "socket_allow_uids"}

// processPlan is what a reload does to one configured process.
type processPlan struct {
	name    string
	action  string
	changed []string        // the keys that differ, for the reason
	next    *config.Process // the new configuration; nil for a removal
	scale   bool            // numprocesses changed as well
}

// why is the step's reason as events and the API say it.
func (p processPlan) why() string {
	switch p.action {
	case reloadRemove:
		if len(p.changed) > 0 {
			return p.changed[0]
		}
		return "no longer configured"
	case reloadRestart, reloadUpdate, reloadScale:
		return strings.Join(p.changed, ", ") + " changed"
	}
	return ""
}

// diffProcesses plans the change from the running configuration to next, in next's order, the
// removals last. It is pure: the loop carries the plan out.
func diffProcesses(old, next *config.Config) []processPlan {
	var plan []processPlan
	byName := map[string]*config.Process{}
	for i := range old.Processes {
		byName[old.Processes[i].Name] = &old.Processes[i]
	}
	seen := map[string]bool{}
	for i := range next.Processes {
		p := &next.Processes[i]
		seen[p.Name] = true
		o := byName[p.Name]
		if o == nil {
			plan = append(plan, processPlan{name: p.Name, action: reloadAdd, next: p})
			continue
		}
		changed := changedKeys(o.ToDict(), p.ToDict())
		step := processPlan{name: p.Name, action: reloadKeep, changed: changed, next: p}
		restart := false
		for _, k := range changed {
			switch {
			case slices.Contains(runKeys, k):
				restart = true
			case k == "ready" && (o.Ready.Kind == config.ProbeNotify) != (p.Ready.Kind == config.ProbeNotify):
				restart = true // NOTIFY_SOCKET is in its environment, or not
			case k == "numprocesses":
				step.scale = true
			}
		}
		switch {
		case restart:
			step.action = reloadRestart
		case step.scale && len(changed) == 1:
			step.action = reloadScale
		case len(changed) > 0:
			step.action = reloadUpdate
		}
		plan = append(plan, step)
	}
	var gone []string
	for _, p := range old.Processes {
		if !seen[p.Name] {
			gone = append(gone, p.Name)
		}
	}
	for _, name := range gone {
		step := processPlan{name: name, action: reloadRemove}
		if slices.Contains(next.Disabled, name) {
			step.changed = []string{"disabled"}
		}
		plan = append(plan, step)
	}
	return plan
}

// changedKeys lists, sorted, the keys whose values differ between two dicts of a process.
func changedKeys(a, b map[string]any) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// settingsNeedingRestart lists the settings that differ and cannot change while gaffer runs.
func settingsNeedingRestart(old, next config.Settings) []string {
	a, b := settingsDict(old), settingsDict(next)
	var out []string
	for _, k := range changedKeys(a, b) {
		if !slices.Contains(liveSettings, k) {
			out = append(out, k)
		}
	}
	return out
}

// restyle applies a change of output, timestamps or color to the lines of every process from
// their next read on, and to gaffer's events.
func (s *supervisor) restyle(old, next config.Settings) {
	if old.Output == next.Output && old.Timestamps == next.Timestamps && old.Color == next.Color {
		return
	}
	format, err := relay.ParseFormat(next.Output)
	if err != nil {
		s.warnf("reload: %v", err) // validated by config: not reached
		return
	}
	color := s.cfg.Color
	if s.cfg.ColorOn != nil {
		color = s.cfg.ColorOn(next.Color)
	}
	st := relay.Style{Format: format, Timestamps: next.Timestamps, Color: color}
	s.out.SetStyle(st)
	s.errOut.SetStyle(st)
}

// keepSettings keeps in next the running values of the settings that cannot change until gaffer
// starts again, so that the running configuration says what runs (and a later reload compares
// against that).
func keepSettings(next *config.Settings, running config.Settings, keys []string) {
	for _, k := range keys {
		switch k {
		case "socket":
			next.Socket, next.SocketSet = running.Socket, running.SocketSet
		case "output":
			next.Output = running.Output
		case "timestamps":
			next.Timestamps = running.Timestamps
		case "color":
			next.Color = running.Color
		case "log_bytes":
			next.LogBytes = running.LogBytes
		}
	}
}

// socketAccessChanged reports whether who may use the API socket changed.
func socketAccessChanged(a, b config.Settings) bool {
	return a.SocketMode != b.SocketMode || a.SocketGID != b.SocketGID || !slices.Equal(a.SocketAllowUIDs, b.SocketAllowUIDs)
}

// settingsDict is the settings by key, for comparing them.
func settingsDict(s config.Settings) map[string]any {
	return map[string]any{
		"grace": s.Grace, "output": s.Output, "timestamps": s.Timestamps, "color": s.Color,
		"socket": [2]any{s.Socket, s.SocketSet}, "socket_mode": s.SocketMode, "socket_group": s.SocketGID,
		"socket_allow_uids": s.SocketAllowUIDs, "log_bytes": s.LogBytes, "drain": s.Drain,
		"reload_signal": s.ReloadSignal,
	}
}

// Reload implements core.Reloader. The sources are read on the caller's goroutine (files, user
// lookups: nothing that may block runs on the loop); the plan is made and applied on the loop.
func (s *supervisor) Reload(ctx context.Context, dryRun bool) (core.ReloadResult, error) {
	res := core.ReloadResult{DryRun: dryRun, Plan: []core.ReloadStep{}}
	if s.cfg.Reload == nil {
		return res, fmt.Errorf("this gaffer has no configuration to read again: %w", core.ErrConflict)
	}
	select { // one reload at a time; a caller that gives up waiting is not held
	case s.reloadSem <- struct{}{}:
		defer func() { <-s.reloadSem }()
	case <-ctx.Done():
		return res, ctx.Err()
	}
	next, err := s.cfg.Reload()
	if err != nil {
		res.Errors = errorLines(err)
		// On gaffer's stderr too: the container's log says why a reload changed nothing.
		for _, e := range res.Errors {
			s.warnf("reload: %s", e)
		}
		s.warnf("reload: the configuration has errors: nothing changed")
		return res, nil
	}
	var applyErr error
	prev := s.cfg.Config.Settings // only the loop writes it, and reloads are serialised by reloadSem
	// Committed: a caller that gives up must not release reloadSem, or skip SocketAccess, while
	// the loop still applies the reload.
	if e := s.callCommitted(ctx, func() { res, applyErr = s.reload(next, dryRun) }); e != nil {
		return res, e
	}
	if res.Applied && s.cfg.SocketAccess != nil && socketAccessChanged(prev, next.Settings) {
		if err := s.cfg.SocketAccess(next.Settings); err != nil {
			s.warnf("reload: API socket: %v (the file keeps its mode and group; allowed uids changed)", err)
		}
	}
	return res, applyErr
}

// errorLines splits a configuration's errors, one FILE:LINE: message per line.
func errorLines(err error) []string {
	var errs *config.Errors
	if errors.As(err, &errs) {
		var out []string
		for _, e := range errs.List {
			out = append(out, e.Error())
		}
		return out
	}
	return strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
}

// reloadOnSignal is reload_signal's reload: read off the loop, reported as events.
func (s *supervisor) reloadOnSignal() {
	go func() {
		defer survive(s.warnf, "reload")
		if _, err := s.Reload(context.Background(), false); err != nil {
			s.warnf("reload: %v", err) // the configuration's errors are reported by Reload
		}
	}()
}

// reload plans the change to next and, unless dryRun, carries it out, on the loop.
func (s *supervisor) reload(next *config.Config, dryRun bool) (core.ReloadResult, error) {
	res := core.ReloadResult{DryRun: dryRun, Plan: []core.ReloadStep{}}
	if s.stopping != nil || s.draining != nil {
		return res, fmt.Errorf("gaffer is stopping: %w", core.ErrUnavailable)
	}
	plan := diffProcesses(s.cfg.Config, next)
	for _, p := range plan {
		for _, in := range s.insts {
			if in.retire && in.cfg.Name == p.name && p.action != reloadRemove {
				return res, fmt.Errorf("%s is still being removed by an earlier reload: try again once it is gone: %w", p.name, core.ErrConflict)
			}
		}
	}
	for _, p := range plan {
		res.Plan = append(res.Plan, core.ReloadStep{Name: p.name, Action: p.action, Why: p.why()})
	}
	res.NeedsRestart = settingsNeedingRestart(s.cfg.Config.Settings, next.Settings)
	if dryRun {
		return res, nil
	}
	keepSettings(&next.Settings, s.cfg.Config.Settings, res.NeedsRestart)
	s.restyle(s.cfg.Config.Settings, next.Settings)
	s.applyReload(next, plan)
	res.Applied = true
	for _, k := range res.NeedsRestart {
		s.out.Event("reload: settings.%s changed: it takes effect when gaffer starts again", k)
	}
	return res, nil
}

// applyReload makes next the running configuration. Kept processes' instances take their new
// configuration at once (a running one of a changed process is stopped with its old stop signal
// first, and starts again with the new one); new processes start once their dependencies are
// satisfied; removed ones are stopped highest level first and removed.
func (s *supervisor) applyReload(next *config.Config, plan []processPlan) {
	steps := map[string]processPlan{}
	for _, p := range plan {
		steps[p.name] = p
	}
	for _, in := range s.insts {
		if in.retire {
			continue
		}
		p := steps[in.cfg.Name]
		switch p.action {
		case reloadRemove:
			in.retire = true
			s.out.Event("%s: removing (%s)", in.name, p.why())
			continue
		case reloadUpdate:
			if in.state == stateStarting && in.proc != nil && slices.Contains(p.changed, "ready") {
				// Its readiness is being asked the old way (a log: watch exists only from the
				// start): a new ready is a new start.
				s.stopInstance(in, stopReload)
			}
		case reloadRestart:
			if in.proc != nil && in.state != stateStopping {
				// With its old stop signal and timeout; it starts again with the new configuration.
				s.stopInstance(in, stopReload)
			} else if in.state == stateExited || in.state == stateFatal {
				in.reconfigured = true // started again with the new configuration below
			}
		}
		prev := in.cfg
		in.cfg = p.next
		s.reconfigure(in, prev)
	}
	// The new configuration owns the instances from here (their cfg points into it): scale and
	// find go by it.
	s.cfg.Config = next
	s.levels = levels(next.Processes)
	for _, in := range s.insts {
		if !in.retire {
			in.level = s.levels[in.cfg.Name]
		}
	}
	// Instances in the new file order, those being removed last.
	var insts []*instance
	for i := range next.Processes {
		p := &next.Processes[i]
		for _, in := range s.insts {
			if !in.retire && in.cfg == p {
				insts = append(insts, in)
			}
		}
		if steps[p.Name].action == reloadAdd {
			for k := 1; k <= max(p.NumProcesses, 1); k++ {
				in := s.newInstance(p, k)
				insts = append(insts, in)
				if scheduled(in) {
					in.sched.due = p.RunAtStart
					s.armSchedule(in, s.clock.Now())
				}
			}
			s.out.Event("%s: adding", p.Name)
		}
	}
	for _, in := range s.insts {
		if in.retire {
			insts = append(insts, in)
		}
	}
	s.insts = insts
	s.setWidth()
	for _, p := range plan {
		switch {
		case p.action == reloadRestart:
			s.out.Event("%s: restarting (%s)", p.name, p.why())
		case p.action == reloadUpdate:
			s.out.Event("%s: updated in place (%s)", p.name, p.why())
		}
		if p.scale {
			if err := s.scale(p.name, p.next.NumProcesses); err != nil && !errors.Is(err, core.ErrConflict) {
				s.warnf("reload: scale %s: %v", p.name, err)
			}
		}
	}
	for _, in := range s.insts {
		if in.reconfigured {
			in.reconfigured = false
			s.to(in, statePending, "", -1, "")
		}
	}
	s.emit("reload", nil, -1, fmt.Sprintf("%d steps", len(plan)))
	s.retireSome()
	s.startReady()
}

// reconfigure applies the keys that change in place to in, whose configuration was prev: a
// schedule re-armed, health checks begun or ended.
func (s *supervisor) reconfigure(in *instance, prev *config.Process) {
	if prev.Schedule.Spec != in.cfg.Schedule.Spec || prev.RunAtStart != in.cfg.RunAtStart {
		s.stopSchedule(in)
		if scheduled(in) {
			s.armSchedule(in, s.clock.Now())
		}
	}
	up := in.state == stateRunning || in.state == stateReady
	if up && hasHealth(in.cfg) && (!hasHealth(prev) || prev.Health != in.cfg.Health) {
		s.forgetHealth(in)
		s.healthEntered(in, in.state)
	}
	if !hasHealth(in.cfg) {
		s.forgetHealth(in)
		in.health.status = ""
	}
}

// retireSome stops the instances a reload removes, dependents first: the highest level that has
// any left is stopped (or removed at once when nothing runs), the next once it is gone.
func (s *supervisor) retireSome() {
	if s.stopping != nil {
		return
	}
	for {
		top := -1
		for _, in := range s.insts {
			if in.retire {
				top = max(top, in.level)
			}
		}
		if top < 0 {
			return
		}
		running := false
		for _, in := range slices.Clone(s.insts) {
			if !in.retire || in.level != top {
				continue
			}
			if in.proc == nil {
				s.remove(in)
				continue
			}
			running = true
			if in.state != stateStopping {
				s.stopInstance(in, stopRemove)
			} else {
				in.stop = stopRemove
			}
		}
		if running {
			return
		}
	}
}
