package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExecProbeRunsAsTheProcess: an exec readiness probe runs as its process runs (user, groups,
// directory, environment), not as gaffer: issue 7, where the probe of a `user = "nobody"`,
// `clear_env = true` process saw HOME=/root, no FOO and an empty GAFFER_PROCESS_NAME.
func TestExecProbeRunsAsTheProcess(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// nobody must reach the directory: t.TempDir's parent is private too.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	probe := "#!/bin/sh\n{ id -u; id -g; echo \"FOO=$FOO\"; echo \"HOME=$HOME\"; echo \"NAME=$GAFFER_PROCESS_NAME\"; echo \"INSTANCE=$GAFFER_PROCESS_INSTANCE\"; echo \"GAFFERONLY=$GAFFER_ONLY\"; pwd; } > " + out + "/probe.txt\n"
	files := map[string]string{
		"probe.sh": probe,
		"gaffer.toml": `[settings]
socket = ""
[process.w]
cmd = ["/bin/sleep", "1000"]
user = "nobody"
clear_env = true
cwd = "` + out + `"
env = { FOO = "bar", PATH = "/usr/bin:/bin" }
ready = "exec:` + filepath.Join(dir, "probe.sh") + `"
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := startGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_ONLY=leaked"}}, "up")
	stopAtEnd(t, g)
	g.expectLine("gaffer | w ready", 30*time.Second)
	b, err := os.ReadFile(filepath.Join(out, "probe.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{"65534", "65534", "FOO=bar", "HOME=/nonexistent", "NAME=w", "INSTANCE=1", "GAFFERONLY=", out}, "\n") + "\n"
	if got := string(b); got != want {
		t.Fatalf("the probe saw\n%s\nwant\n%s", got, want)
	}
}
