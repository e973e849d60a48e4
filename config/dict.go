package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"time"

	"gaffer/listen"
	"gaffer/signals"
	"gaffer/spawn"
)

// ToDict is the process as the Python gaffer's ProcessConfig.to_dict has it (name, cmd, args,
// env, cwd, detach, shell, redirect_output, redirect_input, custom_streams; uid and gid are one
// user SPEC here), plus gaffer's own keys; listen (with listen_names and listen_mode) is the
// Python gaffer's custom_channels: handles passed to the process. Durations are strings ("10s"),
// the stop signal a name ("TERM"), the probe as written ("tcp://127.0.0.1:80"), unset user, cwd,
// watchdog and listen_mode nil; the health_* keys and on_unhealthy are nil without a health probe,
// schedule and run_at_start nil without a schedule. Line is not in it.
func (p Process) ToDict() map[string]any {
	env := make(map[string]string, len(p.Env))
	for k, v := range p.Env {
		env[k] = v
	}
	m := map[string]any{
		"name":            p.Name,
		"cmd":             list(p.Cmd),
		"args":            list(p.Args),
		"shell":           p.Shell,
		"cwd":             nilIfEmpty(p.Cwd),
		"user":            nilIfEmpty(p.User),
		"env":             env,
		"clear_env":       p.ClearEnv,
		"numprocesses":    p.NumProcesses,
		"restart":         p.Restart,
		"success_codes":   slices.Clone(p.SuccessCodes),
		"backoff":         formatDuration(p.Backoff),
		"backoff_max":     formatDuration(p.BackoffMax),
		"max_restarts":    p.MaxRestarts,
		"restart_window":  formatDuration(p.RestartWindow),
		"on_end":          p.OnEnd,
		"oneshot":         p.Oneshot,
		"after":           list(p.After),
		"ready":           p.Ready.String(),
		"ready_timeout":   formatDuration(p.ReadyTimeout),
		"stop_signal":     signals.Name(p.StopSignal),
		"stop_timeout":    formatDuration(p.StopTimeout),
		"redirect_output": list(p.RedirectOutput),
		"redirect_input":  p.RedirectInput,
		"custom_streams":  list(p.CustomStreams),
		"tty":             p.TTY,
		"detach":          p.Detach,
		"watchdog":        durationOrNil(p.Watchdog),
		"listen":          addrs(p.Listen),
		"listen_names":    list(p.ListenNames),
		"listen_mode":     modeOrNil(p.ListenMode),
		"memory_max":      uintOrNil(p.Limits.MemoryMax),
		"memory_high":     uintOrNil(p.Limits.MemoryHigh),
		"cpu_max":         floatOrNil(p.Limits.CPUMax),
		"pids_max":        uintOrNil(p.Limits.PidsMax),
		"health":          p.Health.String(),
		"health_interval": nil,
		"health_timeout":  nil,
		"health_retries":  nil,
		"health_start":    nil,
		"on_unhealthy":    nil,
		"schedule":        nil,
		"run_at_start":    nil,
	}
	if p.Health.Kind != ProbeNone && p.Health.Kind != "" {
		m["health_interval"] = formatDuration(p.HealthInterval)
		m["health_timeout"] = formatDuration(p.HealthTimeout)
		m["health_retries"] = p.HealthRetries
		m["health_start"] = formatDuration(p.HealthStart)
		m["on_unhealthy"] = p.OnUnhealthy
	}
	if !p.Schedule.IsZero() {
		m["schedule"] = p.Schedule.String()
		m["run_at_start"] = p.RunAtStart
	}
	return m
}

// ToDict is the whole config: file, sources (every file read), settings, processes in start
// (file) order, and the names of the disabled ones.
func (c *Config) ToDict() map[string]any {
	procs := make([]map[string]any, len(c.Processes))
	for i, p := range c.Processes {
		procs[i] = p.ToDict()
	}
	return map[string]any{
		"file":     c.File,
		"sources":  list(c.Sources),
		"disabled": list(c.Disabled),
		"settings": map[string]any{
			"grace":         formatDuration(c.Settings.Grace),
			"output":        c.Settings.Output,
			"timestamps":    c.Settings.Timestamps,
			"color":         c.Settings.Color,
			"socket_mode":   fmt.Sprintf("%04o", c.Settings.SocketMode),
			"log_bytes":     c.Settings.LogBytes,
			"drain":         formatDuration(c.Settings.Drain),
			"reload_signal": signalOrNil(c.Settings.ReloadSignal),
		},
		"processes": procs,
	}
}

// JSON is ToDict indented, keys sorted, with a final newline. Commands keep their & < >
// unescaped: this is for people and tools, not for HTML.
func (c *Config) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c.ToDict()); err != nil {
		return nil, fmt.Errorf("config %s as JSON: %w", c.File, err)
	}
	return b.Bytes(), nil
}

// FromDict is ProcessConfig.from_dict: it reads what ToDict writes (also after a trip through
// JSON) with the rules of a [process.NAME] table, "name" included, and the defaults for what is
// missing. A cmd array is the final argv, also with shell = true. The user is resolved against
// this system's /etc/passwd and /etc/group. Errors are an *Errors without file or line.
func FromDict(m map[string]any) (Process, error) {
	return fromDict(m, spawn.SystemUsers())
}

func fromDict(m map[string]any, users spawn.Users) (Process, error) {
	d := &decoder{users: users, dict: true}
	t, _ := plain(m).(map[string]any)
	var name string
	if v, ok := t["name"]; !ok || v == nil {
		d.errorf(nil, "missing name")
	} else if s, ok := d.str(keyPath{"name"}, v); ok && d.checkName(keyPath{"name"}, s) {
		name = s
	}
	p := d.process(name, nil, t, DefaultGrace)
	if err := d.errs.err(); err != nil {
		return Process{}, err
	}
	return p, nil
}

// plain turns Go values into the shapes a TOML document decodes to: int64 for every integer
// (and for a float that is a whole number, as JSON has only floats), []any, map[string]any.
func plain(v any) any {
	if v == nil {
		return nil
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return f
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() <= math.MaxInt64 {
			return int64(rv.Uint())
		}
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = plain(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[it.Key().String()] = plain(it.Value().Interface())
		}
		return out
	}
	return v
}

// formatDuration writes d so that time.ParseDuration reads it back: "10s", "60s", "250ms".
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

func list(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func durationOrNil(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return formatDuration(d)
}

func modeOrNil(m os.FileMode) any {
	if m == 0 {
		return nil
	}
	return fmt.Sprintf("%04o", m)
}

func addrs(a []listen.Addr) []string {
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = x.String()
	}
	return out
}

func signalOrNil(sig syscall.Signal) any {
	if sig == 0 {
		return nil
	}
	return signals.Name(sig)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
