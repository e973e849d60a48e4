package tests

import (
	"strings"
	"testing"
)

// TestExecSwitchesEveryID: the command gaffer exec runs has the target user in all four uids and
// gids (real, effective, saved, filesystem) and exactly its groups. gaffer switches the ids of
// the one thread that calls execve, which the kernel keeps; this checks nothing of root's is left.
func TestExecSwitchesEveryID(t *testing.T) {
	needRoot(t)
	code, out, stderr := execAs(t, "--user", "app", "--", "sh", "-c", `grep -E '^(Uid|Gid|Groups):' /proc/self/status`)
	want := "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t1000 2000 2001"
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("exit %d, got %q, want %q; stderr %q", code, out, want, stderr)
	}
	code, out, stderr = execAs(t, "--user", "4242:4343", "--", "sh", "-c", `grep -E '^(Uid|Gid|Groups):' /proc/self/status`)
	want = "Uid:\t4242\t4242\t4242\t4242\nGid:\t4343\t4343\t4343\t4343\nGroups:\t4343"
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("exit %d, got %q, want %q; stderr %q", code, out, want, stderr)
	}
}
