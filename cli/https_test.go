package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pid1 "gaffer/init"
)

// TestHTTPSProbeNeedsTLS: check and up refuse an https readiness probe, exit 2 with FILE:LINE,
// when gaffer was built without TLS (-tags gaffer_notls), and take it otherwise.
func TestHTTPSProbeNeedsTLS(t *testing.T) {
	clearGafferEnv(t)
	t.Chdir(t.TempDir())
	text := "[process.db]\ncmd = \"x\"\n\n[process.web]\ncmd = \"x\"\nready = \"https://localhost:8443/health\"\n"
	if err := os.WriteFile(filepath.Join(mustGetwd(t), "gaffer.toml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := Run([]string{"gaffer", "check"}, testVersion, Signals{}, &stderr)
	if pid1.HTTPSProbes {
		if code != 0 {
			t.Errorf("check with TLS: exit %d, stderr %q", code, stderr.String())
		}
		return
	}
	want := `gaffer.toml:4: process.web.ready: "https://localhost:8443/health": this gaffer was built without TLS`
	if code != 2 || !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("check without TLS: exit %d, stderr %q; want 2, one line starting %q", code, stderr.String(), want)
	}
	stderr.Reset()
	code = Run([]string{"gaffer", "up"}, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "process.web.ready: \"https://localhost:8443/health\": this gaffer was built without TLS") {
		t.Errorf("up without TLS: exit %d, stderr %q; want 2 and the refusal", code, stderr.String())
	}
}
