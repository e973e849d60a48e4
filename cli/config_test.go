package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gaffer/config"
	pid1 "gaffer/init"

	"github.com/urfave/cli/v2"
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
		{name: "directory", flags: []string{"-c", "."}, want: "bad.toml:2: settings.grace: bad duration \"10 s\": want e.g. \"10s\", \"500ms\", \"1m30s\"\nbad.toml:6: process.web.after[0]: no process named \"db\"\n"},
		{name: "a second layer missing", flags: []string{"-c", "bad.toml", "-c", "nope.d"}, want: "gaffer: config file nope.d: no such file or directory\n"},
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

// writeFile writes text to dir/name, making the directories on the way.
func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckLayers: -c repeats, a directory is its *.toml files in lexical order, and
// GAFFER_CONFIG is a colon-separated list; check --explain says where each value came from.
func TestCheckLayers(t *testing.T) {
	clearGafferEnv(t)
	t.Chdir(t.TempDir())
	dir := mustGetwd(t)
	writeFile(t, dir, "base.toml", "[process.web]\ncmd = \"web\"\nnumprocesses = 2\n\n[process.worker]\ncmd = \"work\"\n")
	writeFile(t, dir, "conf.d/20-late.toml", "[process.web]\nnumprocesses = 4\n")
	writeFile(t, dir, "conf.d/10-early.toml", "[process.web]\nnumprocesses = 3\nenv = { A = \"1\" }\n[process.worker]\ndisabled = true\n")
	want := `# sources: base.toml, conf.d/10-early.toml, conf.d/20-late.toml
`
	for _, args := range [][]string{
		{"gaffer", "check", "--explain", "-c", "base.toml", "-c", "conf.d"},
		{"gaffer", "check", "--explain", "-c", "base.toml", "-c", "conf.d/10-early.toml", "-c", "conf.d/20-late.toml"},
	} {
		var stdout, stderr bytes.Buffer
		code := runWith(args, &stdout, &stderr)
		lines := strings.Split(stdout.String(), "\n")
		for i, l := range lines {
			lines[i] = strings.Join(strings.Fields(l), " ") // the comments are aligned
		}
		out := strings.Join(lines, "\n")
		if code != 0 || stderr.Len() != 0 || !strings.HasPrefix(out, want) {
			t.Fatalf("%q: exit %d, stderr %q, stdout\n%s", args, code, stderr.String(), out)
		}
		for _, line := range []string{
			"\n[process.web] # base.toml:1\ncmd = [\"web\"] # base.toml:2\n",
			"\nnumprocesses = 4 # conf.d/20-late.toml:2\n",
			"\nenv.A = \"1\" # conf.d/10-early.toml:3\n",
			"\n[process.worker] # base.toml:5\ndisabled = true # conf.d/10-early.toml:5\n",
			"\nrestart = \"never\" # default\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("%q: no %q in\n%s", args, line, out)
			}
		}
	}
	t.Setenv("GAFFER_CONFIG", "base.toml::conf.d:")
	var stdout, stderr bytes.Buffer
	if code := runWith([]string{"gaffer", "check"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), `"numprocesses": 4`) || !strings.Contains(stdout.String(), `"disabled": [
    "worker"
  ]`) {
		t.Errorf("GAFFER_CONFIG list: exit %d, stderr %q, stdout\n%s", code, stderr.String(), stdout.String())
	}
}

func runWith(args []string, stdout, stderr *bytes.Buffer) int {
	old := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		return -1
	}
	os.Stdout = w
	done := make(chan struct{})
	go func() {
		_, _ = stdout.ReadFrom(r)
		close(done)
	}()
	code := Run(args, testVersion, Signals{C: make(chan os.Signal, 1)}, stderr)
	os.Stdout = old
	w.Close()
	<-done
	r.Close()
	return code
}

// TestConfigReloader: the reload function reads the same sources again from their absolute
// paths after up moved to /, lists a directory anew, and reports every problem as FILE:LINE.
func TestConfigReloader(t *testing.T) {
	clearGafferEnv(t)
	t.Chdir(t.TempDir())
	dir := mustGetwd(t)
	writeFile(t, dir, "gaffer.toml", "[process.web]\ncmd = \"web\"\n")
	writeFile(t, dir, "conf.d/a.toml", "[process.web]\nnumprocesses = 2\n")
	var reload func() (*config.Config, error)
	app := &cli.App{
		Commands: []*cli.Command{{Name: "up", Flags: []cli.Flag{configFlag(), &cli.StringFlag{Name: "procfile"}},
			Action: func(c *cli.Context) error {
				paths, err := configPaths(c, dir)
				reload = configReloader(paths)
				return err
			}}},
	}
	if err := app.Run([]string{"gaffer", "up", "-c", "gaffer.toml", "-c", "conf.d"}); err != nil {
		t.Fatal(err)
	}
	t.Chdir("/")
	cfg, err := reload()
	if err != nil || cfg.Processes[0].NumProcesses != 2 || cfg.File != filepath.Join(dir, "gaffer.toml") {
		t.Fatalf("reload: %v, %+v", err, cfg)
	}
	writeFile(t, dir, "conf.d/b.toml", "[process.web]\nnumprocesses = 3\n")
	if cfg, err := reload(); err != nil || cfg.Processes[0].NumProcesses != 3 || len(cfg.Sources) != 3 {
		t.Fatalf("a file added to the directory: %v, %+v", err, cfg)
	}
	writeFile(t, dir, "conf.d/b.toml", "[process.web]\nnumprocesses = 0\nrestart = \"sometimes\"\n")
	_, err = reload()
	var errs *config.Errors
	want := filepath.Join(dir, "conf.d/b.toml") + ":2: process.web.numprocesses: want at least 1, got 0\n" +
		filepath.Join(dir, "conf.d/b.toml") + ":3: process.web.restart: unknown value \"sometimes\": want always, on-failure or never"
	if !errors.As(err, &errs) || err.Error() != want {
		t.Errorf("reload error:\n%v\nwant\n%s", err, want)
	}
}

// TestRefuseHTTPSHealth: without TLS an https health probe is refused like a ready one, at the
// process's header, or at the probe's line when a later layer set it.
func TestRefuseHTTPSHealth(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.toml", "[process.web]\ncmd = \"x\"\nhealth = \"https://localhost/healthz\"\n\n[process.db]\ncmd = \"x\"\n")
	writeFile(t, dir, "b.toml", "# later\n[process.db]\nready = \"https://localhost:5432/\"\n")
	cfg, err := config.LoadLayers([]string{filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range refuseHTTPS(cfg) {
		got = append(got, strings.ReplaceAll(e.Error(), dir+"/", ""))
	}
	if pid1.HTTPSProbes {
		if got != nil {
			t.Errorf("with TLS: %q", got)
		}
		return
	}
	const notls = ": this gaffer was built without TLS (-tags gaffer_notls); use http://, tcp:// or exec: with a client in the image"
	want := []string{
		`a.toml:1: process.web.health: "https://localhost/healthz"` + notls,
		`b.toml:3: process.db.ready: "https://localhost:5432/"` + notls,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
