package config

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gaffer/cgroup"
	"gaffer/signals"
	"gaffer/spawn"

	"github.com/google/shlex"
	"golang.org/x/sys/unix"
)

// decoder turns the plain values of a TOML document (string, int64, float64, bool, []any,
// map[string]any, dates) or of a dict into a Config, collecting every problem on the way.
type decoder struct {
	src   *source // nil when decoding a dict: problems carry no position
	users spawn.Users
	errs  Errors
	// dict is FromDict's mode: a "name" key, empty strings for unset user and cwd, and a cmd array
	// taken as the final argv even with shell (to_dict writes the /bin/sh -c form).
	dict bool
	// limitCheck says which limits this machine cannot give (tests); nil asks gaffer's cgroup.
	limitCheck func(cgroup.Limits) []cgroup.LimitError
	// lookup reads gaffer's environment for ${VAR} in values; nil expands nothing (FromDict).
	lookup func(string) (string, bool)
}

func (d *decoder) errorf(k keyPath, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(k) > 0 {
		msg = k.String() + ": " + msg
	}
	e := Error{Msg: msg}
	if d.src != nil {
		o := d.src.at(k)
		e.File, e.Line = o.file, o.line
	}
	d.errs.add(e)
}

// describe names the TOML type of v, with the value when it is short.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return fmt.Sprintf("a string (%q)", x)
	case int64:
		return fmt.Sprintf("an integer (%d)", x)
	case float64:
		return fmt.Sprintf("a float (%v)", x)
	case bool:
		return fmt.Sprintf("a boolean (%v)", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case nil:
		return "null"
	}
	return "a date or time"
}

func (d *decoder) wrongType(k keyPath, want string, v any) {
	d.errorf(k, "want %s, got %s", want, describe(v))
}

func (d *decoder) str(k keyPath, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(k, "a string", v)
	}
	return s, ok
}

func (d *decoder) boolean(k keyPath, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		d.wrongType(k, "true or false", v)
	}
	return b, ok
}

func (d *decoder) integer(k keyPath, v any) (int, bool) {
	n, ok := v.(int64)
	if !ok {
		d.wrongType(k, "an integer", v)
		return 0, false
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		d.errorf(k, "%d is out of range", n)
		return 0, false
	}
	return int(n), true
}

// atLeast is integer for a count that must be at least least.
func (d *decoder) atLeast(k keyPath, v any, least int) (int, bool) {
	n, ok := d.integer(k, v)
	if ok && n < least {
		d.errorf(k, "want at least %d, got %d", least, n)
		return 0, false
	}
	return n, ok
}

func (d *decoder) table(k keyPath, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		d.wrongType(k, "a table", v)
	}
	return t, ok
}

// strs reads an array of strings; each bad element is its own problem, at its own line.
func (d *decoder) strs(k keyPath, v any) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		d.wrongType(k, "an array of strings", v)
		return nil, false
	}
	out := make([]string, 0, len(a))
	for i, e := range a {
		s, isStr := e.(string)
		if !isStr {
			d.wrongType(k.index(i), "a string", e)
			ok = false
		}
		out = append(out, s)
	}
	return out, ok
}

// argv reads a string, shlex-split, or an array of strings.
func (d *decoder) argv(k keyPath, v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		out, err := shlex.Split(x)
		if err != nil {
			d.errorf(k, "cannot split %q into words: %v", x, err)
			return nil, false
		}
		return out, true
	case []any:
		return d.strs(k, x)
	}
	d.wrongType(k, "a string or an array of strings", v)
	return nil, false
}

func (d *decoder) duration(k keyPath, v any) (time.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(k, `a duration string such as "10s"`, v)
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(k, `bad duration %q: want e.g. "10s", "500ms", "1m30s"`, s)
		return 0, false
	case dur < 0:
		d.errorf(k, "negative duration %q", s)
		return 0, false
	}
	return dur, true
}

func (d *decoder) oneOf(k keyPath, v any, choices ...string) (string, bool) {
	s, ok := d.str(k, v)
	if !ok {
		return "", false
	}
	if !slices.Contains(choices, s) {
		d.errorf(k, "unknown value %q: want %s%s", s, orList(choices), didYouMean(s, choices))
		return "", false
	}
	return s, true
}

// unknown reports a key that is not one of known.
func (d *decoder) unknown(k keyPath, v any, known []string) {
	what := "key"
	if _, isTable := v.(map[string]any); isTable {
		what = "table"
	}
	d.errorf(k, "unknown %s%s", what, didYouMean(k[len(k)-1], known))
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// didYouMean suggests the closest of known when it is a typo away: at most 2 edits, and fewer
// than half the letters ("zz" is not a typo of "a").
func didYouMean(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		dist := editDistance(strings.ToLower(s), k)
		if dist < bestDist && 2*dist < max(len(s), len(k)) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys(t map[string]any) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func settingsKeys() []string {
	return []string{"grace", "output", "timestamps", "color", "socket", "socket_mode", "socket_group", "socket_allow_uids", "log_bytes", "drain", "reload_signal"}
}

func processKeys() []string {
	return []string{
		"cmd", "args", "shell", "cwd", "user", "uid", "gid", "env", "clear_env", "numprocesses",
		"restart", "success_codes", "backoff", "backoff_max", "max_restarts", "restart_window",
		"on_end", "oneshot", "after", "ready", "ready_timeout", "stop_signal", "stop_timeout",
		"redirect_output", "redirect_input", "custom_streams", "tty", "detach",
		"watchdog", "listen", "listen_names", "listen_mode",
		"memory_max", "memory_high", "cpu_max", "pids_max",
		"health", "health_interval", "health_timeout", "health_retries", "health_start", "on_unhealthy",
		"schedule", "run_at_start", "disabled",
	}
}

// document decodes a whole gaffer.toml.
func (d *decoder) document(root map[string]any) *Config {
	cfg := &Config{Settings: DefaultSettings(), src: d.src}
	if d.src != nil && len(d.src.files) > 0 {
		cfg.File, cfg.Sources = d.src.files[0], slices.Clone(d.src.files)
	}
	for _, key := range sortedKeys(root) {
		if key != "settings" && key != "process" {
			d.unknown(keyPath{key}, root[key], []string{"settings", "process"})
		}
	}
	if v, ok := root["settings"]; ok {
		if t, ok := d.table(keyPath{"settings"}, v); ok {
			cfg.Settings = d.settings(keyPath{"settings"}, t)
		}
	}
	v, ok := root["process"]
	if !ok {
		d.errorf(nil, "no processes: add a [process.NAME] table")
		return cfg
	}
	procs, ok := d.table(keyPath{"process"}, v)
	if !ok {
		return cfg
	}
	names := sortedKeys(procs)
	// Start order is file order (layer by layer, where each process first appears); the decoded
	// map forgot it, the line index did not.
	sort.SliceStable(names, func(i, j int) bool {
		a, b := d.src.at(keyPath{"process", names[i]}), d.src.at(keyPath{"process", names[j]})
		if a.layer != b.layer {
			return a.layer < b.layer
		}
		return a.line < b.line
	})
	for _, name := range names {
		k := keyPath{"process", name}
		if !d.checkName(k, name) {
			continue
		}
		t, ok := d.table(k, procs[name])
		if !ok {
			continue
		}
		if d.disabled(k, t, names) {
			cfg.Disabled = append(cfg.Disabled, name)
			continue
		}
		cfg.Processes = append(cfg.Processes, d.process(name, k, t, cfg.Settings.Grace))
	}
	if len(names) == 0 {
		d.errorf(keyPath{"process"}, "no processes: add a [process.NAME] table")
	}
	d.total(cfg.Processes)
	d.links(cfg.Processes, names, cfg.Disabled)
	d.checkLimits(cfg.Processes)
	return cfg
}

// disabled reports whether a layer disabled the process of table t (disabled = true). Nothing
// else of a disabled process is checked: it does not run, and a layer may disable a process
// whose variables are not set where it does. A disabled = true for a process that no layer gives
// a cmd is most likely a misspelt name, and reported.
func (d *decoder) disabled(k keyPath, t map[string]any, names []string) bool {
	v, ok := t["disabled"]
	if !ok || v == nil {
		return false
	}
	off, ok := d.boolean(k.with("disabled"), v)
	if !ok || !off {
		return false
	}
	if _, hasCmd := t["cmd"]; !hasCmd && !d.dict {
		var others []string
		for _, n := range names {
			if n != k[len(k)-1] {
				others = append(others, n)
			}
		}
		d.errorf(k.with("disabled"), "%s is disabled, but no layer defines it (no cmd)%s", k[len(k)-1], didYouMean(k[len(k)-1], others))
	}
	return true
}

// total reports the process whose instances take the file past MaxTotalInstances.
func (d *decoder) total(procs []Process) {
	sum := 0
	for _, p := range procs {
		sum += p.NumProcesses
		if sum > MaxTotalInstances {
			k := keyPath{"process", p.Name}
			if d.src != nil && d.src.at(k.with("numprocesses")) != d.src.at(k) {
				k = k.with("numprocesses")
			}
			d.errorf(k, "%d instances in all, more than %d in one file", sum, MaxTotalInstances)
			return
		}
	}
}

// checkName reports a process name that cannot be one.
func (d *decoder) checkName(k keyPath, name string) bool {
	switch {
	case !validName(name):
		d.errorf(k, "bad process name: use letters, digits, _ and - (a dot is reserved for instance names such as web.2)")
		return false
	case name == "gaffer":
		d.errorf(k, "process name %q is reserved for gaffer's own output lines", name)
		return false
	}
	return true
}

func (d *decoder) settings(k keyPath, t map[string]any) Settings {
	s := DefaultSettings()
	for _, key := range sortedKeys(t) {
		kk, v := k.with(key), t[key]
		switch key {
		case "grace":
			if dur, ok := d.duration(kk, v); ok {
				s.Grace = dur
			}
		case "output":
			if o, ok := d.oneOf(kk, v, OutputPrefix, OutputJSON, OutputRaw); ok {
				s.Output = o
			}
		case "timestamps":
			if b, ok := d.boolean(kk, v); ok {
				s.Timestamps = b
			}
		case "color":
			if c, ok := d.oneOf(kk, v, ColorAuto, ColorAlways, ColorNever); ok {
				s.Color = c
			}
		case "socket":
			if p, ok := d.str(kk, v); ok {
				s.Socket, s.SocketSet = p, true
			}
		case "socket_mode":
			mode := fileMode(v)
			if mode < 0 || mode > 0o777 {
				d.errorf(kk, "want a file mode like \"0660\" or 0o660, got %s", describe(v))
			} else {
				s.SocketMode = os.FileMode(mode)
			}
		case "socket_group":
			if g, ok := d.str(kk, v); ok {
				if id, err := d.users.Lookup(":" + g); err != nil {
					d.errorf(kk, "%v", err)
				} else {
					s.SocketGroup, s.SocketGID = g, int(id.GID)
				}
			}
		case "socket_allow_uids":
			a, ok := v.([]any)
			if !ok {
				d.wrongType(kk, "an array of uids", v)
				break
			}
			for i, e := range a {
				if n, ok := d.integer(kk.index(i), e); ok {
					if n < 0 {
						d.errorf(kk.index(i), "uid %d is negative", n)
						continue
					}
					s.SocketAllowUIDs = append(s.SocketAllowUIDs, n)
				}
			}
		case "log_bytes":
			if n, ok := d.integer(kk, v); ok {
				if n < 1024 {
					d.errorf(kk, "log_bytes %d: want at least 1024", n)
				} else {
					s.LogBytes = n
				}
			}
		case "drain":
			if dur, ok := d.duration(kk, v); ok {
				s.Drain = dur
			}
		case "reload_signal":
			if sig, ok := d.reloadSignal(kk, v); ok {
				s.ReloadSignal = sig
			}
		default:
			d.unknown(kk, v, settingsKeys())
		}
	}
	return s
}

// process decodes one [process.NAME] table (or dict) onto the defaults.
func (d *decoder) process(name string, k keyPath, t map[string]any, grace time.Duration) Process {
	p := defaultProcess(name, grace)
	p.Line = d.src.line(k)
	known := processKeys()
	for _, key := range sortedKeys(t) {
		if !slices.Contains(known, key) && !(d.dict && key == "name") {
			d.unknown(k.with(key), t[key], known)
		}
	}
	// get treats a null (only possible in a dict) as an absent key.
	get := func(key string) (any, keyPath, bool) {
		v, ok := t[key]
		return v, k.with(key), ok && v != nil
	}
	flag := func(key string, dst *bool) {
		if v, kk, ok := get(key); ok {
			if b, ok := d.boolean(kk, v); ok {
				*dst = b
			}
		}
	}
	dur := func(key string, dst *time.Duration) bool {
		if v, kk, ok := get(key); ok {
			if x, ok := d.duration(kk, v); ok {
				*dst = x
				return true
			}
		}
		return false
	}
	flag("shell", &p.Shell)
	flag("clear_env", &p.ClearEnv)
	flag("oneshot", &p.Oneshot)
	flag("redirect_input", &p.RedirectInput)
	flag("tty", &p.TTY)
	flag("detach", &p.Detach)

	d.command(&p, k, get)

	if v, kk, ok := get("cwd"); ok {
		if s, ok := d.str(kk, v); ok {
			if s == "" && !d.dict {
				d.errorf(kk, "empty directory")
			}
			p.Cwd = s
		}
	}
	d.user(&p, get)
	if v, kk, ok := get("env"); ok {
		if env, ok := d.table(kk, v); ok {
			for _, name := range sortedKeys(env) {
				ek := kk.with(name)
				val, ok := d.str(ek, env[name])
				switch {
				case !ok:
				case name == "" || strings.ContainsAny(name, "=\x00"):
					d.errorf(ek, "bad variable name %q", name)
				case strings.ContainsRune(val, 0):
					d.errorf(ek, "value contains a NUL byte")
				default:
					p.Env[name] = val
				}
			}
		}
	}
	if v, kk, ok := get("numprocesses"); ok {
		if n, ok := d.atLeast(kk, v, 1); ok {
			if n > MaxInstances {
				d.errorf(kk, "%d is more than %d instances of one process", n, MaxInstances)
			} else {
				p.NumProcesses = n
			}
		}
	}
	if v, kk, ok := get("restart"); ok {
		if r, ok := d.oneOf(kk, v, RestartAlways, RestartOnFailure, RestartNever); ok {
			p.Restart = r
		}
	}
	if v, kk, ok := get("success_codes"); ok {
		d.successCodes(&p, kk, v)
	}
	hasBackoff := dur("backoff", &p.Backoff)
	if hasBackoff && p.Backoff < MinBackoff {
		// backoff = "0s" with restart = "always" turned a crashing process into a fork loop.
		d.errorf(k.with("backoff"), "backoff %s is shorter than %s", formatDuration(p.Backoff), formatDuration(MinBackoff))
	}
	hasMax := dur("backoff_max", &p.BackoffMax)
	if (hasBackoff || hasMax) && p.BackoffMax < p.Backoff {
		at := k.with("backoff_max")
		if !hasMax {
			at = k.with("backoff")
		}
		d.errorf(at, "backoff_max %s is shorter than backoff %s", formatDuration(p.BackoffMax), formatDuration(p.Backoff))
	}
	if v, kk, ok := get("max_restarts"); ok {
		if n, ok := d.integer(kk, v); ok {
			if n < 0 {
				d.errorf(kk, "want 0 (unlimited) or more, got %d", n)
			} else {
				p.MaxRestarts = n
			}
		}
	}
	if dur("restart_window", &p.RestartWindow) && p.RestartWindow == 0 {
		d.errorf(k.with("restart_window"), "restart_window must be longer than 0s")
	}
	if v, kk, ok := get("on_end"); ok {
		if o, ok := d.oneOf(kk, v, OnEndShutdown, OnEndIgnore); ok {
			p.OnEnd = o
		}
	}
	if v, kk, ok := get("after"); ok {
		if after, ok := d.strs(kk, v); ok && len(after) > 0 {
			p.After = after
		}
	}
	if v, kk, ok := get("ready"); ok {
		if s, ok := d.str(kk, v); ok {
			if probe, err := ParseProbe(s); err != nil {
				d.errorf(kk, "%v", err)
			} else {
				p.Ready = probe
			}
		}
	}
	if dur("ready_timeout", &p.ReadyTimeout) && p.ReadyTimeout == 0 {
		d.errorf(k.with("ready_timeout"), "ready_timeout must be longer than 0s")
	}
	if v, kk, ok := get("stop_signal"); ok {
		if sig, ok := d.stopSignal(kk, v); ok {
			p.StopSignal = sig
		}
	}
	dur("stop_timeout", &p.StopTimeout)
	if v, kk, ok := get("redirect_output"); ok {
		if labels, ok := d.labels(kk, v, false); ok {
			if len(labels) > 2 {
				d.errorf(kk, "at most 2 labels (stdout's and stderr's), got %d", len(labels))
			} else {
				p.RedirectOutput = labels
			}
		}
	}
	if v, kk, ok := get("custom_streams"); ok {
		if labels, ok := d.labels(kk, v, true); ok {
			p.CustomStreams = labels
		}
	}
	d.systemd(&p, k, get)
	d.limits(&p, get)
	d.health(&p, k, get)
	d.schedule(&p, k, get)
	d.contradictions(&p, k)
	return p
}

// command reads cmd and args. In a file, shell = true wants cmd as one string, the script, and no
// args: /bin/sh -c would make the first of them $0, which nobody means.
func (d *decoder) command(p *Process, k keyPath, get func(string) (any, keyPath, bool)) {
	v, kk, ok := get("cmd")
	switch {
	case !ok:
		d.errorf(k, "missing cmd")
	case p.Shell && isString(v):
		if s := v.(string); strings.TrimSpace(s) == "" {
			d.errorf(kk, "empty command")
		} else {
			p.Cmd = []string{"/bin/sh", "-c", s}
		}
	case p.Shell && !d.dict:
		d.wrongType(kk, "a string (the script for /bin/sh -c, as shell = true)", v)
	default:
		argv, ok := d.argv(kk, v)
		switch {
		case !ok:
		case len(argv) == 0:
			d.errorf(kk, "empty command")
		case argv[0] == "":
			d.errorf(kk, "empty program name")
		default:
			p.Cmd = argv
		}
	}
	if v, kk, ok := get("args"); ok {
		if args, ok := d.argv(kk, v); ok && len(args) > 0 {
			if p.Shell && !d.dict {
				d.errorf(kk, "args with shell = true: write the arguments into the cmd string")
			}
			p.Args = args
		}
	}
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// user reads user, or uid and gid, into one SPEC and checks that it resolves here.
func (d *decoder) user(p *Process, get func(string) (any, keyPath, bool)) {
	uv, uk, hasUser := get("user")
	uidv, uidk, hasUID := get("uid")
	gidv, gidk, hasGID := get("gid")
	var spec string
	var at keyPath
	switch {
	case hasUser && (hasUID || hasGID):
		at = uidk
		if !hasUID {
			at = gidk
		}
		d.errorf(at, "give either user or uid/gid, not both")
		return
	case hasUser:
		s, ok := d.str(uk, uv)
		if !ok {
			return
		}
		if s == "" {
			if !d.dict {
				d.errorf(uk, "empty user")
			}
			return
		}
		spec, at = s, uk
	case hasUID || hasGID:
		var uid, gid string
		ok := true
		if hasUID {
			uid, ok = d.idPart(uidk, uidv)
			at = uidk
		}
		if hasGID {
			var gok bool
			gid, gok = d.idPart(gidk, gidv)
			ok = ok && gok
			if at == nil {
				at = gidk
			}
		}
		if !ok {
			return
		}
		spec = uid
		if hasGID {
			spec += ":" + gid
		}
	default:
		return
	}
	p.User = spec
	if _, err := d.users.Lookup(spec); err != nil {
		d.errorf(at, "%v", err)
	}
}

// idPart reads a uid or gid: a number or a name.
func (d *decoder) idPart(k keyPath, v any) (string, bool) {
	switch x := v.(type) {
	case int64:
		if x < 0 || x > spawn.MaxID {
			d.errorf(k, "id %d is out of range 0-%d", x, spawn.MaxID)
			return "", false
		}
		return strconv.FormatInt(x, 10), true
	case string:
		if x == "" || strings.Contains(x, ":") {
			d.errorf(k, "bad id %q: want a number or a name", x)
			return "", false
		}
		return x, true
	}
	d.wrongType(k, "a number or a name", v)
	return "", false
}

func (d *decoder) successCodes(p *Process, k keyPath, v any) {
	a, ok := v.([]any)
	if !ok {
		d.wrongType(k, "an array of exit codes", v)
		return
	}
	if len(a) == 0 {
		d.errorf(k, "want at least one exit code")
		return
	}
	codes := make([]int, 0, len(a))
	for i, e := range a {
		n, isInt := e.(int64)
		switch {
		case !isInt:
			d.wrongType(k.index(i), "an exit code 0-255", e)
			ok = false
		case n < 0 || n > 255:
			d.errorf(k.index(i), "exit code %d is outside 0-255", n)
			ok = false
		default:
			codes = append(codes, int(n))
		}
	}
	if ok {
		p.SuccessCodes = codes
	}
}

// signal reads a signal name (with or without SIG) or number.
func (d *decoder) signal(k keyPath, v any) (syscall.Signal, bool) {
	var sig syscall.Signal
	switch x := v.(type) {
	case string:
		s, err := signals.Parse(x)
		if err != nil {
			d.errorf(k, "%v", err)
			return 0, false
		}
		sig = s
	case int64:
		if x < signals.Min || x > signals.Max {
			d.errorf(k, "signal number %d out of range %d-%d", x, signals.Min, signals.Max)
			return 0, false
		}
		sig = syscall.Signal(x)
	default:
		d.wrongType(k, "a signal name or number", v)
		return 0, false
	}
	return sig, true
}

// stopSignal reads a signal name or number that ends a process by default. KILL is fine; STOP
// and the terminal stops only pause it, and CHLD, CONT, URG and WINCH are ignored by default.
func (d *decoder) stopSignal(k keyPath, v any) (syscall.Signal, bool) {
	sig, ok := d.signal(k, v)
	if !ok {
		return 0, false
	}
	switch sig {
	case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		d.errorf(k, "SIG%s pauses a process, it does not stop it", signals.Name(sig))
		return 0, false
	case unix.SIGCHLD, unix.SIGCONT, unix.SIGURG, unix.SIGWINCH:
		d.errorf(k, "SIG%s does not stop a process: it is ignored by default", signals.Name(sig))
		return 0, false
	}
	return sig, true
}

// labels reads stream labels: non-empty and distinct, and for custom streams also
// [A-Za-z0-9_-]+ since they name environment variables (GAFFER_STREAM_<LABEL>).
func (d *decoder) labels(k keyPath, v any, strict bool) ([]string, bool) {
	labels, ok := d.strs(k, v)
	if !ok {
		return nil, false
	}
	for i, l := range labels {
		switch {
		case l == "":
			d.errorf(k.index(i), "empty label")
			ok = false
		case strict && !validName(l):
			d.errorf(k.index(i), "bad label %q: use letters, digits, _ and -", l)
			ok = false
		case slices.Contains(labels[:i], l):
			d.errorf(k.index(i), "label %q given twice", l)
			ok = false
		}
	}
	if len(labels) == 0 {
		return nil, ok
	}
	return labels, ok
}

// contradictions reports settings that cannot hold together.
func (d *decoder) contradictions(p *Process, k keyPath) {
	if p.Detach && p.Oneshot {
		d.errorf(k.with("detach"), "detach with oneshot: a oneshot is waited for, a detached process is not")
	}
	if p.Detach && p.Restart != RestartNever {
		d.errorf(k.with("restart"), "restart = %q with detach: a detached process is not supervised, so never restarted", p.Restart)
	}
	if p.Oneshot && p.Restart == RestartAlways {
		d.errorf(k.with("restart"), `restart = "always" with oneshot: a oneshot runs to completion (use "on-failure" to retry it)`)
	}
	if p.Oneshot && p.Ready.Kind != ProbeNone {
		d.errorf(k.with("ready"), "ready with oneshot: a oneshot is ready when it exits successfully")
	}
	// An unhealthy process (health check, watchdog) is restarted whatever its policy, and those
	// restarts count toward max_restarts.
	restartsUnhealthy := (p.Health.Kind != ProbeNone && p.Health.Kind != "" && p.OnUnhealthy == OnUnhealthyRestart) || p.Watchdog > 0
	if p.MaxRestarts > 0 && p.Restart == RestartNever && !restartsUnhealthy {
		d.errorf(k.with("max_restarts"), `max_restarts with restart = "never": nothing is restarted`)
	}
	if p.Ready.Kind == ProbeLog && len(p.RedirectOutput) == 0 && !p.TTY {
		d.errorf(k.with("ready"), "a log: probe with redirect_output = []: gaffer does not read this process's output, so no line can match")
	}
}

// links checks after: every name is declared, and no process waits for itself through others.
// A declared process that did not decode is not reported again here; one a layer disabled is.
func (d *decoder) links(procs []Process, declared, disabled []string) {
	index := map[string]int{}
	for i, p := range procs {
		index[p.Name] = i
	}
	edges := make([][]int, len(procs))
	for i, p := range procs {
		k := keyPath{"process", p.Name, "after"}
		for j, a := range p.After {
			to, ok := index[a]
			switch {
			case slices.Contains(p.After[:j], a):
				d.errorf(k.index(j), "%q is listed twice", a)
			case slices.Contains(disabled, a):
				d.errorf(k.index(j), "%s is disabled, so %s would never start", a, p.Name)
			case !ok && !slices.Contains(declared, a):
				d.errorf(k.index(j), "no process named %q%s", a, didYouMean(a, declared))
			case !ok:
			case !procs[to].Schedule.IsZero():
				// A scheduled oneshot has no moment at which it is done for good; waiting for its
				// first run would hold the dependent until the schedule fires.
				d.errorf(k.index(j), "%s is scheduled: dependents are not gated on scheduled runs", a)
			default:
				edges[i] = append(edges[i], to)
			}
		}
	}
	for _, c := range cycles(edges) {
		names := make([]string, len(c))
		for i, n := range c {
			names[i] = procs[n].Name
		}
		d.errorf(keyPath{"process", names[0], "after"}, "dependency cycle: %s", strings.Join(names, " -> "))
	}
}

// cycles finds the cycles of a graph by depth-first search from each node in order: each edge
// back to a node still on the stack closes one, returned as its path with the first node repeated
// at the end.
func cycles(edges [][]int) [][]int {
	const (
		unseen = iota
		onStack
		done
	)
	state := make([]int, len(edges))
	var stack []int
	var out [][]int
	var visit func(n int)
	visit = func(n int) {
		state[n] = onStack
		stack = append(stack, n)
		for _, m := range edges[n] {
			switch state[m] {
			case unseen:
				visit(m)
			case onStack:
				start := slices.Index(stack, m)
				c := append(slices.Clone(stack[start:]), m)
				out = append(out, c)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for n := range edges {
		if state[n] == unseen {
			visit(n)
		}
	}
	return out
}

// fileMode reads a file mode: a string as octal ("0660"), TOML's own 0o660 as the integer it
// arrives as; -1 for anything else.
func fileMode(v any) int64 {
	switch m := v.(type) {
	case string:
		if n, err := strconv.ParseUint(m, 8, 32); err == nil {
			return int64(n)
		}
	case int64:
		return m
	}
	return -1
}
