package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFiles creates name -> content files in a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkJSON is the part of gaffer check's output the tests look at.
type checkJSON struct {
	File      string
	Settings  map[string]any
	Processes []map[string]any
}

func parseCheck(t *testing.T, stdout string) checkJSON {
	t.Helper()
	var out checkJSON
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	return out
}

func TestCheckValidPrintsNormalizedJSON(t *testing.T) {
	dir := writeFiles(t, map[string]string{"app.toml": `
[settings]
output = "json"

[process.db]
cmd = "postgres -D '/var/lib/my data'"
ready = "tcp://127.0.0.1:5432"
user = "root"

[process.web]
cmd = "exec nginx && true"
shell = true
after = ["db"]
stop_signal = "SIGQUIT"
`})
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check", "-c", "app.toml")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	out := parseCheck(t, stdout)
	if out.File != "app.toml" || out.Settings["output"] != "json" || out.Settings["grace"] != "10s" || len(out.Processes) != 2 {
		t.Fatalf("got %+v", out)
	}
	db, web := out.Processes[0], out.Processes[1]
	if db["name"] != "db" || !reflect.DeepEqual(db["cmd"], []any{"postgres", "-D", "/var/lib/my data"}) || db["user"] != "root" || db["restart"] != "never" {
		t.Errorf("db = %v", db)
	}
	if !reflect.DeepEqual(web["cmd"], []any{"/bin/sh", "-c", "exec nginx && true"}) || web["stop_signal"] != "QUIT" || web["ready"] != "none" {
		t.Errorf("web = %v", web)
	}
	if !strings.Contains(stdout, `"exec nginx && true"`) {
		t.Errorf("& is escaped in the output:\n%s", stdout)
	}
}

func TestCheckReportsEveryErrorWithLine(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gaffer.toml": `[settings]
grace = "10 s"

[process.web]
cmd = "nginx"
numprocesses = "two"
after = ["db"]
stop_signal = "TERMINATE"
user = "no-such-user-here"
frobnicate = true
`})
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check")
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	want := []string{
		`gaffer.toml:2: settings.grace: bad duration "10 s": want e.g. "10s", "500ms", "1m30s"`,
		`gaffer.toml:6: process.web.numprocesses: want an integer, got a string ("two")`,
		`gaffer.toml:7: process.web.after[0]: no process named "db"`,
		`gaffer.toml:8: process.web.stop_signal: unknown signal "TERMINATE"`,
		`gaffer.toml:9: process.web.user: unknown user "no-such-user-here": not in /etc/passwd`,
		`gaffer.toml:10: process.web.frobnicate: unknown key`,
	}
	if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
	}
}

func TestCheckCycleAndSyntaxError(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cycle.toml":  "[process.a]\ncmd = \"a\"\nafter = [\"b\"]\n\n[process.b]\ncmd = \"b\"\nafter = [\"a\"]\n",
		"syntax.toml": "[process.a]\ncmd = \"a\"\nrestart = always\n",
	})
	for file, want := range map[string]string{
		"cycle.toml":  "cycle.toml:3: process.a.after: dependency cycle: a -> b -> a\n",
		"syntax.toml": "syntax.toml:3: invalid TOML: incomplete number (a string needs quotes: \"always\")\n",
	} {
		code, _, stderr := runGaffer(t, startOpts{dir: dir}, "check", "--config", file)
		if code != 2 || stderr != want {
			t.Errorf("%s: exit %d, stderr %q; want 2, %q", file, code, stderr, want)
		}
	}
}

func TestCheckFindsConfig(t *testing.T) {
	toml := "[process.fromtoml]\ncmd = \"x\"\n"
	t.Run("GAFFER_CONFIG", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"gaffer.toml": toml, "other.toml": "[process.fromenv]\ncmd = \"x\"\n"})
		code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG=other.toml"}}, "check")
		if code != 0 || parseCheck(t, stdout).Processes[0]["name"] != "fromenv" {
			t.Errorf("exit %d, stdout %s, stderr %s", code, stdout, stderr)
		}
	})
	t.Run("gaffer.toml before Procfile", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"gaffer.toml": toml, "Procfile": "fromprocfile: x\n"})
		code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG="}}, "check")
		if code != 0 || parseCheck(t, stdout).File != "gaffer.toml" {
			t.Errorf("exit %d, stdout %s, stderr %s", code, stdout, stderr)
		}
	})
	t.Run("Procfile and .env", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"Procfile": "# processes\nweb: python3 -m http.server $PORT\nworker: ./work\n",
			".env":     "PORT=8000\nexport MODE='prod'\n",
		})
		code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG="}}, "check")
		if code != 0 {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		out := parseCheck(t, stdout)
		if out.File != "Procfile" || len(out.Processes) != 2 {
			t.Fatalf("got %+v", out)
		}
		web := out.Processes[0]
		if !reflect.DeepEqual(web["cmd"], []any{"/bin/sh", "-c", "python3 -m http.server $PORT"}) || web["shell"] != true ||
			!reflect.DeepEqual(web["env"], map[string]any{"PORT": "8000", "MODE": "prod"}) {
			t.Errorf("web = %v", web)
		}
	})
	t.Run("Procfile errors", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"Procfile": "web: ./web\nweb ./oops\n", ".env": "A=1\nB\n"})
		code, _, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG="}}, "check")
		want := "Procfile:2: malformed line \"web ./oops\": want NAME: COMMAND\n.env:2: malformed line \"B\": want K=V\n"
		if code != 2 || stderr != want {
			t.Errorf("exit %d, stderr %q; want 2, %q", code, stderr, want)
		}
	})
}

func TestCheckMissingConfigIsOneLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "-c", "nope.toml"}, "gaffer: config file nope.toml: no such file or directory\n"},
		{[]string{"check"}, "gaffer: no config file: give -c FILE or $GAFFER_CONFIG, or put gaffer.toml or Procfile in .\n"},
	} {
		code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG="}}, tc.args...)
		if code != 2 || stdout != "" || stderr != tc.want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	code, _, stderr := runGaffer(t, startOpts{dir: dir}, "check", "extra")
	if code != 2 || !strings.Contains(stderr, "check takes no arguments") {
		t.Errorf("extra argument: exit %d, stderr %q", code, stderr)
	}
}

// TestCheckRefusesLimits: each of these but the empty user passed gaffer check, and gaffer up then
// failed at start (an id setuid refuses), forked a million children, or restarted a failing
// process in a loop.
func TestCheckRefusesLimits(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gaffer.toml": `[process.a]
cmd = "true"
user = "4294967295"

[process.b]
cmd = "true"
uid = 4294967295

[process.c]
cmd = "true"
numprocesses = 1000000

[process.d]
cmd = "false"
restart = "always"
backoff = "0s"

[process.e]
cmd = "true"
uid = 0
gid = 2147483647

[process.f]
cmd = "true"
user = ""
`})
	want := []string{
		`gaffer.toml:3: process.a.user: uid 4294967295 is out of range 0-2147483646`,
		`gaffer.toml:7: process.b.uid: id 4294967295 is out of range 0-2147483646`,
		`gaffer.toml:11: process.c.numprocesses: 1000000 is more than 1024 instances of one process`,
		`gaffer.toml:16: process.d.backoff: backoff 0s is shorter than 10ms`,
		`gaffer.toml:21: process.e.gid: id 2147483647 is out of range 0-2147483646`,
		`gaffer.toml:25: process.f.user: empty user`, // never gaffer's own (root)
	}
	for _, cmd := range []string{"check", "up"} {
		code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG="}}, cmd)
		stderr = strings.ReplaceAll(stderr, dir+"/", "") // up names the file by its absolute path
		if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); code != 2 || stdout != "" || !reflect.DeepEqual(got, want) {
			t.Errorf("gaffer %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and:\n%s", cmd, code, stdout, stderr, strings.Join(want, "\n"))
		}
	}
}

// TestCheckRefusesTooManyInstances: the sum of numprocesses over the file has a ceiling too.
func TestCheckRefusesTooManyInstances(t *testing.T) {
	var b strings.Builder
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		fmt.Fprintf(&b, "[process.%s]\ncmd = \"true\"\nnumprocesses = 1000\n", name)
	}
	dir := writeFiles(t, map[string]string{"gaffer.toml": b.String()})
	want := "gaffer.toml:15: process.e.numprocesses: 5000 instances in all, more than 4096 in one file\n"
	for _, cmd := range []string{"check", "up"} {
		code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_CONFIG="}}, cmd)
		stderr = strings.ReplaceAll(stderr, dir+"/", "")
		if code != 2 || stdout != "" || stderr != want {
			t.Errorf("gaffer %s: exit %d, stdout %q, stderr %q; want 2 and %q", cmd, code, stdout, stderr, want)
		}
	}
}

// TestCheckHealthAndSchedule: the keys of liveness, schedules, drain and reload in check's JSON,
// and their mistakes at their lines.
func TestCheckHealthAndSchedule(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"ok.toml": `[settings]
drain = "5s"
reload_signal = "SIGHUP"

[process.web]
cmd = "web"
ready = "log:^listening on :[0-9]+$"
health = "http://127.0.0.1:8080/healthz"
health_retries = 2
on_unhealthy = "shutdown"

[process.backup]
cmd = "backup"
oneshot = true
schedule = "0 3 * * 1-7"
`,
		"bad.toml": `[settings]
reload_signal = "TERM"

[process.web]
cmd = "web"
ready = "log:(("
health = "notify"

[process.backup]
cmd = "backup"
schedule = "@every 0s"
health_interval = "1s"
`,
	})
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check", "-c", "ok.toml")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	out := parseCheck(t, stdout)
	web, backup := out.Processes[0], out.Processes[1]
	if out.Settings["drain"] != "5s" || out.Settings["reload_signal"] != "HUP" {
		t.Errorf("settings %v", out.Settings)
	}
	if web["ready"] != "log:^listening on :[0-9]+$" || web["health"] != "http://127.0.0.1:8080/healthz" || web["health_interval"] != "10s" ||
		web["health_retries"] != 2.0 || web["on_unhealthy"] != "shutdown" || web["schedule"] != nil {
		t.Errorf("web %v", web)
	}
	if backup["schedule"] != "0 3 * * 1-7" || backup["on_end"] != "ignore" || backup["run_at_start"] != false || backup["health"] != "none" || backup["health_interval"] != nil {
		t.Errorf("backup %v", backup)
	}
	code, _, stderr = runGaffer(t, startOpts{dir: dir}, "check", "-c", "bad.toml")
	want := "bad.toml:2: settings.reload_signal: SIGTERM stops gaffer: pick another signal, such as HUP or USR1\n" +
		"bad.toml:6: process.web.ready: log probe \"log:((\": error parsing regexp: missing closing ): `((`\n" +
		"bad.toml:7: process.web.health: notify is for ready only: for liveness over sd_notify use watchdog\n" +
		"bad.toml:11: process.backup.schedule: schedule \"@every 0s\": @every wants a duration of at least 1s\n" +
		"bad.toml:12: process.backup.health_interval: health_interval without health\n"
	if code != 2 || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
}
