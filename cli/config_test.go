package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpAndCheckLoadAlike: up and check find a config and report its problems the same way, up
// naming files by their absolute path.
func TestUpAndCheckLoadAlike(t *testing.T) {
	clearGafferEnv(t)
	t.Chdir(t.TempDir())
	dir := mustGetwd(t) // as up sees it
	files := map[string]string{
		"bad.toml": "[settings]\ngrace = \"10 s\"\n\n[process.web]\ncmd = \"x\"\nafter = [\"db\"]\n",
		"Procfile": "web: ./web\nweb ./oops\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		flags []string
		want  string // stderr of check; up's names the files under dir
	}{
		{name: "problems", flags: []string{"-c", "bad.toml"}, want: "bad.toml:2: settings.grace: bad duration \"10 s\": want e.g. \"10s\", \"500ms\", \"1m30s\"\nbad.toml:6: process.web.after[0]: no process named \"db\"\n"},
		{name: "found Procfile", want: "Procfile:2: malformed line \"web ./oops\": want NAME: COMMAND\n"},
		{name: "missing", flags: []string{"-c", "nope.toml"}, want: "gaffer: config file nope.toml: no such file or directory\n"},
		{name: "directory", flags: []string{"-c", "."}, want: "gaffer: config file .: is a directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cmd := range []string{"check", "up"} {
				var stderr bytes.Buffer
				args := append([]string{"gaffer", cmd}, tt.flags...)
				// up fails before anything starts; it needs the signal channel all the same.
				code := Run(args, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
				got := strings.ReplaceAll(stderr.String(), dir+"/", "")
				if code != 2 || got != tt.want {
					t.Errorf("%q: exit %d, stderr %q; want 2, %q", args, code, got, tt.want)
				}
			}
		})
	}
	// Where nothing is found, check names the directory as ".", up by its path.
	t.Chdir(t.TempDir())
	for cmd, where := range map[string]string{"check": ".", "up": mustGetwd(t)} {
		var stderr bytes.Buffer
		code := Run([]string{"gaffer", cmd}, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
		want := "gaffer: no config file: give -c FILE or $GAFFER_CONFIG, or put gaffer.toml or Procfile in " + where + "\n"
		if code != 2 || stderr.String() != want {
			t.Errorf("%s: exit %d, stderr %q; want 2, %q", cmd, code, stderr.String(), want)
		}
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
