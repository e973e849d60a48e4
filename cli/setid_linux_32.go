//go:build linux && (386 || arm)

package cli

import "golang.org/x/sys/unix"

// The setuid and setgid system calls with 32-bit ids (SYS_SETUID is the 16-bit one here).
const (
	sysSetuid = unix.SYS_SETUID32
	sysSetgid = unix.SYS_SETGID32
)
