package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// layerDir writes name -> text files under a new directory and returns it.
func layerDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadIn loads paths (relative to dir) as layers with env as gaffer's environment, and returns
// the config or the problems with dir/ cut from them.
func loadIn(t *testing.T, dir string, env map[string]string, paths ...string) (*Config, []string) {
	t.Helper()
	full := make([]string, len(paths))
	for i, p := range paths {
		full[i] = filepath.Join(dir, p)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := loadLayers(full, testUsers(), lookup)
	if err != nil {
		lines := errorLines(t, err)
		for i := range lines {
			lines[i] = strings.ReplaceAll(lines[i], dir+string(filepath.Separator), "")
		}
		return nil, lines
	}
	return cfg, nil
}

func TestLayersMerge(t *testing.T) {
	dir := layerDir(t, map[string]string{
		"base.toml": `[settings]
grace = "5s"
output = "json"

[process.db]
cmd = "postgres"

[process.web]
cmd = ["web", "--port", "80"]
args = ["-v", "-v"]
after = ["db"]
env = { A = "base", B = "base" }
restart = "always"
numprocesses = 2

[process.worker]
cmd = "worker"
`,
		"conf.d/20-last.toml": `[process.web]
numprocesses = 4
`,
		"conf.d/10-first.toml": `[settings]
output = "raw"
drain = "3s"

[process.web]
numprocesses = 3
args = ["-q"]
env.B = "layer"
env.C = "layer"

[process.cron]
cmd = "cron"
`,
		"conf.d/.10-first.toml.swp": "not toml at all",
		"conf.d/README":             "not read",
	})
	cfg, errs := loadIn(t, dir, nil, "base.toml", "conf.d")
	if errs != nil {
		t.Fatalf("errors:\n%s", strings.Join(errs, "\n"))
	}
	if want := []string{"base.toml", "conf.d/10-first.toml", "conf.d/20-last.toml"}; !reflect.DeepEqual(rel(dir, cfg.Sources), want) || cfg.File != cfg.Sources[0] {
		t.Errorf("sources %q (file %q), want %q", rel(dir, cfg.Sources), cfg.File, want)
	}
	// [settings] merge key by key.
	if s := cfg.Settings; s.Grace != 5*time.Second || s.Output != OutputRaw || s.Drain != 3*time.Second {
		t.Errorf("settings %+v", s)
	}
	var names []string
	for _, p := range cfg.Processes {
		names = append(names, p.Name)
	}
	// Start order: the first layer's processes in its order, then those a later layer adds.
	if want := []string{"db", "web", "worker", "cron"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("processes %q, want %q", names, want)
	}
	web := cfg.Processes[1]
	if web.NumProcesses != 4 { // the last layer wins
		t.Errorf("numprocesses %d, want 4", web.NumProcesses)
	}
	if !reflect.DeepEqual(web.Args, []string{"-q"}) { // arrays replace
		t.Errorf("args %q, want [-q]", web.Args)
	}
	if want := map[string]string{"A": "base", "B": "layer", "C": "layer"}; !reflect.DeepEqual(web.Env, want) { // tables merge
		t.Errorf("env %v, want %v", web.Env, want)
	}
	if web.Restart != RestartAlways || !reflect.DeepEqual(web.Cmd, []string{"web", "--port", "80"}) || !reflect.DeepEqual(web.After, []string{"db"}) {
		t.Errorf("keys no layer overrode changed: %+v", web)
	}
	if web.StopTimeout != 5*time.Second || web.Line != 8 {
		t.Errorf("stop_timeout %v (from grace), line %d (its header in base.toml)", web.StopTimeout, web.Line)
	}
	for _, tt := range []struct {
		path []string
		file string
		line int
	}{
		{[]string{"process", "web"}, "base.toml", 8},
		{[]string{"process", "web", "numprocesses"}, "conf.d/20-last.toml", 2},
		{[]string{"process", "web", "args"}, "conf.d/10-first.toml", 7},
		{[]string{"process", "web", "args", "\x000"}, "conf.d/10-first.toml", 7},
		{[]string{"process", "web", "args", "\x001"}, "", 0}, // the replaced array's second element is gone
		{[]string{"process", "web", "env", "A"}, "base.toml", 12},
		{[]string{"process", "web", "env", "B"}, "conf.d/10-first.toml", 8},
		{[]string{"process", "web", "cmd"}, "base.toml", 9},
		{[]string{"process", "web", "ready"}, "", 0},
		{[]string{"settings", "output"}, "conf.d/10-first.toml", 2},
		{[]string{"settings", "grace"}, "base.toml", 2},
		{[]string{"process", "cron"}, "conf.d/10-first.toml", 11},
	} {
		file, line := cfg.Origin(tt.path...)
		if file != "" {
			file = rel(dir, []string{file})[0]
		}
		if file != tt.file || line != tt.line {
			t.Errorf("Origin(%q) = %s:%d, want %s:%d", tt.path, file, line, tt.file, tt.line)
		}
	}
}

func rel(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimPrefix(p, dir+string(filepath.Separator))
	}
	return out
}

func TestLayersDisabled(t *testing.T) {
	dir := layerDir(t, map[string]string{
		"base.toml":    "[process.web]\ncmd = \"web\"\n[process.worker]\ncmd = \"${WORKER_CMD}\"\n[process.cron]\ncmd = \"cron\"\n",
		"off.toml":     "[process.worker]\ndisabled = true\n[process.cron]\ndisabled = true\n",
		"on.toml":      "[process.cron]\ndisabled = false\n",
		"after.toml":   "[process.web]\nafter = [\"worker\"]\n",
		"typo.toml":    "[process.wroker]\ndisabled = true\n",
		"notbool.toml": "[process.web]\ndisabled = \"yes\"\n",
	})
	// worker's ${WORKER_CMD} is not set: a disabled process's values are not expanded.
	cfg, errs := loadIn(t, dir, nil, "base.toml", "off.toml", "on.toml")
	if errs != nil {
		t.Fatalf("errors:\n%s", strings.Join(errs, "\n"))
	}
	var names []string
	for _, p := range cfg.Processes {
		names = append(names, p.Name)
		if p.Disabled {
			t.Errorf("%s: Disabled in Processes", p.Name)
		}
	}
	if !reflect.DeepEqual(names, []string{"web", "cron"}) || !reflect.DeepEqual(cfg.Disabled, []string{"worker"}) {
		t.Errorf("processes %q, disabled %q; want [web cron], [worker]", names, cfg.Disabled)
	}
	tests := []struct {
		name   string
		layers []string
		want   []string
	}{
		{"after a disabled process", []string{"base.toml", "off.toml", "after.toml"},
			[]string{"after.toml:2: process.web.after[0]: worker is disabled, so web would never start"}},
		{"disabled, never defined", []string{"base.toml", "typo.toml"},
			[]string{"base.toml:4: process.worker.cmd: WORKER_CMD is not set (${WORKER_CMD:-default} gives a default)", "typo.toml:2: process.wroker.disabled: wroker is disabled, but no layer defines it (no cmd) (did you mean worker?)"}},
		{"not a boolean", []string{"base.toml", "off.toml", "notbool.toml"},
			[]string{`notbool.toml:2: process.web.disabled: want true or false, got a string ("yes")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := loadIn(t, dir, nil, tt.layers...)
			if !reflect.DeepEqual(errs, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLayersErrors(t *testing.T) {
	dir := layerDir(t, map[string]string{
		"base.toml":    "[process.web]\ncmd = \"web\"\nrestart = \"always\"\n",
		"second.toml":  "# a comment\n[process.web]\n\nbackoff = \"1 s\"\nnumprocesses = 0\n\n[settings]\ncolor = \"blue\"\n",
		"syntax.toml":  "[process.web]\nrestart = on-failure\n",
		"syntax2.toml": "[process.web\n",
		"Procfile":     "web: web\n",
		"empty/x.txt":  "",
		"dup.toml":     "[process.web]\nmax_restarts = 3\n",
		"never.toml":   "[process.web]\nrestart = \"never\"\n",
	})
	tests := []struct {
		name   string
		layers []string
		want   []string
	}{
		{"errors in the second file point into it", []string{"base.toml", "second.toml"}, []string{
			`second.toml:4: process.web.backoff: bad duration "1 s": want e.g. "10s", "500ms", "1m30s"`,
			"second.toml:5: process.web.numprocesses: want at least 1, got 0",
			`second.toml:8: settings.color: unknown value "blue": want auto, always or never`,
		}},
		{"a contradiction between layers is at the key that made it", []string{"base.toml", "dup.toml", "never.toml"}, []string{
			`dup.toml:2: process.web.max_restarts: max_restarts with restart = "never": nothing is restarted`,
		}},
		{"syntax errors of every layer, nothing else", []string{"base.toml", "second.toml", "syntax.toml", "syntax2.toml"}, []string{
			`syntax.toml:2: invalid TOML: incomplete number (a string needs quotes: "on-failure")`,
			"syntax2.toml:1: invalid TOML: expected character ]",
		}},
		{"a Procfile is read alone", []string{"base.toml", "Procfile"}, []string{"Procfile: a Procfile must be the only config source, not one of 2"}},
		{"a missing layer", []string{"base.toml", "nope.d"}, []string{"nope.d: cannot read: no such file or directory"}},
		{"only empty directories", []string{"empty"}, []string{"no config file: no *.toml in empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := loadIn(t, dir, nil, tt.layers...)
			if !reflect.DeepEqual(errs, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	// An empty directory among others is no layer, and no error.
	if cfg, errs := loadIn(t, dir, nil, "empty", "base.toml", "empty"); errs != nil || len(cfg.Sources) != 1 {
		t.Errorf("empty directories: %q, %+v", errs, cfg)
	}
	// A Procfile alone is still one, with its origins.
	cfg, errs := loadIn(t, dir, nil, "Procfile")
	if errs != nil || len(cfg.Processes) != 1 || !cfg.Processes[0].Shell {
		t.Fatalf("Procfile: %q, %+v", errs, cfg)
	}
	if file, line := cfg.Origin("process", "web", "cmd"); file != filepath.Join(dir, "Procfile") || line != 1 {
		t.Errorf("Procfile origin %s:%d", file, line)
	}
}

// TestLayersSettings: a later [settings] overrides key by key, and a layer may carry only
// settings.
func TestLayersSettings(t *testing.T) {
	dir := layerDir(t, map[string]string{
		"a.toml": "[settings]\ngrace = \"3s\"\nreload_signal = \"HUP\"\n[process.a]\ncmd = \"a\"\n",
		"b.toml": "[settings]\nreload_signal = \"USR1\"\ntimestamps = true\n",
	})
	cfg, errs := loadIn(t, dir, nil, "a.toml", "b.toml")
	if errs != nil {
		t.Fatal(errs)
	}
	if s := cfg.Settings; s.Grace != 3*time.Second || s.ReloadSignal != syscall.SIGUSR1 || !s.Timestamps || cfg.Processes[0].StopTimeout != 3*time.Second {
		t.Errorf("settings %+v", s)
	}
}

func TestExplain(t *testing.T) {
	dir := layerDir(t, map[string]string{
		"a.toml": `[settings]
grace = "3s"

[process.web]
cmd = "serve --port ${PORT:-80}"
shell = true
env = { A = "1" }
health = "tcp://127.0.0.1:80"

[process.off]
cmd = "x"
`,
		"b.d/1.toml": "[process.web]\nuid = 1000\nhealth_retries = 5\n[process.off]\ndisabled = true\n",
	})
	cfg, errs := loadIn(t, dir, map[string]string{"PORT": "8080"}, "a.toml", "b.d")
	if errs != nil {
		t.Fatal(errs)
	}
	raw := strings.ReplaceAll(cfg.Explain(), dir+"/", "")
	// Comments are aligned within each table.
	if want := "\n[process.off]    # a.toml:10\ndisabled = true  # b.d/1.toml:5\n"; !strings.HasSuffix(raw, want) {
		t.Errorf("does not end with\n%s\n%s", want, raw)
	}
	lines := strings.Split(raw, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"# sources: a.toml, b.d/1.toml\n\n[settings] # a.toml:1\ngrace = \"3s\" # a.toml:2\noutput = \"prefix\" # default\n",
		"\n[process.web] # a.toml:4\ncmd = \"serve --port 8080\" # a.toml:5\nargs = [] # default\nshell = true # a.toml:6\nuser = \"1000\" # b.d/1.toml:2\nenv.A = \"1\" # a.toml:7\n",
		"\nstop_timeout = \"3s\" # default: settings.grace\n",
		"\nhealth = \"tcp://127.0.0.1:80\" # a.toml:8\nhealth_interval = \"10s\" # default\n",
		"\nhealth_retries = 5 # b.d/1.toml:3\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no\n%s\nin\n%s", want, got)
		}
	}
	for _, absent := range []string{"cwd", "watchdog", "schedule", "listen_mode", "uid", "socket ="} {
		if strings.Contains(got, "\n"+absent) {
			t.Errorf("%s is shown:\n%s", absent, got)
		}
	}
}
