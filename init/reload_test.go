package pid1

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gaffer/config"
)

func init() {
	scenarios = append(scenarios, struct {
		name string
		run  func(t *testing.T, tr *transitions)
	}{"ReloadAppliesTheDifference", scenarioReload})
}

// loadToml loads text as a gaffer.toml.
func loadToml(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gaffer.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Settings.Output = "raw"
	return cfg
}

// reload applies text as the new configuration and returns the plan as "name:action" strings.
func (h *harness) reload(text string, dryRun bool) []string {
	h.t.Helper()
	res, err := h.s.reload(loadToml(h.t, text), dryRun)
	if err != nil {
		h.t.Fatal(err)
	}
	h.settle()
	var out []string
	for _, st := range res.Plan {
		out = append(out, st.Name+":"+st.Action)
	}
	return out
}

const reloadBefore = `
[process.db]
cmd = "db"
restart = "always"

[process.web]
cmd = "web v1"
after = ["db"]

[process.worker]
cmd = "work"
numprocesses = 2

[process.old]
cmd = "old"

[process.broken]
cmd = "broken"
on_end = "ignore"

[process.init]
cmd = "migrate"
oneshot = true
`

const reloadAfter = `
[process.db]
cmd = "db"
restart = "on-failure"

[process.web]
cmd = "web v2"
after = ["db"]

[process.worker]
cmd = "work"
numprocesses = 3

[process.broken]
cmd = "fixed"
on_end = "ignore"

[process.init]
cmd = "migrate --again"
oneshot = true

[process.new]
cmd = "new"
`

func scenarioReload(t *testing.T, tr *transitions) {
	h := newHarness(t, reloadBefore, tr).run()
	h.exit("broken", 1)
	h.wantState("broken", stateFatal)
	h.exit("init", 0)
	h.wantState("init", stateExited)
	db, web := h.current("db"), h.current("web")

	plan := h.reload(reloadAfter, true)
	want := "db:update web:restart worker:scale broken:restart init:restart new:add old:remove"
	if got := strings.Join(plan, " "); got != want {
		t.Fatalf("plan %q, want %q", got, want)
	}
	if h.current("web") != web || len(h.s.insts) != 7 {
		t.Fatal("a dry run changed something")
	}

	h.reload(reloadAfter, false)
	if h.current("db") != db {
		t.Fatal("db was restarted for a change of its restart policy")
	}
	if h.inst("db").cfg.Restart != config.RestartOnFailure {
		t.Fatal("db's new policy was not applied")
	}
	if h.current("web") == web || h.current("web").dead || h.inst("web").cfg.Cmd[1] != "v2" {
		t.Fatal("web was not restarted with its new command")
	}
	for _, name := range []string{"worker.1", "worker.2", "worker.3", "new", "broken", "init"} {
		if in := h.inst(name); in.proc == nil {
			t.Fatalf("%s is not running: %v", name, in.state)
		}
	}
	for _, in := range h.s.insts {
		if in.cfg.Name == "old" {
			t.Fatalf("old is still there: %v", in.state)
		}
	}
	h.wantEvent("web: restarting (cmd changed)")
	h.wantEvent("old: removing (no longer configured)")
	h.wantEvent("new: adding")
	h.wantEvent("db: updated in place (restart changed)")
}

func TestReloadRemovesDependentsFirst(t *testing.T) {
	h := newHarness(t, `
[process.base]
cmd = "base"

[process.app]
cmd = "app"
after = ["base"]

[process.other]
cmd = "other"
`, nil)
	h.l.stubborn["app"], h.l.stubborn["base"] = true, true
	h.run()
	h.reload("[process.other]\ncmd = \"other\"\n", false)
	h.wantState("app", stateStopping)
	h.wantState("base", stateRunning)
	h.exit("app", 143)
	h.wantState("base", stateStopping)
	h.exit("base", 143)
	if got := strings.Join(h.names(), " "); got != "other" {
		t.Fatalf("instances %q", got)
	}
	if done, _ := h.done(); done {
		t.Fatal("gaffer stopped")
	}
}

func TestReloadDuringBackoffAndStartup(t *testing.T) {
	h := newHarness(t, `
[process.flap]
cmd = "flap v1"
restart = "always"
backoff = "1s"

[process.slow]
cmd = "slow v1"
ready = "exec:probe"
`, nil).run()
	h.exit("flap", 1)
	h.wantState("flap", stateBackoff)
	h.reload(`
[process.flap]
cmd = "flap v2"
restart = "always"
backoff = "1s"

[process.slow]
cmd = "slow v2"
ready = "exec:probe"
`, false)
	// In backoff it has no process: it takes its new command at its restart.
	h.wantState("flap", stateBackoff)
	h.advance(1e9)
	h.wantState("flap", stateRunning)
	if got := h.inst("flap").cfg.Cmd[1]; got != "v2" {
		t.Fatalf("flap restarted with %q", got)
	}
	// Starting (its probe not yet answered): restarted with the new command.
	h.wantState("slow", stateStarting)
	if h.starts("slow") != 2 || h.inst("slow").cfg.Cmd[1] != "v2" {
		t.Fatalf("slow: %d starts, cmd %q", h.starts("slow"), h.inst("slow").cfg.Cmd)
	}
}

func TestDependentListedBeforeItsDependencyStarts(t *testing.T) {
	h := newHarness(t, `
[process.app]
cmd = "app"
after = ["db"]

[process.db]
cmd = "db"
`, nil).run()
	h.wantState("db", stateRunning)
	h.wantState("app", stateRunning)
}

func TestReloadKeepsSettingsThatNeedARestart(t *testing.T) {
	h := newHarness(t, "[settings]\nsocket = \"/run/a.sock\"\n\n[process.w]\ncmd = \"x\"\n", nil).run()
	res, err := h.s.reload(loadToml(t, "[settings]\nsocket = \"/run/b.sock\"\ndrain = \"3s\"\n\n[process.w]\ncmd = \"x\"\n"), false)
	if err != nil || strings.Join(res.NeedsRestart, " ") != "socket" {
		t.Fatalf("needs restart %v, err %v", res.NeedsRestart, err)
	}
	if got := h.s.cfg.Config.Settings; got.Socket != "/run/a.sock" || got.Drain != 3e9 {
		t.Fatalf("running settings: socket %q drain %v", got.Socket, got.Drain)
	}
	// Back to the socket in use: nothing to restart.
	res, _ = h.s.reload(loadToml(t, "[settings]\nsocket = \"/run/a.sock\"\n\n[process.w]\ncmd = \"x\"\n"), false)
	if len(res.NeedsRestart) != 0 {
		t.Fatalf("needs restart %v", res.NeedsRestart)
	}
}

func TestReloadChangesOutputLive(t *testing.T) {
	h := newHarness(t, "[process.w]\ncmd = \"x\"\n", nil).run()
	next := loadToml(t, "[settings]\ntimestamps = true\n\n[process.w]\ncmd = \"x\"\n")
	next.Settings.Output = "json"
	res, err := h.s.reload(next, false)
	if err != nil || len(res.NeedsRestart) != 0 {
		t.Fatalf("needs restart %v, err %v", res.NeedsRestart, err)
	}
	h.s.out.Event("after")
	if ev := h.events(); !strings.Contains(ev, `"line":"after"`) {
		t.Fatalf("events after the reload are not JSON:\n%s", ev)
	}
}
