package tests

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEnvExpandCheck: ${VAR}, ${VAR:-default} and $$ in values are replaced from gaffer's own
// environment at load time, in arrays, env tables and settings alike; args keep their own
// expansion at start.
func TestEnvExpandCheck(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gaffer.toml": `[settings]
grace = "${GRACE:-3s}"

[process.web]
cmd = ["serve", "--root", "${ROOT}", "--port=${PORT:-80}"]
args = ["$HOME", "$${HOME}", "${ROOT}"]
env = { URL = "http://${HOST:-localhost}:${PORT:-80}", PRICE = "5$$" }
`})
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir, env: []string{"ROOT=/srv", "PORT=8080", "GRACE="}}, "check")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	out := parseCheck(t, stdout)
	web := out.Processes[0]
	if got := web["cmd"]; !slices.Equal(strs(got), []string{"serve", "--root", "/srv", "--port=8080"}) {
		t.Errorf("cmd %v", got)
	}
	// args are left as written: they are expanded at start from the process's environment.
	if got := web["args"]; !slices.Equal(strs(got), []string{"$HOME", "$${HOME}", "${ROOT}"}) {
		t.Errorf("args %v", got)
	}
	env, _ := web["env"].(map[string]any)
	if env["URL"] != "http://localhost:8080" || env["PRICE"] != "5$" || out.Settings["grace"] != "3s" {
		t.Errorf("env %v, grace %v", env, out.Settings["grace"])
	}
}

func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, len(a))
	for i, e := range a {
		out[i], _ = e.(string)
	}
	return out
}

// TestEnvExpandErrors: every value that cannot be expanded is an error at its line, exit 2.
func TestEnvExpandErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gaffer.toml": `[process.web]
cmd = "serve ${DB_URL:?set DB_URL to the database}"
args = ["${MISSING}"]
cwd = "${ROOT"
`})
	// args are not expanded at load: ${MISSING} there is the process's variable at start.
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check")
	want := "gaffer.toml:2: process.web.cmd: DB_URL: set DB_URL to the database\n" +
		"gaffer.toml:4: process.web.cwd: \"${\" without a closing \"}\"\n"
	if code != 2 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, stdout, stderr, want)
	}
	g, upDir := startUp(t, false, map[string]string{"gaffer.toml": "[process.web]\ncmd = \"touch ${NOPE}\"\n"})
	lines, code := collect(t, g, 20*time.Second)
	// up names its files by their absolute path: it moves to / before it runs anything.
	if code != 2 || len(lines) != 0 || g.stderr.String() != upDir+"/gaffer.toml:2: process.web.cmd: NOPE is not set (${NOPE:-default} gives a default)\n" {
		t.Errorf("up: exit %d, stdout %q, stderr %q", code, lines, g.stderr.String())
	}
}

// TestEnvExpandUp: load-time ${...} and start-time $VAR side by side in what the processes run;
// args expand at start, from the process's environment (gaffer's, with its env on top).
func TestEnvExpandUp(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gaffer.toml": `[process.script]
cmd = ["sh", "-c", "echo load=${WHO} default=${NOPE:-dflt} start=$FOO deferred=$${FOO} dollar=$$"]
env = { FOO = "from-env" }
oneshot = true

[process.args]
cmd = "echo"
args = ["${WHO}", "$FOO", "${FOO}"]
env = { FOO = "from-env" }
oneshot = true
`})
	g := startGaffer(t, startOpts{dir: dir, env: []string{"WHO=world", "FOO=gaffers-own"}}, "up")
	lines, code := collect(t, g, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, g.stderr.String(), strings.Join(lines, "\n"))
	}
	for _, want := range []string{
		"script | load=world default=dflt start=from-env deferred=from-env dollar=$",
		"args   | world from-env from-env",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}
