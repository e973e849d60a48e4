package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	env := map[string]string{"HOME": "/root", "EMPTY": "", "PORT": "8080", "A": "a"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOME}/x", want: "/root/x"},
		{in: "${HOME}${PORT}", want: "/root8080"},
		{in: "${EMPTY}", want: ""}, // set, though empty
		{in: "${NOPE:-default}", want: "default"},
		{in: "${EMPTY:-default}", want: "default"}, // :- also takes empty for unset, as in sh
		{in: "${PORT:-80}", want: "8080"},
		{in: "${NOPE:-}", want: ""},
		{in: "${NOPE:-${PORT}}", want: "8080"},
		{in: "${PORT:-${NOPE}}", want: "8080"}, // a default not used is not expanded
		{in: "${PORT:?no port}", want: "8080"},
		{in: "${NOPE:-a:b c/d}", want: "a:b c/d"},
		{in: "$$", want: "$"},
		{in: "$${HOME}", want: "${HOME}"},
		{in: "$$$${HOME}", want: "$${HOME}"},
		{in: "$$${HOME}", want: "$/root"},
		{in: "$HOME and $1 and $(pwd) and $", want: "$HOME and $1 and $(pwd) and $"},
		{in: "cost: 5$", want: "cost: 5$"},
		{in: "${NOPE:-$$}", want: "$"},
		{in: "${NOPE}", err: "NOPE is not set (${NOPE:-default} gives a default)"},
		{in: "${NOPE:?set NOPE to the volume}", err: "NOPE: set NOPE to the volume"},
		{in: "${EMPTY:?must not be empty}", err: "EMPTY: must not be empty"},
		{in: "${NOPE:?}", err: "NOPE: not set or empty"},
		{in: "${HOME", err: `"${" without a closing "}"`},
		{in: "x ${NOPE:-y", err: `"${" without a closing "}"`},
		{in: "${NOPE:-${A}", err: `"${" without a closing "}"`},
		{in: "${}", err: "${}: want a variable name after ${ (write $${ for a literal ${)"},
		{in: "${1X}", err: `bad variable name "1X": use letters, digits and _, not starting with a digit`},
		{in: "${HOME/x}", err: "${HOME/x}: want ${HOME}, ${HOME:-default} or ${HOME:?message}"},
		{in: "${HOME-x}", err: "${HOME-x}: want ${HOME}, ${HOME:-default} or ${HOME:?message}"},
	}
	for _, tt := range tests {
		got, err := expandString(tt.in, lookup)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("%q: got %q, %v; want error %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%q: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestExpandValues: every string value is expanded, in arrays, env tables and settings too, and
// each problem is at its file, line and key.
func TestExpandValues(t *testing.T) {
	dir := layerDir(t, map[string]string{
		"a.toml": `[settings]
grace = "${GRACE:-7s}"

[process.web]
cmd = ["serve", "--root", "${ROOT}", "--port=${PORT:-80}"]
args = ["$HOME", "$${HOME}", "${ROOT}"]
cwd = "${ROOT}"
env = { URL = "http://${HOST:-localhost}:${PORT:-80}", LITERAL = "$$5", DEFER = "$HOME" }
ready = "tcp://${HOST:-127.0.0.1}:${PORT:-80}"
`,
		"bad.toml": `[process.web]
cmd = "serve ${NOPE}"
args = ["a", "${NOPE}"]

[process.web.env]
X = "${NOPE:?give the url of the database}"

[settings]
socket = "${SOCK"
`,
	})
	cfg, errs := loadIn(t, dir, map[string]string{"ROOT": "/srv", "PORT": "9000"}, "a.toml")
	if errs != nil {
		t.Fatalf("errors:\n%s", strings.Join(errs, "\n"))
	}
	web := cfg.Processes[0]
	if want := []string{"serve", "--root", "/srv", "--port=9000"}; !reflect.DeepEqual(web.Cmd, want) {
		t.Errorf("cmd %q, want %q", web.Cmd, want)
	}
	// args are left for their expansion at start, from the process's environment.
	if want := []string{"$HOME", "$${HOME}", "${ROOT}"}; !reflect.DeepEqual(web.Args, want) {
		t.Errorf("args %q, want %q", web.Args, want)
	}
	if want := map[string]string{"URL": "http://localhost:9000", "LITERAL": "$5", "DEFER": "$HOME"}; !reflect.DeepEqual(web.Env, want) {
		t.Errorf("env %q, want %q", web.Env, want)
	}
	if web.Cwd != "/srv" || web.Ready.Target != "127.0.0.1:9000" || cfg.Settings.Grace.String() != "7s" {
		t.Errorf("cwd %q, ready %+v, grace %v", web.Cwd, web.Ready, cfg.Settings.Grace)
	}
	_, errs = loadIn(t, dir, nil, "a.toml", "bad.toml")
	want := []string{
		"a.toml:7: process.web.cwd: ROOT is not set (${ROOT:-default} gives a default)",
		"bad.toml:2: process.web.cmd: NOPE is not set (${NOPE:-default} gives a default)",
		"bad.toml:6: process.web.env.X: NOPE: give the url of the database",
		`bad.toml:9: settings.socket: "${" without a closing "}"`,
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}
