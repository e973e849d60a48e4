package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"gaffer/api"
	"gaffer/config"
	"gaffer/core"
	pid1 "gaffer/init"
	"gaffer/sockfile"
	"gaffer/spawn"
	"gaffer/stats"

	"github.com/urfave/cli/v2"
)

// socketName is the socket's file name in a fallback directory.
const socketName = "gaffer.sock"

// socketCandidate is one place for the API socket when none was asked for.
type socketCandidate struct {
	path    string // the socket
	dir     string // its directory, when it must exist already ($XDG_RUNTIME_DIR); else ""
	private string // its private directory gaffer-<uid>, made 0700 (or checked) first; else ""
}

// defaultSockets lists, in order, where gaffer listens when no socket was asked for, and where
// client commands look for it: /run/gaffer.sock; $XDG_RUNTIME_DIR/gaffer.sock when the variable is
// an absolute path; gaffer-<uid>/gaffer.sock under $TMPDIR (when absolute), then under /tmp.
// gaffer falls back to the next one only when it cannot listen on one (not when another gaffer
// answers there); a client takes the first that accepts a connection.
func defaultSockets(getenv func(string) string, uid int) []socketCandidate {
	c := []socketCandidate{{path: defaultSocket}}
	if x := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		x = filepath.Clean(x)
		c = append(c, socketCandidate{path: filepath.Join(x, socketName), dir: x})
	}
	var tmps []string
	if t := getenv("TMPDIR"); filepath.IsAbs(t) {
		tmps = append(tmps, filepath.Clean(t))
	}
	if len(tmps) == 0 || tmps[0] != "/tmp" {
		tmps = append(tmps, "/tmp")
	}
	for _, t := range tmps {
		dir := filepath.Join(t, sockfile.PrivateDirName(uid))
		c = append(c, socketCandidate{path: filepath.Join(dir, socketName), private: dir})
	}
	return c
}

// prepare makes what the candidate needs before gaffer listens on it: its private directory, or
// the check that $XDG_RUNTIME_DIR exists (gaffer never creates that one).
func (c socketCandidate) prepare() error {
	switch {
	case c.private != "":
		return sockfile.MakePrivateDir(c.private)
	case c.dir != "":
		st, err := os.Stat(c.dir)
		if err != nil {
			return fmt.Errorf("$XDG_RUNTIME_DIR %s: %w", c.dir, errnoOf(err))
		}
		if !st.IsDir() {
			return fmt.Errorf("$XDG_RUNTIME_DIR %s: not a directory", c.dir)
		}
	}
	return nil
}

// errnoOf reduces err to its errno when it has one, whose message reads well after a subject.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// listenReason says in a few words why gaffer could not listen on path: "PATH: permission
// denied", or err's own message when it is no plain system error (a refused directory).
func listenReason(path string, err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return path + ": " + errno.Error()
	}
	return err.Error()
}

// socketFlags are the API socket's flags of run and up.
func socketFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "socket", EnvVars: []string{"GAFFER_SOCKET"}, Usage: "serve the API on `PATH` (\"\": no socket; default " + defaultSocket + " as PID 1 and in up)"},
		&cli.StringFlag{Name: "socket-mode", EnvVars: []string{"GAFFER_SOCKET_MODE"}, Usage: "permissions of the socket, octal `MODE` (default 0600)"},
		&cli.StringFlag{Name: "socket-group", EnvVars: []string{"GAFFER_SOCKET_GROUP"}, Usage: "`GROUP` (name or gid) that owns the socket"},
		&cli.StringSliceFlag{Name: "socket-allow-uid", EnvVars: []string{"GAFFER_SOCKET_ALLOW_UIDS"}, Usage: "`UID` allowed to use the API besides root and gaffer's (repeatable)"},
	}
}

// socketPlan is where and how gaffer serves its API, decided before anything starts.
type socketPlan struct {
	explicit bool // asked for (flag, variable, config): failing to listen is an error
	// fallbacks are where gaffer listens when it cannot at the default path (not explicit).
	fallbacks []socketCandidate
	// What the flags (or GAFFER_SOCKET_*) say about access: they win over the configuration's
	// settings, at start and on a reload.
	modeFlag  *os.FileMode
	groupFlag *int
	uidFlags  []int

	// mu serialises listening, serving's end and a reload's change of access.
	mu   sync.Mutex
	opts api.Options // Mode, Group and AllowUIDs follow reloads; guarded by mu
	srv  *api.Server // listening (explicit, or once served), or nil; guarded by mu
}

// planSocket decides the socket: a flag or GAFFER_SOCKET, else the config's socket key, else the
// default path when gaffer is PID 1 or runs `gaffer up`; "" anywhere turns it off. It returns nil
// for no socket.
func planSocket(c *cli.Context, s *config.Settings, version string, isInit, up bool) (*socketPlan, error) {
	p := &socketPlan{opts: api.Options{Mode: 0o600, Group: -1, Version: version, Logf: logTo(c.App.ErrWriter)}}
	from := "--socket"
	switch {
	case c.IsSet("socket"):
		p.opts.Path, p.explicit = c.String("socket"), true
	case s != nil && s.SocketSet:
		p.opts.Path, p.explicit, from = s.Socket, true, "settings.socket"
	case isInit || up:
		p.opts.Path = defaultSocket
		p.fallbacks = defaultSockets(os.Getenv, os.Geteuid())[1:]
	}
	if p.opts.Path == "" {
		return nil, nil
	}
	p.opts.Stats = stats.NewCollector(stats.Options{}).Snapshot
	if m := c.String("socket-mode"); m != "" {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil || n > 0o777 {
			return nil, usagef("--socket-mode %q: want an octal mode like 0660", m)
		}
		mode := os.FileMode(n)
		p.modeFlag = &mode
	}
	if g := c.String("socket-group"); g != "" {
		id, err := spawn.SystemUsers().Lookup(":" + g)
		if err != nil {
			return nil, usagef("--socket-group: %v", err)
		}
		gid := int(id.GID)
		p.groupFlag = &gid
	}
	for _, u := range c.StringSlice("socket-allow-uid") {
		n, err := strconv.Atoi(u)
		if err != nil || n < 0 {
			return nil, usagef("--socket-allow-uid %q: want a uid", u)
		}
		p.uidFlags = append(p.uidFlags, n)
	}
	p.setAccess(s)
	if p.explicit {
		srv, err := api.Listen(p.opts)
		if err != nil {
			return nil, usagef("%s %s: %v", from, p.opts.Path, err)
		}
		p.srv = srv
	}
	return p, nil
}

// setAccess sets the socket's mode, group and allowed uids in p.opts from the settings s (nil:
// none) and the flags, which win; the uids of both are allowed.
func (p *socketPlan) setAccess(s *config.Settings) {
	p.opts.Mode, p.opts.Group, p.opts.AllowUIDs = 0o600, -1, nil
	if s != nil {
		p.opts.Mode, p.opts.Group = s.SocketMode, s.SocketGID
		p.opts.AllowUIDs = append(p.opts.AllowUIDs, s.SocketAllowUIDs...)
	}
	if p.modeFlag != nil {
		p.opts.Mode = *p.modeFlag
	}
	if p.groupFlag != nil {
		p.opts.Group = *p.groupFlag
	}
	p.opts.AllowUIDs = append(p.opts.AllowUIDs, p.uidFlags...)
}

// access is pid1.UpConfig.SocketAccess: it applies a reload's socket_mode, socket_group (a gid
// already, resolved when the configuration was read; -1 when not given, the group gaffer made
// the socket with) and socket_allow_uids to the socket gaffer serves on, under the flags, which
// still win (see api.Server.SetAccess for what happens to open connections). Before gaffer
// listens, the new settings are what it will listen with; with no socket there is nothing to do.
func (p *socketPlan) access(next config.Settings) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setAccess(&next)
	if p.srv == nil {
		return nil
	}
	return p.srv.SetAccess(p.opts.Mode, p.opts.Group, p.opts.AllowUIDs)
}

// serve is the hook pid1 calls once the processes run: it listens at the default path, or at a
// fallback, if that was not done already (a failure there is one warning, never the init's end),
// and serves b.
func (p *socketPlan) serve(warnf pid1.Logf) func(core.Backend) func() {
	if p == nil {
		return nil
	}
	return func(b core.Backend) func() {
		p.mu.Lock()
		if p.srv == nil {
			p.srv = p.listenDefault(warnf)
		}
		srv := p.srv
		p.mu.Unlock()
		if srv == nil {
			return func() {}
		}
		srv.SetBackend(b)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ctx); err != nil {
				warnf("API socket: %v", err)
			}
		}()
		return func() {
			cancel()
			<-done
			p.mu.Lock()
			p.srv = nil // closed by Serve's end: a late reload has nothing to change
			p.mu.Unlock()
		}
	}
}

// listenDefault listens at the default path or, when gaffer cannot use it, at the first fallback
// it can use, and says where in one line; nil when nowhere (one warning). A default path where
// another gaffer answers is not a reason to fall back: clients would find that other gaffer first.
// Call it with mu held.
func (p *socketPlan) listenDefault(warnf pid1.Logf) *api.Server {
	srv, err := api.Listen(p.opts)
	if err == nil {
		return srv
	}
	if errors.Is(err, api.ErrInUse) || len(p.fallbacks) == 0 {
		warnf("no API socket: %v", err)
		return nil
	}
	why := []string{listenReason(p.opts.Path, err)}
	for _, c := range p.fallbacks {
		if err := c.prepare(); err != nil {
			why = append(why, err.Error())
			continue
		}
		o := p.opts
		o.Path = c.path
		srv, err := api.Listen(o)
		if err != nil {
			why = append(why, listenReason(c.path, err))
			continue
		}
		warnf("API socket at %s (%s)", c.path, strings.Join(why, "; "))
		return srv
	}
	warnf("no API socket: %s", strings.Join(why, "; "))
	return nil
}

// close releases a socket that was listened on but never served (gaffer failed before).
func (p *socketPlan) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}
