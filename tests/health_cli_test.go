package tests

// Black-box tests of `gaffer health` (issue 9): what Docker's HEALTHCHECK and Kubernetes' exec
// probes run. Exit 0 healthy, 1 unhealthy, 2 when it cannot tell; always exactly one line on
// stdout, nothing on stderr.

import (
	"encoding/json"
	"gaffer/internal/testutil"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// health runs gaffer health with args against sock and checks the one-line contract.
func health(t *testing.T, sock string, args ...string) (int, string) {
	t.Helper()
	code, out, errs := ctl(t, sock, nil, "health", args...)
	if errs != "" || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("gaffer health %q: exit %d, stdout %q, stderr %q; want one line on stdout and nothing on stderr", args, code, out, errs)
	}
	return code, strings.TrimSuffix(out, "\n")
}

// wantHealth checks gaffer health's exit code and that its line starts with prefix.
func wantHealth(t *testing.T, sock string, code int, prefix string, args ...string) {
	t.Helper()
	if c, line := health(t, sock, args...); c != code || !strings.HasPrefix(line, prefix) {
		t.Errorf("gaffer health %q: exit %d %q; want %d %q...", args, c, line, code, prefix)
	}
}

// TestHealthCLI: gaffer health against a live gaffer up, at both levels, for every process or
// some; /healthz stays as it was.
func TestHealthCLI(t *testing.T) {
	a := apiUp(t, "", `
[process.web]
cmd = "sleep 1000"

[process.slow]
cmd = "sleep 1000"
ready = "file://{dir}/ok"
ready_timeout = "60s"
`)
	testutil.WaitFor(t, 10*time.Second, "both running", func() bool {
		return a.process("web").Pid != 0 && a.process("slow").Pid != 0
	})
	// alive: nothing fatal or unhealthy. ready: slow is not ready yet.
	wantHealth(t, a.sock, 0, "healthy (alive")
	wantHealth(t, a.sock, 0, "healthy (alive", "--level", "alive")
	wantHealth(t, a.sock, 1, "unhealthy (ready): slow ", "--level", "ready")
	wantHealth(t, a.sock, 1, "unhealthy (ready): slow ", "-l", "ready", "slow", "web")
	wantHealth(t, a.sock, 0, "healthy (ready: web)", "--level", "ready", "web")
	wantHealth(t, a.sock, 2, `error: no process "nope"`, "nope")
	wantHealth(t, a.sock, 2, `error: --level "up": want alive or ready`, "--level", "up")
	wantHealth(t, a.sock, 2, "error: flag provided but not defined", "--nope")
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 503 {
		t.Errorf("/healthz with slow not ready: %d, want 503", code)
	}

	// --json: the report, on one line.
	code, line := health(t, a.sock, "--json", "--level", "ready")
	var r struct {
		OK      bool   `json:"ok"`
		Level   string `json:"level"`
		Failing []struct {
			Name string `json:"name"`
		} `json:"failing"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil || code != 1 || r.OK || r.Level != "ready" ||
		!slices.ContainsFunc(r.Failing, func(f struct {
			Name string `json:"name"`
		}) bool {
			return f.Name == "slow"
		}) {
		t.Errorf("gaffer health --json --level ready: exit %d %s %v", code, line, err)
	}

	if err := os.WriteFile(filepath.Join(a.dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "ready", func() bool { c, _ := health(t, a.sock, "--level", "ready"); return c == 0 })
	wantHealth(t, a.sock, 0, "healthy (ready", "--level", "ready")
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 200 {
		t.Errorf("/healthz when ready: %d", code)
	}
	if code, body := curl(t, a.sock, "GET", "/v1/health?level=ready&name=slow", nil); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Errorf("GET /v1/health?level=ready&name=slow: %d %s", code, body)
	}

	// Fast: it is what probes run every few seconds.
	var took []time.Duration
	for range 20 {
		began := time.Now()
		health(t, a.sock)
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	t.Logf("gaffer health: median %v, max %v over %d runs (process start included)", took[len(took)/2], took[len(took)-1], len(took))
}

// TestHealthCLIRunMode: gaffer -- CMD answers for its one process, main; it cannot reload.
func TestHealthCLIRunMode(t *testing.T) {
	a := apiRun(t, nil, "sleep", "1000")
	wantHealth(t, a.sock, 0, "healthy (alive")
	wantHealth(t, a.sock, 0, "healthy (ready: main)", "--level", "ready", "main")
	wantHealth(t, a.sock, 2, `error: no process "web"`, "web")
	code, out, errs := ctl(t, a.sock, nil, "reload")
	oneLineError(t, "gaffer reload in gaffer --", code, errs, 1, "not available in gaffer -- mode")
	if out != "" {
		t.Errorf("gaffer reload in gaffer -- printed %q", out)
	}
}

// TestHealthCLINoGaffer: with no gaffer to ask, exit 2 and one line saying so: a socket asked for
// that is missing or refuses, and, with no flag, none of the places gaffer may listen (in a mount
// namespace of its own with empty /run and /tmp, so that no gaffer of this machine answers).
func TestHealthCLINoGaffer(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	wantHealth(t, missing, 2, "error: cannot reach gaffer at "+missing+": no such file or directory")
	wantHealth(t, missing, 2, "error: cannot reach gaffer at "+missing+": no such file or directory", "--level", "ready", "web")
	refused := filepath.Join(dir, "refused.sock")
	staleSocket(t, refused)
	wantHealth(t, refused, 2, "error: cannot reach gaffer at "+refused+": connection refused")

	needRoot(t)
	code, out, errs := runProc(t, nil, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o mode=0755 tmpfs /run && cp "$0" /run/gaffer && mount -t tmpfs -o mode=1777 tmpfs /tmp &&
		exec env -u XDG_RUNTIME_DIR -u TMPDIR -u GAFFER_SOCKET /run/gaffer health`, gafferBin)
	if want := "error: no gaffer socket found (tried: /run/gaffer.sock, /tmp/gaffer-0/gaffer.sock)\n"; code != 2 || out != want || errs != "" {
		t.Errorf("gaffer health with no gaffer anywhere: exit %d, stdout %q, stderr %q; want 2, %q", code, out, errs, want)
	}
}
