package cli

import (
	"fmt"
	"io"

	"gaffer/sdnotify"
)

// runShim is the hidden command sdnotify.ExecCommand: gaffer up starts a process that must find
// its own pid in LISTEN_PID or WATCHDOG_PID through gaffer's own binary, which sets them and
// executes the command in the same process. Nothing else runs first: no signal notification, no
// flags; it returns only when the exec failed (127 or 126, like a shell).
func runShim(args []string, stderr io.Writer) int {
	code, err := sdnotify.Exec(args)
	fmt.Fprintf(stderr, "gaffer: %v\n", err)
	return code
}
