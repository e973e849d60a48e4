package spawn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxID is the largest uid or gid a child may be given. 4294967295 is (uid_t)-1, which setuid
// refuses (EINVAL) and setresuid reads as "leave unchanged": a file naming it passed gaffer check
// and failed only at start. Ids from 2^31 up read as negative in much of userland (int32 fields,
// -1 sentinels), so they are refused too.
const MaxID = 1<<31 - 2

// Identity is who a child runs as.
type Identity struct {
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, set exactly (setgroups)
	Home   string   // from passwd, "/" when there is no entry
}

// Users resolves user specs against passwd and group files, without cgo.
type Users struct {
	PasswdFile string
	GroupFile  string
	// CallerUID and CallerGID stand in for parts a spec leaves out (":group") and for a uid that
	// has no passwd entry, which keeps the caller's gid, as gosu does.
	CallerUID uint32
	CallerGID uint32
}

// SystemUsers reads /etc/passwd and /etc/group on behalf of the current process.
func SystemUsers() Users {
	return Users{
		PasswdFile: "/etc/passwd",
		GroupFile:  "/etc/group",
		CallerUID:  uint32(os.Getuid()),
		CallerGID:  uint32(os.Getgid()),
	}
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members string // as in the file: names separated by commas
}

// Lookup resolves SPEC: user, uid, user:group, uid:gid or :group. gosu's rules: a user alone gets
// its primary gid and every group that lists it as a member; user:group gets exactly that group; a
// numeric uid without a passwd entry keeps the caller's gid; an unknown name is an error, never a
// fallback to root. Only all-digit parts are numbers, so "0day" is a name. A uid or gid above
// MaxID, given or found in the files, is an error.
func (u Users) Lookup(spec string) (Identity, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if spec == "" || (userPart == "" && !hasGroup) {
		return Identity{}, fmt.Errorf("empty user spec")
	}
	if hasGroup && groupPart == "" {
		return Identity{}, fmt.Errorf("user spec %q: empty group after ':'", spec)
	}
	if strings.Contains(groupPart, ":") {
		return Identity{}, fmt.Errorf("user spec %q: want user, uid, user:group, uid:gid or :group", spec)
	}

	id := Identity{UID: u.CallerUID, GID: u.CallerGID, Home: "/"}
	var pw *passwdEntry
	if userPart == "" {
		found, err := u.findPasswd(func(e passwdEntry) bool { return e.uid == u.CallerUID })
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Identity{}, err
		}
		pw = found
	} else if n, isNum, err := specID("uid", userPart); err != nil {
		return Identity{}, err
	} else if isNum {
		id.UID = n
		found, err := u.findPasswd(func(e passwdEntry) bool { return e.uid == n })
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Identity{}, err
		}
		pw = found
	} else {
		found, err := u.findPasswd(func(e passwdEntry) bool { return e.name == userPart })
		if err != nil {
			return Identity{}, fmt.Errorf("user %q: %w", userPart, err)
		}
		if found == nil {
			return Identity{}, fmt.Errorf("unknown user %q: not in %s", userPart, u.PasswdFile)
		}
		if found.uid > MaxID {
			return Identity{}, fmt.Errorf("user %q: %w", userPart, idRange("uid", found.uid))
		}
		pw = found
		id.UID = found.uid
	}
	if pw != nil && pw.home != "" {
		id.Home = pw.home
	}

	if hasGroup {
		gid, err := u.resolveGroup(groupPart)
		if err != nil {
			return Identity{}, err
		}
		id.GID = gid
		id.Groups = []uint32{gid}
		return id, nil
	}
	if pw == nil || userPart == "" {
		// A bare uid without an entry keeps the caller's gid and nothing more.
		id.Groups = []uint32{id.GID}
		return id, nil
	}
	if pw.gid > MaxID {
		return Identity{}, fmt.Errorf("user %q: %w", pw.name, idRange("gid", pw.gid))
	}
	id.GID = pw.gid
	id.Groups = []uint32{pw.gid}
	var tooLarge error
	err := u.scanGroups(func(g groupEntry) {
		if tooLarge == nil && hasMember(g.members, pw.name) && !slices.Contains(id.Groups, g.gid) {
			// Never drop a group silently: refuse, as for the primary one.
			if g.gid > MaxID {
				tooLarge = fmt.Errorf("group %q of user %q: %w", g.name, pw.name, idRange("gid", g.gid))
				return
			}
			id.Groups = append(id.Groups, g.gid)
		}
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Identity{}, err
	}
	if tooLarge != nil {
		return Identity{}, tooLarge
	}
	return id, nil
}

// hasMember reports whether the member list of a group line (names separated by commas, with
// spaces around them ignored) holds name.
func hasMember(members, name string) bool {
	for members != "" {
		var m string
		m, members, _ = strings.Cut(members, ",")
		if strings.TrimSpace(m) == name && name != "" {
			return true
		}
	}
	return false
}

func (u Users) resolveGroup(name string) (uint32, error) {
	if n, isNum, err := specID("gid", name); err != nil {
		return 0, err
	} else if isNum {
		return n, nil
	}
	var found *groupEntry
	err := u.scanGroups(func(g groupEntry) {
		if found == nil && g.name == name {
			found = &g
		}
	})
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	if found == nil {
		return 0, fmt.Errorf("unknown group %q: not in %s", name, u.GroupFile)
	}
	if found.gid > MaxID {
		return 0, fmt.Errorf("group %q: %w", name, idRange("gid", found.gid))
	}
	return found.gid, nil
}

// specID reads a part of a spec: isNum is false for a name; a number above MaxID (of any length)
// is an error.
func specID(kind, s string) (n uint32, isNum bool, err error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false, nil
	}
	v, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil || v > MaxID {
		return 0, true, fmt.Errorf("%s %s is out of range 0-%d", kind, s, MaxID)
	}
	return uint32(v), true, nil
}

func idRange(kind string, id uint32) error {
	return fmt.Errorf("%s %d is out of range 0-%d", kind, id, MaxID)
}

// number parses an all-digit id of the passwd and group files; anything else is a name.
func number(s string) (uint32, bool) {
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

func (u Users) findPasswd(match func(passwdEntry) bool) (*passwdEntry, error) {
	var found *passwdEntry
	err := scanColon(u.PasswdFile, 7, func(f []string) bool {
		uid, ok1 := number(f[2])
		gid, ok2 := number(f[3])
		if !ok1 || !ok2 {
			return true
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]}
		if match(e) {
			found = &e
			return false
		}
		return true
	})
	return found, err
}

// scanGroups calls fn with every well-formed entry of the group file, in order. The whole file is
// read, so that a malformed file fails the same whichever entry is looked for.
func (u Users) scanGroups(fn func(groupEntry)) error {
	return scanColon(u.GroupFile, 4, func(f []string) bool {
		if gid, ok := number(f[2]); ok {
			fn(groupEntry{name: f[0], gid: gid, members: f[3]})
		}
		return true
	})
}

// scanColon calls fn with the fields of each well-formed line of a colon-separated file until fn
// returns false. Comments, blank lines and lines with too few fields are skipped.
func scanColon(path string, nfields int, fn func([]string) bool) error {
	// A plain descriptor, not an *os.File: os.Open tries to register every file with the runtime's
	// poller (five fcntl and epoll_ctl calls for a regular file, and on the first file the poller
	// itself: epoll_create1, eventfd2 and a thread woken to poll), which gaffer exec, reading
	// these two files and then exec'ing, never needs.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	sc := bufio.NewScanner(fdReader{fd: fd, path: path})
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var fields []string // reused: fn must not keep it (it may keep the strings)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		// One string per line, its fields slices of it: strings.Split made a slice per line
		// too, and gaffer exec reads every line of /etc/group.
		rest := string(line)
		fields = fields[:0]
		for {
			f, r, more := strings.Cut(rest, ":")
			fields = append(fields, f)
			if !more {
				break
			}
			rest = r
		}
		if len(fields) < nfields {
			continue
		}
		if !fn(fields) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// fdReader reads a file descriptor with read(2), retrying when interrupted.
type fdReader struct {
	fd   int
	path string
}

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(r.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: r.path, Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
