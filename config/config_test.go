package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"gaffer/spawn"
)

// testUsers resolves users against the fixtures, so that tests do not depend on this machine's
// /etc/passwd.
func testUsers() spawn.Users {
	return spawn.Users{PasswdFile: "testdata/passwd", GroupFile: "testdata/group"}
}

// errorLines returns the problems in err one per line, failing unless err is an *Errors.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %T: %v", err, err)
	}
	return strings.Split(errs.Error(), "\n")
}

// loadString loads src as DIR/gaffer.toml and returns the config or the problems, with DIR/
// removed from them.
func loadString(t *testing.T, src string) (*Config, []string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "gaffer.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(path, testUsers())
	if err != nil {
		lines := errorLines(t, err)
		for i := range lines {
			lines[i] = strings.TrimPrefix(lines[i], dir+string(filepath.Separator))
		}
		return nil, lines
	}
	return cfg, nil
}

func TestConfigFullExample(t *testing.T) {
	cfg, err := load("testdata/full.toml", testUsers())
	if err != nil {
		t.Fatalf("the issue's example must load: %v", err)
	}
	wantSettings := DefaultSettings()
	wantSettings.Grace, wantSettings.Output, wantSettings.Color = 10*time.Second, "prefix", "auto"
	if !reflect.DeepEqual(cfg.Settings, wantSettings) {
		t.Errorf("settings = %+v, want %+v", cfg.Settings, wantSettings)
	}
	if len(cfg.Processes) != 2 || cfg.Processes[0].Name != "web" || cfg.Processes[1].Name != "db" {
		t.Fatalf("processes in file order: got %+v", cfg.Processes)
	}
	want := Process{
		Name:           "web",
		Line:           7,
		Cmd:            []string{"nginx", "-g", "daemon off;"},
		Args:           []string{"-c", "$CONF"},
		Cwd:            "/srv",
		User:           "www-data",
		Env:            map[string]string{"CONF": "/etc/nginx.conf"},
		NumProcesses:   1,
		Restart:        "on-failure",
		SuccessCodes:   []int{0},
		Backoff:        time.Second,
		BackoffMax:     30 * time.Second,
		RestartWindow:  60 * time.Second,
		OnEnd:          "shutdown",
		After:          []string{"db"},
		Ready:          Probe{Kind: "tcp", Target: "127.0.0.1:80"},
		ReadyTimeout:   60 * time.Second,
		StopSignal:     syscall.SIGTERM,
		StopTimeout:    10 * time.Second,
		RedirectOutput: []string{"out", "err"},
		CustomStreams:  []string{"events"},
		Health:         Probe{Kind: ProbeNone},
		HealthInterval: DefaultHealthInterval,
		HealthTimeout:  DefaultHealthTimeout,
		HealthRetries:  DefaultHealthRetries,
		OnUnhealthy:    OnUnhealthyRestart,
	}
	if got := cfg.Processes[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("web =\n%+v\nwant\n%+v", got, want)
	}
	db := NewProcess("db", "postgres", "-D", "/var/lib/postgresql/data")
	db.Line = 35
	if got := cfg.Processes[1]; !reflect.DeepEqual(got, db) {
		t.Errorf("db =\n%+v\nwant the defaults\n%+v", got, db)
	}
}

func TestConfigJSONStable(t *testing.T) {
	cfg, err := load("testdata/full.toml", testUsers())
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/full.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("JSON differs from testdata/full.json:\n%s", got)
	}
	for range 5 {
		again, _ := cfg.JSON()
		if string(again) != string(got) {
			t.Fatal("JSON is not stable from one call to the next")
		}
	}
}

// TestConfigValid checks what valid tables decode to.
func TestConfigValid(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, p Process)
	}{
		{"shell keeps cmd whole", "[process.a]\ncmd = \"echo $HOME && ls\"\nshell = true\n", func(t *testing.T, p Process) {
			if !reflect.DeepEqual(p.Cmd, []string{"/bin/sh", "-c", "echo $HOME && ls"}) || !p.Shell {
				t.Errorf("cmd = %q", p.Cmd)
			}
		}},
		{"string cmd and args are shlex-split", "[process.a]\ncmd = \"prog 'a b' c\"\nargs = \"--x \\\"y z\\\"\"\n", func(t *testing.T, p Process) {
			if !reflect.DeepEqual(p.Cmd, []string{"prog", "a b", "c"}) || !reflect.DeepEqual(p.Args, []string{"--x", "y z"}) {
				t.Errorf("cmd = %q, args = %q", p.Cmd, p.Args)
			}
		}},
		{"uid and gid make one spec", "[process.a]\ncmd = [\"x\"]\nuid = 1000\ngid = \"staff\"\n", func(t *testing.T, p Process) {
			if p.User != "1000:staff" {
				t.Errorf("user = %q", p.User)
			}
		}},
		{"gid alone", "[process.a]\ncmd = [\"x\"]\ngid = 50\n", func(t *testing.T, p Process) {
			if p.User != ":50" {
				t.Errorf("user = %q", p.User)
			}
		}},
		{"uid without passwd entry", "[process.a]\ncmd = [\"x\"]\nuid = 4242\n", func(t *testing.T, p Process) {
			if p.User != "4242" {
				t.Errorf("user = %q", p.User)
			}
		}},
		{"signal number and name", "[process.a]\ncmd = [\"x\"]\nstop_signal = 9\n[process.b]\ncmd = [\"x\"]\nstop_signal = \"sigrtmin+2\"\n", func(t *testing.T, p Process) {
			if p.StopSignal != syscall.SIGKILL {
				t.Errorf("stop_signal = %v", p.StopSignal)
			}
		}},
		{"redirect_output [] is not captured; tty with it is fine", "[process.a]\ncmd = [\"x\"]\nredirect_output = []\ntty = true\n", func(t *testing.T, p Process) {
			if p.RedirectOutput != nil || !p.TTY {
				t.Errorf("redirect_output = %#v", p.RedirectOutput)
			}
		}},
		{"one label", "[process.a]\ncmd = [\"x\"]\nredirect_output = [\"log\"]\n", func(t *testing.T, p Process) {
			if !reflect.DeepEqual(p.RedirectOutput, []string{"log"}) {
				t.Errorf("redirect_output = %#v", p.RedirectOutput)
			}
		}},
		{"stop_timeout defaults to grace", "[settings]\ngrace = \"3s\"\n[process.a]\ncmd = [\"x\"]\n", func(t *testing.T, p Process) {
			if p.StopTimeout != 3*time.Second {
				t.Errorf("stop_timeout = %v", p.StopTimeout)
			}
		}},
		{"dotted keys and an env table", "process.a.cmd = \"x\"\n[process.a.env]\nA = \"1\"\n", func(t *testing.T, p Process) {
			if p.Line != 1 || p.Env["A"] != "1" {
				t.Errorf("line %d, env %v", p.Line, p.Env)
			}
		}},
		{"every probe kind", "[process.a]\ncmd = [\"x\"]\nready = \"file:///run/ready\"\nready_timeout = \"1m30s\"\n", func(t *testing.T, p Process) {
			if p.Ready != (Probe{Kind: "file", Target: "/run/ready"}) || p.ReadyTimeout != 90*time.Second {
				t.Errorf("ready = %+v %v", p.Ready, p.ReadyTimeout)
			}
		}},
		{"oneshot retried on failure", "[process.a]\ncmd = [\"x\"]\noneshot = true\nrestart = \"on-failure\"\nmax_restarts = 3\nrestart_window = \"10s\"\nsuccess_codes = [0, 3]\n", func(t *testing.T, p Process) {
			if !p.Oneshot || p.MaxRestarts != 3 || p.RestartWindow != 10*time.Second || !reflect.DeepEqual(p.SuccessCodes, []int{0, 3}) {
				t.Errorf("%+v", p)
			}
		}},
		{"ids up to 2147483646", "[process.a]\ncmd = [\"x\"]\nuid = 2147483646\ngid = 2147483646\n", func(t *testing.T, p Process) {
			if p.User != "2147483646:2147483646" {
				t.Errorf("user = %q", p.User)
			}
		}},
		{"backoff of 10ms", "[process.a]\ncmd = [\"x\"]\nrestart = \"always\"\nbackoff = \"10ms\"\n", func(t *testing.T, p Process) {
			if p.Backoff != 10*time.Millisecond {
				t.Errorf("backoff = %v", p.Backoff)
			}
		}},
		{"instances up to the ceilings", "[process.a]\ncmd = [\"x\"]\nnumprocesses = 1024\n[process.b]\ncmd = [\"x\"]\nnumprocesses = 1024\n" +
			"[process.c]\ncmd = [\"x\"]\nnumprocesses = 1024\n[process.d]\ncmd = [\"x\"]\nnumprocesses = 1024\n", func(t *testing.T, p Process) {
			if p.NumProcesses != MaxInstances {
				t.Errorf("numprocesses = %d", p.NumProcesses)
			}
		}},
		{"after in a chain", "[process.a]\ncmd = [\"x\"]\nafter = [\"b\"]\n[process.b]\ncmd = [\"x\"]\nafter = [\"c\"]\n[process.c]\ncmd = [\"x\"]\n", func(t *testing.T, p Process) {
			if !reflect.DeepEqual(p.After, []string{"b"}) {
				t.Errorf("after = %q", p.After)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := loadString(t, tt.src)
			if errs != nil {
				t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
			tt.check(t, cfg.Processes[0])
		})
	}
}

// TestConfigErrors checks each kind of problem, with its line.
func TestConfigErrors(t *testing.T) {
	const a = "[process.a]\ncmd = [\"x\"]\n" // lines 1-2, so a key added below is on line 3
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown settings key", "[settings]\ngrace = \"1s\"\noutptu = \"raw\"\n" + a,
			"gaffer.toml:3: settings.outptu: unknown key (did you mean output?)"},
		{"unknown process key", a + "numprocess = 2\n",
			"gaffer.toml:3: process.a.numprocess: unknown key (did you mean numprocesses?)"},
		{"unknown table", a + "[web]\ncmd = \"x\"\n", "gaffer.toml:3: web: unknown table"},
		{"unknown top-level key", "version = 2\n" + a, "gaffer.toml:1: version: unknown key"},
		{"numprocesses wrong type", a + "numprocesses = \"two\"\n",
			`gaffer.toml:3: process.a.numprocesses: want an integer, got a string ("two")`},
		{"numprocesses float", a + "numprocesses = 2.0\n",
			"gaffer.toml:3: process.a.numprocesses: want an integer, got a float (2)"},
		{"numprocesses < 1", a + "numprocesses = 0\n", "gaffer.toml:3: process.a.numprocesses: want at least 1, got 0"},
		{"max_restarts < 0", a + "restart = \"always\"\nmax_restarts = -1\n",
			"gaffer.toml:4: process.a.max_restarts: want 0 (unlimited) or more, got -1"},
		{"date wrong type", a + "cwd = 1979-05-27\n", "gaffer.toml:3: process.a.cwd: want a string, got a date or time"},
		{"bool wrong type", a + "shell = \"yes\"\n", `gaffer.toml:3: process.a.shell: want true or false, got a string ("yes")`},
		{"env not a table", a + "env = [\"A=1\"]\n", "gaffer.toml:3: process.a.env: want a table, got an array"},
		{"env value not a string", a + "env = { PORT = 80 }\n", "gaffer.toml:3: process.a.env.PORT: want a string, got an integer (80)"},
		{"env value in a table", a + "[process.a.env]\nA = \"1\"\nB = true\n", "gaffer.toml:5: process.a.env.B: want a string, got a boolean (true)"},
		{"duration with a space", "[settings]\ngrace = \"10 s\"\n" + a,
			`gaffer.toml:2: settings.grace: bad duration "10 s": want e.g. "10s", "500ms", "1m30s"`},
		{"negative duration", a + "stop_timeout = \"-1s\"\n", `gaffer.toml:3: process.a.stop_timeout: negative duration "-1s"`},
		{"duration as a number", a + "backoff = 5\n",
			`gaffer.toml:3: process.a.backoff: want a duration string such as "10s", got an integer (5)`},
		{"unknown restart", a + "restart = \"on_failure\"\n",
			`gaffer.toml:3: process.a.restart: unknown value "on_failure": want always, on-failure or never (did you mean on-failure?)`},
		{"unknown on_end", a + "on_end = \"exit\"\n", `gaffer.toml:3: process.a.on_end: unknown value "exit": want shutdown or ignore`},
		{"unknown output", "[settings]\noutput = \"xml\"\n" + a, `gaffer.toml:2: settings.output: unknown value "xml": want prefix, json or raw`},
		{"unknown color", "[settings]\ncolor = \"blue\"\n" + a, `gaffer.toml:2: settings.color: unknown value "blue": want auto, always or never`},
		{"success code out of range", a + "success_codes = [0, 256]\n", "gaffer.toml:3: process.a.success_codes[1]: exit code 256 is outside 0-255"},
		{"success code negative", a + "success_codes = [\n  -1,\n]\n", "gaffer.toml:4: process.a.success_codes[0]: exit code -1 is outside 0-255"},
		{"success codes empty", a + "success_codes = []\n", "gaffer.toml:3: process.a.success_codes: want at least one exit code"},
		{"success code as string", a + "success_codes = [\"0\"]\n", `gaffer.toml:3: process.a.success_codes[0]: want an exit code 0-255, got a string ("0")`},
		{"unknown signal", a + "stop_signal = \"SIGFOO\"\n", `gaffer.toml:3: process.a.stop_signal: unknown signal "SIGFOO"`},
		{"signal number out of range", a + "stop_signal = 99\n", "gaffer.toml:3: process.a.stop_signal: signal number 99 out of range 1-64"},
		{"STOP does not stop", a + "stop_signal = \"STOP\"\n", "gaffer.toml:3: process.a.stop_signal: SIGSTOP pauses a process, it does not stop it"},
		{"CHLD does not stop", a + "stop_signal = \"chld\"\n", "gaffer.toml:3: process.a.stop_signal: SIGCHLD does not stop a process: it is ignored by default"},
		{"unknown user", a + "user = \"nobody2\"\n", `gaffer.toml:3: process.a.user: unknown user "nobody2": not in testdata/passwd`},
		{"unknown group", a + "user = \"app:wheel\"\n", `gaffer.toml:3: process.a.user: unknown group "wheel": not in testdata/group`},
		{"unknown gid name", a + "uid = 0\ngid = \"wheel\"\n", `gaffer.toml:3: process.a.uid: unknown group "wheel": not in testdata/group`},
		{"user and uid", a + "user = \"app\"\nuid = 1000\n", "gaffer.toml:4: process.a.uid: give either user or uid/gid, not both"},
		{"negative uid", a + "uid = -1\n", "gaffer.toml:3: process.a.uid: id -1 is out of range 0-2147483646"},
		// 4294967295 is (uid_t)-1: it passed check and failed only at start (setuid: EINVAL).
		{"uid -1 as unsigned", a + "uid = 4294967295\n", "gaffer.toml:3: process.a.uid: id 4294967295 is out of range 0-2147483646"},
		{"uid 2^31-1", a + "uid = 2147483647\n", "gaffer.toml:3: process.a.uid: id 2147483647 is out of range 0-2147483646"},
		{"gid too large", a + "uid = 0\ngid = 4294967295\n", "gaffer.toml:4: process.a.gid: id 4294967295 is out of range 0-2147483646"},
		{"user uid -1 as unsigned", a + "user = \"4294967295\"\n", `gaffer.toml:3: process.a.user: uid 4294967295 is out of range 0-2147483646`},
		{"user uid beyond 32 bits", a + "user = \"99999999999\"\n", `gaffer.toml:3: process.a.user: uid 99999999999 is out of range 0-2147483646`},
		{"user gid -1 as unsigned", a + "user = \"app:4294967295\"\n", `gaffer.toml:3: process.a.user: gid 4294967295 is out of range 0-2147483646`},
		{"string uid too large", a + "uid = \"2147483647\"\n", `gaffer.toml:3: process.a.uid: uid 2147483647 is out of range 0-2147483646`},
		{"socket_group gid too large", "[settings]\nsocket_group = \"4294967295\"\n" + a, `gaffer.toml:2: settings.socket_group: gid 4294967295 is out of range 0-2147483646`},
		{"numprocesses over the ceiling", a + "numprocesses = 1000000\n",
			"gaffer.toml:3: process.a.numprocesses: 1000000 is more than 1024 instances of one process"},
		{"numprocesses over the ceiling by one", a + "numprocesses = 1025\n",
			"gaffer.toml:3: process.a.numprocesses: 1025 is more than 1024 instances of one process"},
		{"instances over the file's ceiling", a + "numprocesses = 1024\n[process.b]\ncmd = \"x\"\nnumprocesses = 1024\n[process.c]\ncmd = \"x\"\nnumprocesses = 1024\n" +
			"[process.d]\ncmd = \"x\"\nnumprocesses = 1024\n[process.e]\ncmd = \"x\"\n",
			"gaffer.toml:13: process.e: 4097 instances in all, more than 4096 in one file"},
		{"instances over the file's ceiling at numprocesses", "[process.a]\ncmd = \"x\"\nnumprocesses = 1024\n[process.b]\ncmd = \"x\"\nnumprocesses = 1024\n[process.c]\ncmd = \"x\"\nnumprocesses = 1024\n" +
			"[process.d]\ncmd = \"x\"\nnumprocesses = 1000\n[process.e]\ncmd = \"x\"\nnumprocesses = 30\n[process.f]\ncmd = \"x\"\nnumprocesses = 1000\n",
			"gaffer.toml:15: process.e.numprocesses: 4102 instances in all, more than 4096 in one file"},
		{"zero backoff", a + "restart = \"always\"\nbackoff = \"0s\"\n", `gaffer.toml:4: process.a.backoff: backoff 0s is shorter than 10ms`},
		{"backoff under 10ms", a + "restart = \"on-failure\"\nbackoff = \"9ms\"\n", `gaffer.toml:4: process.a.backoff: backoff 9ms is shorter than 10ms`},
		{"after unknown", a + "after = [\"db\"]\n", `gaffer.toml:3: process.a.after[0]: no process named "db"`},
		{"after typo", a + "after = [\"b\"]\n[process.db]\ncmd = \"x\"\n", `gaffer.toml:3: process.a.after[0]: no process named "b"`},
		{"after listed twice", a + "after = [\"b\", \"b\"]\n[process.b]\ncmd = \"x\"\n", `gaffer.toml:3: process.a.after[1]: "b" is listed twice`},
		{"after not an array", a + "after = \"b\"\n[process.b]\ncmd = \"x\"\n", `gaffer.toml:3: process.a.after: want an array of strings, got a string ("b")`},
		{"self cycle", a + "after = [\"a\"]\n", "gaffer.toml:3: process.a.after: dependency cycle: a -> a"},
		{"cycle", a + "after = [\"b\"]\n[process.b]\ncmd = \"x\"\nafter = [\"a\"]\n", "gaffer.toml:3: process.a.after: dependency cycle: a -> b -> a"},
		{"cycle behind a root", "[process.root]\ncmd = \"x\"\nafter = [\"a\"]\n[process.a]\ncmd = \"x\"\nafter = [\"b\"]\n[process.b]\ncmd = \"x\"\nafter = [\"a\"]\n",
			"gaffer.toml:6: process.a.after: dependency cycle: a -> b -> a"},
		{"three labels", a + "redirect_output = [\"a\", \"b\", \"c\"]\n", "gaffer.toml:3: process.a.redirect_output: at most 2 labels (stdout's and stderr's), got 3"},
		{"empty label", a + "redirect_output = [\"out\", \"\"]\n", "gaffer.toml:3: process.a.redirect_output[1]: empty label"},
		{"duplicate label", a + "redirect_output = [\"out\", \"out\"]\n", `gaffer.toml:3: process.a.redirect_output[1]: label "out" given twice`},
		{"bad stream label", a + "custom_streams = [\"a.b\"]\n", `gaffer.toml:3: process.a.custom_streams[0]: bad label "a.b": use letters, digits, _ and -`},
		{"duplicate stream", a + "custom_streams = [\"ev\", \"ev\"]\n", `gaffer.toml:3: process.a.custom_streams[1]: label "ev" given twice`},
		{"tcp probe without port", a + "ready = \"tcp://db\"\n", `gaffer.toml:3: process.a.ready: tcp probe "tcp://db": want tcp://HOST:PORT`},
		{"tcp probe bad port", a + "ready = \"tcp://db:99999\"\n", `gaffer.toml:3: process.a.ready: tcp probe "tcp://db:99999": port "99999": want 1-65535`},
		{"http probe without host", a + "ready = \"http:///health\"\n", `gaffer.toml:3: process.a.ready: http probe "http:///health": no host`},
		{"relative file probe", a + "ready = \"file://run/ready\"\n", `gaffer.toml:3: process.a.ready: file probe "file://run/ready": want file:///ABSOLUTE/PATH`},
		{"empty exec probe", a + "ready = \"exec: \"\n", `gaffer.toml:3: process.a.ready: probe "exec: ": no command after exec`},
		{"unknown probe", a + "ready = \"ftp://x\"\n", `gaffer.toml:3: process.a.ready: probe "ftp://x": unknown scheme "ftp": want tcp, http, https, file, exec:, log:, notify or none`},
		{"probe without scheme", a + "ready = \"localhost:80\"\n", `gaffer.toml:3: process.a.ready: bad probe "localhost:80": want tcp://HOST:PORT, http(s)://URL, file:///PATH, exec:CMD, log:REGEX, notify or none`},
		{"missing cmd", "[process.a]\nshell = true\n", "gaffer.toml:1: process.a: missing cmd"},
		{"empty cmd", "[process.a]\ncmd = \"  \"\n", "gaffer.toml:2: process.a.cmd: empty command"},
		{"empty cmd array", "[process.a]\ncmd = []\n", "gaffer.toml:2: process.a.cmd: empty command"},
		{"empty program", "[process.a]\ncmd = [\"\", \"x\"]\n", "gaffer.toml:2: process.a.cmd: empty program name"},
		{"cmd wrong type", "[process.a]\ncmd = 1\n", "gaffer.toml:2: process.a.cmd: want a string or an array of strings, got an integer (1)"},
		{"cmd element wrong type", "[process.a]\ncmd = [\n  \"x\",\n  2,\n]\n", "gaffer.toml:4: process.a.cmd[1]: want a string, got an integer (2)"},
		{"unclosed quote", "[process.a]\ncmd = \"echo 'hi\"\n", `gaffer.toml:2: process.a.cmd: cannot split "echo 'hi" into words: EOF found when expecting closing quote`},
		{"shell with array cmd", "[process.a]\ncmd = [\"x\"]\nshell = true\n", "gaffer.toml:2: process.a.cmd: want a string (the script for /bin/sh -c, as shell = true), got an array"},
		{"shell with args", "[process.a]\ncmd = \"x\"\nshell = true\nargs = [\"y\"]\n", "gaffer.toml:4: process.a.args: args with shell = true: write the arguments into the cmd string"},
		{"bad process name", "[process.\"web.1\"]\ncmd = \"x\"\n", `gaffer.toml:1: process."web.1": bad process name: use letters, digits, _ and - (a dot is reserved for instance names such as web.2)`},
		{"reserved process name", "[process.gaffer]\ncmd = \"x\"\n", `gaffer.toml:1: process.gaffer: process name "gaffer" is reserved for gaffer's own output lines`},
		{"process not a table", "process.a = \"x\"\n", `gaffer.toml:1: process.a: want a table, got a string ("x")`},
		{"array of tables", "[[process]]\ncmd = \"x\"\n", "gaffer.toml:1: process: want a table, got an array"},
		{"no processes", "[settings]\ngrace = \"1s\"\n", "gaffer.toml: no processes: add a [process.NAME] table"},
		{"empty process table", "[process]\n", "gaffer.toml:1: process: no processes: add a [process.NAME] table"},
		{"detach with oneshot", a + "oneshot = true\ndetach = true\n", "gaffer.toml:4: process.a.detach: detach with oneshot: a oneshot is waited for, a detached process is not"},
		{"detach with restart", a + "detach = true\nrestart = \"always\"\n", `gaffer.toml:4: process.a.restart: restart = "always" with detach: a detached process is not supervised, so never restarted`},
		{"oneshot always", a + "oneshot = true\nrestart = \"always\"\n", `gaffer.toml:4: process.a.restart: restart = "always" with oneshot: a oneshot runs to completion (use "on-failure" to retry it)`},
		{"oneshot with probe", a + "oneshot = true\nready = \"tcp://x:1\"\n", "gaffer.toml:4: process.a.ready: ready with oneshot: a oneshot is ready when it exits successfully"},
		{"max_restarts without restart", a + "max_restarts = 3\n", `gaffer.toml:3: process.a.max_restarts: max_restarts with restart = "never": nothing is restarted`},
		{"backoff_max below backoff", a + "backoff = \"5s\"\nbackoff_max = \"2s\"\n", "gaffer.toml:4: process.a.backoff_max: backoff_max 2s is shorter than backoff 5s"},
		{"backoff above default max", a + "backoff = \"1m\"\n", "gaffer.toml:3: process.a.backoff: backoff_max 30s is shorter than backoff 60s"},
		{"zero restart_window", a + "restart_window = \"0s\"\n", "gaffer.toml:3: process.a.restart_window: restart_window must be longer than 0s"},
		{"zero ready_timeout", a + "ready_timeout = \"0s\"\n", "gaffer.toml:3: process.a.ready_timeout: ready_timeout must be longer than 0s"},
		{"empty cwd", a + "cwd = \"\"\n", "gaffer.toml:3: process.a.cwd: empty directory"},
		{"empty user", a + "user = \"\"\n", "gaffer.toml:3: process.a.user: empty user"},
		{"syntax error", "[process.a]\ncmd = \"x\"\nrestart = on-failure\n", "gaffer.toml:3: invalid TOML: incomplete number (a string needs quotes: \"on-failure\")"},
		{"duplicate key", "[process.a]\ncmd = \"x\"\ncmd = \"y\"\n", "gaffer.toml:3: invalid TOML: key cmd is already defined"},
		{"table after dotted keys made it", "process.a.cmd = \"x\"\n[process.a]\nshell = true\n", "gaffer.toml:2: invalid TOML: table a already exists"},
		{"duplicate key in an inline table", "[process.a]\ncmd = \"x\"\nenv = { A = \"1\", A = \"2\" }\n", "gaffer.toml:3: invalid TOML: key A is already defined"},
		{"duplicate table", "[process.a]\ncmd = \"x\"\n[process.a]\ncmd = \"y\"\n", "gaffer.toml:3: invalid TOML: table a already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := loadString(t, tt.src)
			if cfg != nil {
				t.Fatalf("loaded without error, want %q", tt.want)
			}
			if len(errs) != 1 || errs[0] != tt.want {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), tt.want)
			}
		})
	}
}

// TestConfigAllErrors checks that every problem of a file is reported, in line order.
func TestConfigAllErrors(t *testing.T) {
	_, err := load("testdata/errors.toml", testUsers())
	got := errorLines(t, err)
	want := []string{
		`testdata/errors.toml:3: settings.grace: bad duration "10 s": want e.g. "10s", "500ms", "1m30s"`,
		`testdata/errors.toml:4: settings.outptu: unknown key (did you mean output?)`,
		`testdata/errors.toml:5: settings.color: unknown value "blue": want auto, always or never`,
		`testdata/errors.toml:9: process.a.numprocesses: want an integer, got a string ("two")`,
		`testdata/errors.toml:10: process.a.after: dependency cycle: a -> b -> c -> a`,
		`testdata/errors.toml:11: process.a.stop_signal: SIGWINCH does not stop a process: it is ignored by default`,
		`testdata/errors.toml:12: process.a.user: unknown user "nosuchuser": not in testdata/passwd`,
		`testdata/errors.toml:18: process.b.after[1]: no process named "zz"`,
		`testdata/errors.toml:20: process.b.backoff: negative duration "-1s"`,
		`testdata/errors.toml:21: process.b.ready: tcp probe "tcp://host": want tcp://HOST:PORT`,
		`testdata/errors.toml:22: process.b.redirect_output: at most 2 labels (stdout's and stderr's), got 3`,
		`testdata/errors.toml:23: process.b.custom_streams[1]: bad label "not ok": use letters, digits, _ and -`,
		`testdata/errors.toml:23: process.b.custom_streams[2]: label "ok" given twice`,
		`testdata/errors.toml:26: process.c.cmd: empty command`,
		`testdata/errors.toml:28: process.c.success_codes[1]: exit code 256 is outside 0-255`,
		`testdata/errors.toml:29: process.c.detach: detach with oneshot: a oneshot is waited for, a detached process is not`,
		`testdata/errors.toml:32: process."web.1": bad process name: use letters, digits, _ and - (a dot is reserved for instance names such as web.2)`,
		`testdata/errors.toml:35: other: unknown table`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfigMissingFile(t *testing.T) {
	_, err := Load("testdata/nonexistent.toml")
	if got, want := err.Error(), "testdata/nonexistent.toml: cannot read: no such file or directory"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) is false for %v", err)
	}
}

func TestConfigProcfile(t *testing.T) {
	cfg, err := load("testdata/procfile/Procfile", testUsers())
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PORT":      "5000",
		"RAILS_ENV": "production",
		"GREETING":  "hello \"world\"\n",
		"LITERAL":   "no $expansion here",
		"EMPTY":     "",
		"TRAILING":  "value",
	}
	web := NewProcess("web", "/bin/sh", "-c", "bundle exec puma -p $PORT")
	web.Line, web.Shell, web.Env = 2, true, env
	worker := NewProcess("worker", "/bin/sh", "-c", "./worker --queue=default && echo done")
	worker.Line, worker.Shell, worker.Env = 4, true, env
	if want := []Process{web, worker}; !reflect.DeepEqual(cfg.Processes, want) {
		t.Errorf("got\n%+v\nwant\n%+v", cfg.Processes, want)
	}
	if !reflect.DeepEqual(cfg.Settings, DefaultSettings()) || cfg.File != "testdata/procfile/Procfile" {
		t.Errorf("settings %+v file %q", cfg.Settings, cfg.File)
	}
	// Each process has its own map: changing one must not change the other.
	cfg.Processes[0].Env["PORT"] = "1"
	if cfg.Processes[1].Env["PORT"] != "5000" {
		t.Error("processes share one env map")
	}
}

func TestConfigProcfileErrors(t *testing.T) {
	_, err := load("testdata/procfile-bad/Procfile", testUsers())
	got := errorLines(t, err)
	want := []string{
		`testdata/procfile-bad/Procfile:2: malformed line "this line has no colon": want NAME: COMMAND`,
		`testdata/procfile-bad/Procfile:3: process "web" is already defined on line 1`,
		`testdata/procfile-bad/Procfile:4: bad process name "bad.name": use letters, digits, _ and - (a dot is reserved for instance names such as web.2)`,
		`testdata/procfile-bad/Procfile:5: process "empty": empty command`,
		`testdata/procfile-bad/Procfile:6: process name "gaffer" is reserved for gaffer's own output lines`,
		`testdata/procfile-bad/.env:2: malformed line "NOEQUALS": want K=V`,
		`testdata/procfile-bad/.env:3: bad variable name "1BAD": use letters, digits and _, not starting with a digit`,
		`testdata/procfile-bad/.env:4: Q: unterminated " quote`,
		`testdata/procfile-bad/.env:5: S: unexpected "trailing" after the closing quote`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestConfigProcfileByContent: a file not named Procfile that is not TOML but reads as one.
func TestConfigProcfileByContent(t *testing.T) {
	cfg, err := load("testdata/procfile-detect/procs", testUsers())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Processes) != 2 || cfg.Processes[0].Name != "web" || cfg.Processes[1].Cmd[2] != "./clock" || !cfg.Processes[0].Shell {
		t.Errorf("got %+v", cfg.Processes)
	}
	// A TOML file with one bad line is still TOML, and its error is a TOML error.
	_, errs := loadString(t, "[process.a]\ncmd = \"x\"\nweb: y\n")
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "gaffer.toml:3: invalid TOML:") {
		t.Errorf("got %q", errs)
	}
}

func TestConfigDotenvLine(t *testing.T) {
	tests := []struct {
		line, key, value, err string
	}{
		{line: "A=1", key: "A", value: "1"},
		{line: "export A=1", key: "A", value: "1"},
		{line: "export\tA = 1", key: "A", value: "1"},
		{line: "exported=1", key: "exported", value: "1"},
		{line: "A=", key: "A", value: ""},
		{line: "A=a=b", key: "A", value: "a=b"},
		{line: `A="x # y"`, key: "A", value: "x # y"},
		{line: `A="a\tb\\c" # note`, key: "A", value: "a\tb\\c"},
		{line: `A='a\nb'`, key: "A", value: `a\nb`},
		{line: "A=x#y", key: "A", value: "x#y"},
		{line: "A=x #y", key: "A", value: "x"},
		{line: "A", err: `malformed line "A": want K=V`},
		{line: "A-B=1", err: `bad variable name "A-B": use letters, digits and _, not starting with a digit`},
		{line: `A="x`, err: `A: unterminated " quote`},
		{line: `A='x'y`, err: `A: unexpected "y" after the closing quote`},
	}
	for _, tt := range tests {
		k, v, err := dotenvLine(tt.line)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: err = %v, want %s", tt.line, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.line, err)
		case k != tt.key || v != tt.value:
			t.Errorf("%s: got %q=%q, want %q=%q", tt.line, k, v, tt.key, tt.value)
		}
	}
}

func TestConfigFind(t *testing.T) {
	write := func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	both, onlyProcfile, none := filepath.Join(dir, "both"), filepath.Join(dir, "procfile"), filepath.Join(dir, "none")
	for _, d := range []string{both, onlyProcfile, none} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(both, "gaffer.toml"))
	write(t, filepath.Join(both, "Procfile"))
	write(t, filepath.Join(onlyProcfile, "Procfile"))
	explicit := filepath.Join(dir, "my.toml")
	write(t, explicit)
	fromEnv := filepath.Join(dir, "env.toml")
	write(t, fromEnv)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GAFFER_CONFIG" {
				return v
			}
			return ""
		}
	}
	second := filepath.Join(dir, "second.toml")
	write(t, second)
	tests := []struct {
		name     string
		explicit []string
		env      string
		dir      string
		want     []string
		err      string
	}{
		{name: "explicit wins", explicit: []string{explicit}, env: fromEnv, dir: both, want: []string{explicit}},
		{name: "explicit, several, a directory among them", explicit: []string{explicit, both, second}, env: fromEnv, dir: both, want: []string{explicit, both, second}},
		{name: "then GAFFER_CONFIG", env: fromEnv, dir: both, want: []string{fromEnv}},
		{name: "GAFFER_CONFIG is a colon-separated list", env: fromEnv + ":" + both + "::" + second + ":", dir: both, want: []string{fromEnv, both, second}},
		{name: "then gaffer.toml", dir: both, want: []string{filepath.Join(both, "gaffer.toml")}},
		{name: "then Procfile", dir: onlyProcfile, want: []string{filepath.Join(onlyProcfile, "Procfile")}},
		{name: "nothing", dir: none, err: "no config file: give -c FILE or $GAFFER_CONFIG, or put gaffer.toml or Procfile in " + none},
		{name: "GAFFER_CONFIG of colons only is none", env: ":", dir: none, err: "no config file: give -c FILE or $GAFFER_CONFIG, or put gaffer.toml or Procfile in " + none},
		{name: "explicit missing, no fallback", explicit: []string{explicit, filepath.Join(dir, "nope")}, dir: both, err: "config file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{name: "env missing, no fallback", env: fromEnv + ":" + filepath.Join(dir, "nope"), dir: both, err: "config file " + filepath.Join(dir, "nope") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Find(tt.explicit, env(tt.env), tt.dir)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConfigSocketSettings(t *testing.T) {
	const a = "[process.a]\ncmd = [\"x\"]\n"
	cfg, errs := loadString(t, "[settings]\nsocket = \"/tmp/g.sock\"\nsocket_mode = \"0660\"\nsocket_group = \"staff\"\nsocket_allow_uids = [1000, 1001]\nlog_bytes = 4096\n"+a)
	if errs != nil {
		t.Fatalf("errors: %q", errs)
	}
	s := cfg.Settings
	if s.Socket != "/tmp/g.sock" || !s.SocketSet || s.SocketMode != 0o660 || s.SocketGID != 50 || !reflect.DeepEqual(s.SocketAllowUIDs, []int{1000, 1001}) || s.LogBytes != 4096 {
		t.Fatalf("settings %+v", s)
	}
	cfg, _ = loadString(t, "[settings]\nsocket = \"\"\nsocket_mode = 0o640\n"+a)
	if cfg.Settings.Socket != "" || !cfg.Settings.SocketSet || cfg.Settings.SocketMode != 0o640 {
		t.Fatalf("an explicit empty socket turns it off: %+v", cfg.Settings)
	}
	cfg, _ = loadString(t, a)
	if cfg.Settings.SocketSet || cfg.Settings.SocketMode != 0o600 || cfg.Settings.SocketGID != -1 || cfg.Settings.LogBytes != 256<<10 {
		t.Fatalf("defaults: %+v", cfg.Settings)
	}
	for src, want := range map[string]string{
		"socket_mode = \"0999\"\n":      "gaffer.toml:2: settings.socket_mode: want a file mode",
		"socket_group = \"nogroupx\"\n": "gaffer.toml:2: settings.socket_group: unknown group \"nogroupx\"",
		"socket_allow_uids = [-1]\n":    "gaffer.toml:2: settings.socket_allow_uids[0]: uid -1 is negative",
		"log_bytes = 10\n":              "gaffer.toml:2: settings.log_bytes: log_bytes 10: want at least 1024",
		"socket = 5\n":                  "gaffer.toml:2: settings.socket: want a string",
	} {
		_, errs := loadString(t, "[settings]\n"+src+a)
		if len(errs) != 1 || !strings.HasPrefix(errs[0], want) {
			t.Errorf("%q: errors %q, want one starting %q", src, errs, want)
		}
	}
}

func TestConfigProcfileInstanceCeiling(t *testing.T) {
	var b strings.Builder
	for i := range MaxTotalInstances + 2 {
		fmt.Fprintf(&b, "p%d: true\n", i)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := load(path, testUsers())
	want := fmt.Sprintf(`%s:%d: process "p%d": more than %d processes in one file`, path, MaxTotalInstances+1, MaxTotalInstances, MaxTotalInstances)
	if got := errorLines(t, err); len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Exactly at the ceiling is fine.
	lines := strings.SplitAfter(b.String(), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:MaxTotalInstances], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err := load(path, testUsers()); err != nil || len(cfg.Processes) != MaxTotalInstances {
		t.Errorf("%d processes: %v", MaxTotalInstances, err)
	}
}
