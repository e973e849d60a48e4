package cli

import (
	"context"
	"os"
	"strconv"

	"gaffer/api"
	"gaffer/config"
	"gaffer/core"
	pid1 "gaffer/init"
	"gaffer/spawn"
	"gaffer/stats"

	"github.com/urfave/cli/v2"
)

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
	opts     api.Options
	explicit bool        // asked for (flag, variable, config): failing to listen is an error
	srv      *api.Server // listening already (explicit), or nil
}

// planSocket decides the socket: a flag or GAFFER_SOCKET, else the config's socket key, else the
// default path when gaffer is PID 1 or runs `gaffer up`; "" anywhere turns it off. It returns nil
// for no socket.
func planSocket(c *cli.Context, s *config.Settings, version string, isInit, up bool) (*socketPlan, error) {
	p := &socketPlan{opts: api.Options{Mode: 0o600, Group: -1, Version: version}}
	from := "--socket"
	switch {
	case c.IsSet("socket"):
		p.opts.Path, p.explicit = c.String("socket"), true
	case s != nil && s.SocketSet:
		p.opts.Path, p.explicit, from = s.Socket, true, "settings.socket"
	case isInit || up:
		p.opts.Path = defaultSocket
	}
	if p.opts.Path == "" {
		return nil, nil
	}
	p.opts.Stats = stats.NewCollector(stats.Options{}).Snapshot
	if s != nil {
		p.opts.Mode, p.opts.Group, p.opts.AllowUIDs = s.SocketMode, s.SocketGID, s.SocketAllowUIDs
	}
	if m := c.String("socket-mode"); m != "" {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil || n > 0o777 {
			return nil, usagef("--socket-mode %q: want an octal mode like 0660", m)
		}
		p.opts.Mode = os.FileMode(n)
	}
	if g := c.String("socket-group"); g != "" {
		id, err := spawn.SystemUsers().Lookup(":" + g)
		if err != nil {
			return nil, usagef("--socket-group: %v", err)
		}
		p.opts.Group = int(id.GID)
	}
	for _, u := range c.StringSlice("socket-allow-uid") {
		n, err := strconv.Atoi(u)
		if err != nil || n < 0 {
			return nil, usagef("--socket-allow-uid %q: want a uid", u)
		}
		p.opts.AllowUIDs = append(p.opts.AllowUIDs, n)
	}
	if p.explicit {
		srv, err := api.Listen(p.opts)
		if err != nil {
			return nil, usagef("%s %s: %v", from, p.opts.Path, err)
		}
		p.srv = srv
	}
	return p, nil
}

// serve is the hook pid1 calls once the processes run: it listens at the default path if that was
// not done already (a failure there is one warning, never the init's end), and serves b.
func (p *socketPlan) serve(warnf pid1.Logf) func(core.Backend) func() {
	if p == nil {
		return nil
	}
	return func(b core.Backend) func() {
		srv := p.srv
		if srv == nil {
			var err error
			if srv, err = api.Listen(p.opts); err != nil {
				warnf("no API socket: %v", err)
				return func() {}
			}
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
		}
	}
}

// close releases a socket that was listened on but never served (gaffer failed before).
func (p *socketPlan) close() {
	if p != nil && p.srv != nil {
		_ = p.srv.Close()
	}
}
