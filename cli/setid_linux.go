//go:build linux && !(386 || arm)

package cli

import "golang.org/x/sys/unix"

// The setuid and setgid system calls with 32-bit ids.
const (
	sysSetuid = unix.SYS_SETUID
	sysSetgid = unix.SYS_SETGID
)
