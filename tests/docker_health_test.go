package tests

// Black-box test of gaffer health as a Docker HEALTHCHECK (issues 9 and 12) where images run it:
// a non-root USER and `docker run --read-only --tmpfs /tmp`. gaffer cannot create
// /run/gaffer.sock there, falls back to /tmp/gaffer-65534/gaffer.sock, and the HEALTHCHECK finds
// it with no flags.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gaffer/internal/testutil"
)

// dockerHealthImage is the test image with a HEALTHCHECK, USER 65534 and gaffer up.
const dockerHealthImage = "gaffer-e2e:health"

// healthDockerfile: web is ready once /tmp/ready exists (the container's tmpfs); the HEALTHCHECK
// asks at level ready, every second.
const healthDockerfile = `FROM ` + dockerImage + `
COPY gaffer.toml /etc/gaffer.toml
USER 65534
HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD ["/gaffer", "health", "--level", "ready"]
ENTRYPOINT ["/gaffer", "up", "-c", "/etc/gaffer.toml"]
`

const healthToml = `[process.web]
cmd = "sleep 1000"
ready = "file:///tmp/ready"
ready_timeout = "10m"
`

// dockerHealth is what docker inspect says of a container's health.
type dockerHealth struct {
	Status string
	Log    []struct {
		ExitCode int
		Output   string
	}
}

// health returns the container's health as docker inspect reports it.
func (e *dockerEngine) health(t *testing.T, id string) dockerHealth {
	t.Helper()
	var h dockerHealth
	out := e.must(t, "inspect", "-f", "{{json .State.Health}}", id)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("docker inspect health of %s: %v: %s", id, err, out)
	}
	return h
}

// waitHealth polls docker inspect until the container's health is want, and returns it.
func (e *dockerEngine) waitHealth(t *testing.T, id, want string) dockerHealth {
	t.Helper()
	var h dockerHealth
	testutil.WaitFor(t, 60*time.Second, "docker inspect to say "+want, func() bool {
		h = e.health(t, id)
		return h.Status == want
	})
	return h
}

// lastOutput is the output of the last health check docker recorded.
func (h dockerHealth) lastOutput() (int, string) {
	if len(h.Log) == 0 {
		return -1, ""
	}
	l := h.Log[len(h.Log)-1]
	return l.ExitCode, l.Output
}

// TestDockerHealth: with --read-only --tmpfs /tmp --user 65534, gaffer up listens in
// /tmp/gaffer-65534 and says so; the image's HEALTHCHECK (gaffer health --level ready) makes docker
// report unhealthy while web is not ready and healthy once it is, each check one line; gaffer status
// in docker exec finds the socket with no flags. gaffer -- with --health-cmd the same.
func TestDockerHealth(t *testing.T) {
	needRoot(t)
	busybox := needDocker(t)
	e := startDockerEngine(t)
	e.buildImage(t, busybox)
	ctx := filepath.Join(e.dir, "health-context")
	if err := os.Mkdir(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"Dockerfile": healthDockerfile, "gaffer.toml": healthToml} {
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.must(t, "build", "-q", "-t", dockerHealthImage, ctx)
	locked := []string{"run", "-d", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--user", "65534"}

	t.Run("gaffer up", func(t *testing.T) {
		began := time.Now()
		id := e.must(t, append(locked, dockerHealthImage)...)
		t.Cleanup(func() { e.run(t, "rm", "-f", id) })
		want := "gaffer: API socket at /tmp/gaffer-65534/gaffer.sock (/run/gaffer.sock: read-only file system)"
		testutil.WaitFor(t, 30*time.Second, "gaffer's line about its socket", func() bool { return strings.Contains(e.logs(t, id), want) })

		h := e.waitHealth(t, id, "unhealthy")
		if code, out := h.lastOutput(); code != 1 || !strings.HasPrefix(out, "unhealthy (ready): web ") || strings.Count(out, "\n") != 1 {
			t.Errorf("unhealthy check: exit %d, output %q; want 1 and one line", code, out)
		}
		// docker exec runs as the image's USER, with no flags: it finds the fallback.
		if out := e.must(t, "exec", id, "/gaffer", "status"); !strings.Contains(out, "\nweb ") {
			t.Errorf("gaffer status in docker exec:\n%s", out)
		}
		if code, out, _ := e.run(t, "exec", id, "/gaffer", "health"); code != 0 || !strings.HasPrefix(out, "healthy (alive") {
			t.Errorf("gaffer health (alive) in docker exec: exit %d %q", code, out)
		}
		e.must(t, "exec", id, "touch", "/tmp/ready")
		h = e.waitHealth(t, id, "healthy")
		if code, out := h.lastOutput(); code != 0 || !strings.HasPrefix(out, "healthy (ready") || strings.Count(out, "\n") != 1 {
			t.Errorf("healthy check: exit %d, output %q; want 0 and one line", code, out)
		}
		t.Logf("healthy %v after docker run", time.Since(began).Round(time.Millisecond))
		if logs := e.logs(t, id); strings.Contains(logs, "no API socket") {
			t.Errorf("docker logs:\n%s", logs)
		}
	})

	t.Run("gaffer --", func(t *testing.T) {
		args := append(locked, "--health-cmd", "/gaffer health --level ready", "--health-interval", "1s", "--health-retries", "2",
			"--entrypoint", "/gaffer", dockerImage, "--", "sleep", "1000")
		id := e.must(t, args...)
		t.Cleanup(func() { e.run(t, "rm", "-f", id) })
		h := e.waitHealth(t, id, "healthy")
		if code, out := h.lastOutput(); code != 0 || out != "healthy (ready)\n" && !strings.HasPrefix(out, "healthy (ready: 1 process") {
			t.Errorf("healthy check: exit %d, output %q", code, out)
		}
		if logs := e.logs(t, id); !strings.Contains(logs, "gaffer: API socket at /tmp/gaffer-65534/gaffer.sock (/run/gaffer.sock: read-only file system)") {
			t.Errorf("docker logs:\n%s", logs)
		}
	})
}
