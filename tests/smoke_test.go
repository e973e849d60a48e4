package tests

import "testing"

func TestSmokeExitCode(t *testing.T) {
	code, _, stderr := runGaffer(t, startOpts{}, "--", "sh", "-c", "exit 3")
	if code != 3 {
		t.Fatalf("exit code %d, want 3; stderr %s", code, stderr)
	}
}
