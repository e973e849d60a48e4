package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Origin is where the value at path was set: the file and line of the layer that set it last
// (for a table, of the layer that made it), or "" and 0 for a value no file gave (a default).
// path is table and key names: Origin("process", "web", "cmd"), Origin("settings", "grace"),
// Origin("process", "web", "env", "PORT").
func (c *Config) Origin(path ...string) (file string, line int) {
	o, ok := c.src.exact(keyPath(path))
	if !ok {
		return "", 0
	}
	return o.file, o.line
}

// Explain is the effective configuration as TOML-like lines, each value followed by the FILE:LINE
// that set it, or "default": settings, the processes in start order, then the disabled ones.
// Values are as decoded (durations normalized, ${VAR} expanded, a shell command as its script);
// keys left unset with no default value (cwd, watchdog ...) are not shown.
func (c *Config) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sources: %s\n", strings.Join(c.Sources, ", "))
	e := explainer{b: &b, src: c.src}

	e.header(keyPath{"settings"})
	s := c.Settings
	k := keyPath{"settings"}
	e.value(k, "grace", tomlValue(formatDuration(s.Grace)))
	e.value(k, "output", tomlValue(s.Output))
	e.value(k, "timestamps", tomlValue(s.Timestamps))
	e.value(k, "color", tomlValue(s.Color))
	if s.SocketSet {
		e.value(k, "socket", tomlValue(s.Socket))
	}
	e.value(k, "socket_mode", tomlValue(fmt.Sprintf("%04o", s.SocketMode)))
	if s.SocketGroup != "" {
		e.value(k, "socket_group", tomlValue(s.SocketGroup))
	}
	if len(s.SocketAllowUIDs) > 0 {
		e.value(k, "socket_allow_uids", tomlValue(s.SocketAllowUIDs))
	}
	e.value(k, "log_bytes", tomlValue(s.LogBytes))
	e.value(k, "drain", tomlValue(formatDuration(s.Drain)))
	if s.ReloadSignal != 0 {
		e.value(k, "reload_signal", tomlValue(signalOrNil(s.ReloadSignal)))
	}
	e.flush()

	for _, p := range c.Processes {
		e.process(p)
	}
	for _, name := range c.Disabled {
		k := keyPath{"process", name}
		e.header(k)
		e.value(k, "disabled", "true")
		e.flush()
	}
	return b.String()
}

// explainer writes one table at a time, its comments aligned.
type explainer struct {
	b     *strings.Builder
	src   *source
	lines [][2]string // key = value, comment
}

func (e *explainer) header(k keyPath) {
	e.b.WriteString("\n")
	e.lines = append(e.lines, [2]string{"[" + k.String() + "]", e.comment(k, true)})
}

// value is a key = value line of table k; also are other keys of k that may have set it (uid and
// gid make user).
func (e *explainer) value(k keyPath, key, value string, also ...string) {
	e.add(key+" = "+value, k.with(key), also...)
}

// add is a line and the origin of the value at k (or else of a key of also beside it).
func (e *explainer) add(line string, k keyPath, also ...string) {
	c := e.comment(k, false)
	for _, a := range also {
		if c == "default" {
			c = e.comment(k[:len(k)-1].with(a), false)
		}
	}
	e.lines = append(e.lines, [2]string{line, c})
}

func (e *explainer) comment(k keyPath, table bool) string {
	o, ok := e.src.exact(k)
	switch {
	case ok && o.line > 0:
		return o.file + ":" + strconv.Itoa(o.line)
	case ok:
		return o.file
	case table:
		return ""
	}
	return "default"
}

// flush writes the table's lines, comments in one column (unless a line is very long).
func (e *explainer) flush() {
	width := 0
	for _, l := range e.lines {
		if n := len(l[0]); n > width && n <= 48 {
			width = n
		}
	}
	for _, l := range e.lines {
		e.b.WriteString(l[0])
		if l[1] != "" {
			e.b.WriteString(strings.Repeat(" ", max(width-len(l[0]), 0)+2))
			e.b.WriteString("# " + l[1])
		}
		e.b.WriteString("\n")
	}
	e.lines = e.lines[:0]
}

func (e *explainer) process(p Process) {
	k := keyPath{"process", p.Name}
	e.header(k)
	d := p.ToDict()
	for _, key := range processKeys() {
		switch key {
		case "uid", "gid", "disabled":
			continue
		case "cmd":
			if p.Shell && len(p.Cmd) == 3 {
				e.value(k, key, tomlValue(p.Cmd[2]))
			} else {
				e.value(k, key, tomlValue(p.Cmd))
			}
			continue
		case "user":
			if p.User != "" {
				e.value(k, key, tomlValue(p.User), "uid", "gid")
			}
			continue
		case "env":
			names := make([]string, 0, len(p.Env))
			for n := range p.Env {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				e.add("env."+keyPath{n}.String()+" = "+tomlValue(p.Env[n]), k.with("env", n))
			}
			continue
		case "memory_max", "memory_high":
			if n, ok := d[key].(uint64); ok {
				e.value(k, key, tomlValue(formatBytes(n)))
			}
			continue
		}
		v, ok := d[key]
		if !ok || v == nil {
			continue
		}
		e.value(k, key, tomlValue(v))
		if key == "stop_timeout" {
			// The default is not a constant: it is whatever settings.grace says.
			if last := &e.lines[len(e.lines)-1]; last[1] == "default" {
				last[1] = "default: settings.grace"
			}
		}
	}
	e.flush()
}

// tomlValue writes v as TOML.
func tomlValue(v any) string {
	switch x := v.(type) {
	case string:
		return tomlString(x)
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = tomlString(s)
		}
		return "[" + strings.Join(out, ", ") + "]"
	case []int:
		out := make([]string, len(x))
		for i, n := range x {
			out[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
