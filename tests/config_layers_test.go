package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeTree creates path -> content files (paths may name directories) in a new directory and
// returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// squeeze makes each line's runs of blanks one space: explain aligns its comments.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// layers is a base file and a conf.d whose files a later one overrides in lexical order: web's
// environment, after and restart are changed, worker is disabled.
func layers() map[string]string {
	return map[string]string{
		"gaffer.toml": `[settings]
grace = "5s"

[process.worker]
cmd = ["sh", "-c", "echo worker started; exec sleep 1000"]

[process.web]
cmd = ["sh", "-c", "echo mode=$MODE level=$LEVEL"]
env = { MODE = "base", LEVEL = "base" }
after = ["worker"]
`,
		"conf.d/10-prod.toml": `[process.web]
env.MODE = "prod"
after = []
restart = "always"

[process.worker]
disabled = true
`,
		"conf.d/20-fix.toml": `# the last layer wins
[process.web]
restart = "never"
`,
		"conf.d/notes.txt":        "not a layer",
		"conf.d/.20-fix.toml.swp": "not a layer either",
	}
}

func TestLayersCheckExplain(t *testing.T) {
	dir := writeTree(t, layers())
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check", "--explain", "-c", "gaffer.toml", "-c", "conf.d/")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout\n%s", code, stderr, stdout)
	}
	out := squeeze(stdout)
	for _, want := range []string{
		"# sources: gaffer.toml, conf.d/10-prod.toml, conf.d/20-fix.toml\n",
		"\n[settings] # gaffer.toml:1\ngrace = \"5s\" # gaffer.toml:2\noutput = \"prefix\" # default\n",
		"\n[process.web] # gaffer.toml:7\ncmd = [\"sh\", \"-c\", \"echo mode=$MODE level=$LEVEL\"] # gaffer.toml:8\n",
		"\nenv.LEVEL = \"base\" # gaffer.toml:9\nenv.MODE = \"prod\" # conf.d/10-prod.toml:2\n",
		"\nrestart = \"never\" # conf.d/20-fix.toml:3\n",
		"\nafter = [] # conf.d/10-prod.toml:3\n",
		"\nstop_timeout = \"5s\" # default: settings.grace\n",
		"\n[process.worker] # gaffer.toml:4\ndisabled = true # conf.d/10-prod.toml:7",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no\n%s\nin\n%s", want, stdout)
		}
	}
	// Without --explain: the JSON, with the sources and what was disabled.
	code, stdout, _ = runGaffer(t, startOpts{dir: dir}, "check", "-c", "gaffer.toml", "-c", "conf.d")
	out2 := parseCheck(t, stdout)
	if code != 0 || len(out2.Processes) != 1 || out2.Processes[0]["name"] != "web" || !strings.Contains(stdout, `"disabled": [
    "worker"
  ]`) {
		t.Errorf("exit %d, JSON\n%s", code, stdout)
	}
}

// TestLayersErrorsPointIntoTheirFile: a problem a later layer brings is reported at its own file
// and line, after those of the files before it.
func TestLayersErrorsPointIntoTheirFile(t *testing.T) {
	files := layers()
	files["conf.d/30-bad.toml"] = "\n[process.web]\nbackoff = \"soon\"\n\n[process.extra]\ncmd = \"x\"\nafter = [\"worker\"]\n"
	files["gaffer.toml"] += "numprocesses = 0\n"
	dir := writeTree(t, files)
	code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check", "-c", "gaffer.toml", "-c", "conf.d")
	want := "gaffer.toml:11: process.web.numprocesses: want at least 1, got 0\n" +
		"conf.d/30-bad.toml:3: process.web.backoff: bad duration \"soon\": want e.g. \"10s\", \"500ms\", \"1m30s\"\n" +
		"conf.d/30-bad.toml:7: process.extra.after[0]: worker is disabled, so extra would never start\n"
	if code != 2 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, stdout, stderr, want)
	}
	// A path that does not exist is a usage error naming it.
	code, _, stderr = runGaffer(t, startOpts{dir: dir}, "check", "-c", "gaffer.toml", "-c", "nope.d")
	if code != 2 || stderr != "gaffer: config file nope.d: no such file or directory\n" {
		t.Errorf("missing layer: exit %d, stderr %q", code, stderr)
	}
}

// TestLayersUp: gaffer up runs the merged config: web sees the overriding layer's MODE, starts
// without waiting for worker (after replaced by []), and worker, disabled, never starts.
func TestLayersUp(t *testing.T) {
	dir := writeTree(t, layers())
	for _, how := range []struct {
		name string
		opts startOpts
		args []string
	}{
		{"-c twice", startOpts{dir: dir}, []string{"up", "-c", "gaffer.toml", "-c", "conf.d"}},
		{"GAFFER_CONFIG", startOpts{dir: dir, env: []string{"GAFFER_CONFIG=" + filepath.Join(dir, "gaffer.toml") + ":" + filepath.Join(dir, "conf.d")}}, []string{"up"}},
	} {
		t.Run(how.name, func(t *testing.T) {
			g := startGaffer(t, how.opts, how.args...)
			lines, code := collect(t, g, 20*time.Second)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, g.stderr.String(), strings.Join(lines, "\n"))
			}
			if !slices.Contains(lines, "web    | mode=prod level=base") {
				t.Errorf("want web's line with the merged env in:\n%s", strings.Join(lines, "\n"))
			}
			mustIndex(t, lines, "gaffer", "web started (pid ")
			for _, l := range lines {
				if strings.Contains(l, "worker") {
					t.Errorf("the disabled worker shows up: %q", l)
				}
			}
		})
	}
	// The base alone: worker runs, and web waits for it.
	// web ends at once and stops everything: worker may be stopped before its echo ran, so its
	// start is checked by gaffer's event, not by its own line.
	g := startGaffer(t, startOpts{dir: dir}, "up", "-c", "gaffer.toml")
	lines, _ := collect(t, g, 20*time.Second)
	for _, want := range []string{"web    | mode=base level=base"} {
		if !slices.Contains(lines, want) {
			t.Errorf("no %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if w, s := index(lines, "gaffer", "web started (pid "), index(lines, "gaffer", "worker started (pid "); w < 0 || s < 0 || w < s {
		t.Errorf("web did not start after worker:\n%s", strings.Join(lines, "\n"))
	}
}
