package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientUsageErrors: numbers the server would refuse anyway are usage errors of the client:
// exit 2 with one line, before it connects (found in review: these exited 1 with "cannot reach
// gaffer" when no gaffer ran). An unknown signal name stays the server's answer (exit 1), as
// tests/api_test.go has it.
func TestClientUsageErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"logs", "-n", "-1", "web"}, "gaffer: logs: -n -1: want 0 or more lines"},
		{[]string{"stats", "-w", "--interval", "10ms"}, "gaffer: stats: --interval 10ms: want at least 100ms"},
		{[]string{"scale", "web", "5000"}, "gaffer: scale: 5000 instances: at most 1024"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		args := append([]string{"gaffer", c.args[0], "--socket", sock}, c.args[1:]...)
		code := Run(args, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
		if got := strings.TrimSpace(stderr.String()); code != 2 || got != c.want {
			t.Errorf("%q: exit %d, stderr %q; want 2, %q", c.args, code, got, c.want)
		}
	}
}
