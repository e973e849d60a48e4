package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gaffer/core"
	"gaffer/signals"
	"gaffer/stats"
)

const (
	defaultTail     = 100
	defaultInterval = time.Second
	minInterval     = 100 * time.Millisecond
)

// handler answers one route.
type handler func(*Server, *exchange)

// route finds the handler of the request's method and path, filling x.name, x.label and x.query.
// Path segments are split before they are percent-decoded, so that a %2F stays inside a name.
func (x *exchange) route() (handler, error) {
	path := x.req.Path
	if path == "" || path[0] != '/' {
		return nil, errStatus(404, "no such route: "+path)
	}
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		if strings.IndexByte(seg, '%') < 0 {
			continue
		}
		u, err := url.PathUnescape(seg)
		if err != nil {
			return nil, errStatus(400, "malformed path "+strconv.Quote(path))
		}
		segs[i] = u
	}
	var get, post handler
	switch {
	case len(segs) == 1 && segs[0] == "healthz":
		get = (*Server).getHealth
	case len(segs) == 1 && segs[0] == "metrics":
		get = (*Server).getMetrics
	case len(segs) == 2 && segs[0] == "v1":
		switch segs[1] {
		case "info":
			get = (*Server).getInfo
		case "processes":
			get = (*Server).getProcesses
		case "stats":
			get = (*Server).getStats
		case "events":
			get = (*Server).getEvents
		case "shutdown":
			post = (*Server).postShutdown
		case "health":
			get = (*Server).getHealthReport
		case "reload":
			post = (*Server).postReload
		}
	case len(segs) >= 3 && segs[0] == "v1" && segs[1] == "processes" && segs[2] != "":
		x.name = segs[2]
		switch {
		case len(segs) == 3:
			get = (*Server).getProcess
		case len(segs) == 4:
			switch segs[3] {
			case "stats":
				get = (*Server).getProcessStats
			case "logs":
				get = (*Server).getLogs
			case "signal":
				post = (*Server).postSignal
			case "start":
				post = (*Server).postStart
			case "stop":
				post = (*Server).postStop
			case "restart":
				post = (*Server).postRestart
			case "stdin":
				post = (*Server).postStdin
			case "scale":
				post = (*Server).postScale
			}
		case len(segs) == 5 && segs[3] == "streams" && segs[4] != "":
			x.label = segs[4]
			post = (*Server).postStream
		}
	}
	var h handler
	switch {
	case get == nil && post == nil:
		return nil, errStatus(404, "no such route: "+path)
	case x.req.Method == "GET" && get != nil:
		h = get
	case x.req.Method == "POST" && post != nil:
		h = post
	default:
		x.allow = "GET"
		if post != nil {
			x.allow = "POST"
		}
		return nil, errStatus(405, "method "+x.req.Method+" not allowed on "+path+" (use "+x.allow+")")
	}
	q, err := url.ParseQuery(x.req.Query)
	if err != nil {
		return nil, errStatus(400, "malformed query string")
	}
	x.query = q
	return h, nil
}

// flag reads a boolean query parameter: absent is false, present without a value is true.
func (x *exchange) flag(key string) (bool, error) {
	v, ok := x.query[key]
	if !ok {
		return false, nil
	}
	if v[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v[0])
	if err != nil {
		return false, errStatus(400, fmt.Sprintf("%s must be 1 or 0, not %q", key, v[0]))
	}
	return b, nil
}

// interval reads ?interval=: a duration ("500ms", "2s") or seconds ("2", "0.5").
func (x *exchange) interval() (time.Duration, error) {
	v := x.query.Get("interval")
	if v == "" {
		return defaultInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || math.IsNaN(f) || f > 1e9 {
			return 0, errStatus(400, fmt.Sprintf("malformed interval %q", v))
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < minInterval {
		return 0, errStatus(400, fmt.Sprintf("interval %q is below the minimum %v", v, minInterval))
	}
	return d, nil
}

// decode reads the request body as exactly one JSON object with only known fields.
func (x *exchange) decode(v any) error {
	if len(bytes.TrimSpace(x.body)) == 0 {
		return errStatus(400, "the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(x.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errStatus(400, "malformed JSON body: "+err.Error())
	}
	if dec.More() {
		return errStatus(400, "malformed JSON body: data after the object")
	}
	return nil
}

// ok is the answer of actions: {"ok": true}.
type ok struct {
	OK bool `json:"ok"`
}

func (s *Server) info() core.Info {
	info := s.opts.Backend.Info()
	info.Goroutines = runtime.NumGoroutine()
	info.OpenFDs = openFDs()
	if info.Version == "" {
		info.Version = s.opts.Version
	}
	if info.Socket == "" {
		info.Socket = s.opts.Path
	}
	return info
}

func (s *Server) getInfo(x *exchange) { x.json(200, s.info()) }

// openFDs counts gaffer's open file descriptors, or returns -1 when /proc cannot tell.
func openFDs() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // not the descriptor reading the directory
}

func (s *Server) processes() []core.Process {
	procs := s.opts.Backend.Processes()
	if procs == nil {
		procs = []core.Process{}
	}
	return procs
}

func (s *Server) getProcesses(x *exchange) { x.json(200, s.processes()) }

// processDetail is GET /v1/processes/{name}: the process and its configuration.
type processDetail struct {
	core.Process
	Config map[string]any `json:"config"`
}

func (s *Server) getProcess(x *exchange) {
	p, cfg, err := s.opts.Backend.Process(x.name)
	if err != nil {
		x.fail(err)
		return
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	x.json(200, processDetail{p, cfg})
}

// snapshot measures every running process.
func (s *Server) snapshot(ctx context.Context) (stats.Snapshot, error) {
	if s.opts.Stats == nil {
		return stats.Snapshot{}, errStatus(409, "stats are not available")
	}
	snap, err := s.opts.Stats(ctx, s.opts.Backend.Pids())
	if err != nil {
		return snap, fmt.Errorf("cannot collect stats: %w", err)
	}
	if snap.Processes == nil {
		snap.Processes = []stats.Entry{}
	}
	return snap, nil
}

// entry measures one process (by the name Backend.Process knows it by); a process that is not
// running has an entry of zeros.
func (s *Server) entry(ctx context.Context, name string) (stats.Entry, error) {
	if s.opts.Stats == nil {
		return stats.Entry{}, errStatus(409, "stats are not available")
	}
	p, _, err := s.opts.Backend.Process(name)
	if err != nil {
		return stats.Entry{}, err
	}
	e := stats.Entry{Name: p.Name}
	if p.Pid == 0 {
		return e, nil
	}
	// Every process's pids, not just this one's: the stats cache holds one snapshot of them all.
	snap, err := s.snapshot(ctx)
	if err != nil {
		return e, err
	}
	for _, pe := range snap.Processes {
		if pe.Name == p.Name {
			return pe, nil
		}
	}
	e.Pid = p.Pid
	return e, nil
}

// snapshotJSON is snapshot encoded as a JSON line. Stats returns the same snapshot while its
// cache is fresh, and encoding 100 processes costs more than all the rest of a request: the last
// encoding is kept for as long as Stats returns that snapshot (same Time, same Processes array).
func (s *Server) snapshotJSON(ctx context.Context) ([]byte, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	key := snapKey{time: snap.Time, n: len(snap.Processes)}
	if key.n > 0 {
		key.first = &snap.Processes[0]
	}
	s.snapMu.Lock()
	c := s.snapCache
	s.snapMu.Unlock()
	if c.body != nil && c.key.same(key) {
		return c.body, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(snap); err != nil {
		return nil, fmt.Errorf("cannot encode stats: %w", err)
	}
	body := buf.Bytes()
	s.snapMu.Lock()
	s.snapCache = encodedSnapshot{key, body}
	s.snapMu.Unlock()
	return body, nil
}

// snapKey identifies a snapshot returned by Stats.
type snapKey struct {
	time  time.Time
	n     int
	first *stats.Entry
}

func (k snapKey) same(o snapKey) bool {
	return k.time.Equal(o.time) && k.n == o.n && k.first == o.first && !k.time.IsZero()
}

// encodedSnapshot is a snapshot's JSON line; body is never modified once made.
type encodedSnapshot struct {
	key  snapKey
	body []byte
}

func (s *Server) getStats(x *exchange) {
	s.statsRoute(x, func(ctx context.Context) (any, error) {
		b, err := s.snapshotJSON(ctx)
		return jsonLine(b), err
	})
}

// jsonLine is a value already encoded as one JSON line.
type jsonLine []byte

func (s *Server) getProcessStats(x *exchange) {
	s.statsRoute(x, func(ctx context.Context) (any, error) { return s.entry(ctx, x.name) })
}

// statsRoute answers once, or with ?watch=1 every interval until the client goes.
func (s *Server) statsRoute(x *exchange, measure func(context.Context) (any, error)) {
	watch, err := x.flag("watch")
	if err != nil {
		x.fail(err)
		return
	}
	every, err := x.interval()
	if err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := x.streamContext()
	defer cancel()
	v, err := measure(ctx)
	if err != nil {
		x.fail(err)
		return
	}
	if !watch {
		x.json(200, v)
		return
	}
	st := x.begin(cancel)
	defer st.end()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if st.send(v) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if v, err = measure(ctx); err != nil {
			if ctx.Err() == nil {
				st.send(errorBody{err.Error()}) // the process went away, or stats failed: say why
			}
			return
		}
	}
}

// signalRequest is the body of POST /v1/processes/{name}/signal.
type signalRequest struct {
	Signal json.RawMessage `json:"signal"` // "HUP", "SIGHUP", "1" or 1
	Group  bool            `json:"group"`
}

func (s *Server) postSignal(x *exchange) {
	var req signalRequest
	if err := x.decode(&req); err != nil {
		x.fail(err)
		return
	}
	sig, err := parseSignal(req.Signal)
	if err != nil {
		x.fail(err)
		return
	}
	if err := s.opts.Backend.Signal(x.name, sig, req.Group); err != nil {
		x.fail(err)
		return
	}
	x.json(200, ok{true})
}

// parseSignal reads a signal given as a JSON string (name or number) or number.
func parseSignal(raw json.RawMessage) (syscall.Signal, error) {
	var name string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return 0, errStatus(400, `the body needs "signal"`)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &name); err != nil {
			return 0, errStatus(400, "malformed signal")
		}
	default:
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, errStatus(400, "signal must be a name or a number")
		}
		name = strconv.Itoa(n)
	}
	sig, err := signals.Parse(name)
	if err != nil {
		return 0, errStatus(400, err.Error())
	}
	return sig, nil
}

// errUnsupported answers a route of a capability the Backend lacks. Only gaffer -- lacks any.
var errUnsupported = fmt.Errorf("not available in gaffer -- mode (use gaffer up): %w", core.ErrConflict)

// capability returns the Backend as T (core.Starter, core.Scaler, ...), or errUnsupported.
func capability[T any](b core.Backend) (T, error) {
	c, ok := b.(T)
	if !ok {
		return c, errUnsupported
	}
	return c, nil
}

func (s *Server) postStart(x *exchange) {
	s.action(x, func(ctx context.Context, name string, wait bool) error {
		b, err := capability[core.Starter](s.opts.Backend)
		if err != nil {
			return err
		}
		return b.Start(ctx, name, wait)
	})
}

func (s *Server) postStop(x *exchange) { s.action(x, s.opts.Backend.Stop) }

func (s *Server) postRestart(x *exchange) {
	s.action(x, func(ctx context.Context, name string, wait bool) error {
		b, err := capability[core.Starter](s.opts.Backend)
		if err != nil {
			return err
		}
		return b.Restart(ctx, name, wait)
	})
}

// action runs start, stop or restart; with ?wait=1 the Backend waits, for at most waitTimeout.
func (s *Server) action(x *exchange, do func(context.Context, string, bool) error) {
	wait, err := x.flag("wait")
	if err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitTimeout)
	defer cancel()
	if err := do(ctx, x.name, wait); err != nil {
		x.fail(err)
		return
	}
	x.json(200, ok{true})
}

// written is the answer of stdin and stream writes.
type written struct {
	OK    bool `json:"ok"`
	Bytes int  `json:"bytes"`
}

func (s *Server) postStdin(x *exchange) {
	b, err := capability[core.InputWriter](s.opts.Backend)
	if err == nil {
		err = b.WriteStdin(x.name, x.body)
	}
	if err != nil {
		x.fail(err)
		return
	}
	x.json(200, written{true, len(x.body)})
}

func (s *Server) postStream(x *exchange) {
	b, err := capability[core.InputWriter](s.opts.Backend)
	if err == nil {
		err = b.WriteStream(x.name, x.label, x.body)
	}
	if err != nil {
		x.fail(err)
		return
	}
	x.json(200, written{true, len(x.body)})
}

// scaleRequest is the body of POST /v1/processes/{name}/scale.
type scaleRequest struct {
	NumProcesses *int `json:"numprocesses"`
}

func (s *Server) postScale(x *exchange) {
	var req scaleRequest
	if err := x.decode(&req); err != nil {
		x.fail(err)
		return
	}
	if req.NumProcesses == nil {
		x.fail(errStatus(400, `the body needs "numprocesses"`))
		return
	}
	if *req.NumProcesses < 0 {
		x.fail(errStatus(400, "numprocesses must not be negative"))
		return
	}
	b, err := capability[core.Scaler](s.opts.Backend)
	if err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitTimeout)
	defer cancel()
	if err := b.Scale(ctx, x.name, *req.NumProcesses); err != nil {
		x.fail(err)
		return
	}
	x.json(200, ok{true})
}

func (s *Server) getLogs(x *exchange) {
	follow, err := x.flag("follow")
	if err != nil {
		x.fail(err)
		return
	}
	tail := defaultTail
	if v := x.query.Get("tail"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil || tail < 0 {
			x.fail(errStatus(400, fmt.Sprintf("tail must be a number of lines, not %q", v)))
			return
		}
	}
	b, err := capability[core.LogReader](s.opts.Backend)
	if err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := x.streamContext()
	defer cancel()
	lines, ch, err := b.Logs(ctx, x.name, x.query.Get("stream"), tail, follow)
	if err != nil {
		x.fail(err)
		return
	}
	if !follow || ch == nil {
		x.buf.Reset()
		for _, l := range lines {
			x.enc.Encode(l)
		}
		x.respond(200, typeJSONSeq, x.buf.Bytes())
		return
	}
	st := x.begin(cancel)
	defer st.end()
	for _, l := range lines {
		if st.send(l) != nil {
			return
		}
	}
	lines = nil // the tail's strings can go while the stream follows
	for {
		select {
		case <-ctx.Done():
			return
		case l, open := <-ch:
			if !open || st.sendDropped(l.Dropped) != nil || st.send(l) != nil {
				return
			}
		}
	}
}

// getEvents streams events, with or without ?follow=1: a list of past events has no meaning.
func (s *Server) getEvents(x *exchange) {
	if _, err := x.flag("follow"); err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := x.streamContext()
	defer cancel()
	ch := s.opts.Backend.Events(ctx)
	st := x.begin(cancel)
	defer st.end()
	for {
		select {
		case <-ctx.Done():
			return
		case e, open := <-ch:
			if !open || st.sendDropped(e.Dropped) != nil || st.send(e) != nil {
				return
			}
		}
	}
}

func (s *Server) postShutdown(x *exchange) {
	drain := x.query.Get("drain") != "0"
	x.closing = true
	x.json(202, ok{true})
	// After answering, and apart: the shutdown closes this server, and Close waits for handlers.
	go func() {
		defer func() {
			if r := recover(); r != nil {
				s.opts.Logf("api: panic in Backend.Shutdown: %v\n%s", r, debug.Stack())
			}
		}()
		s.opts.Backend.Shutdown(drain)
	}()
}

// health is GET /healthz.
type health struct {
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons,omitempty"`
}

func (s *Server) getHealth(x *exchange) {
	r, err := s.opts.Backend.Health(core.LevelReady, nil)
	if err != nil {
		x.fail(err)
		return
	}
	if r.OK {
		x.json(200, health{OK: true})
		return
	}
	var reasons []string
	for _, f := range r.Failing {
		if f.Name != "" {
			reasons = append(reasons, f.Name+" "+f.Reason)
		} else {
			reasons = append(reasons, f.Reason)
		}
	}
	if len(reasons) == 0 {
		reasons = []string{"unhealthy"}
	}
	x.json(503, health{false, reasons})
}

// getHealthReport is GET /v1/health?level=alive|ready&name=NAME...: 200 with the report when it
// is OK, 503 with it when not.
func (s *Server) getHealthReport(x *exchange) {
	level := x.query.Get("level")
	switch level {
	case "":
		level = core.LevelAlive
	case core.LevelAlive, core.LevelReady:
	default:
		x.fail(errStatus(400, fmt.Sprintf("level must be %s or %s, not %q", core.LevelAlive, core.LevelReady, level)))
		return
	}
	names := x.query["name"]
	for _, n := range names {
		if n == "" {
			x.fail(errStatus(400, "empty name"))
			return
		}
	}
	r, err := s.opts.Backend.Health(level, names)
	if err != nil {
		x.fail(err)
		return
	}
	if r.Level == "" {
		r.Level = level
	}
	if r.Failing == nil {
		r.Failing = []core.HealthFailure{}
	}
	code := 200
	if !r.OK {
		code = 503
	}
	x.json(code, r)
}

// postReload is POST /v1/reload?dry_run=1: 200 with the result when it was applied (or, dry, would
// be), 422 with it when the new configuration has errors and nothing changed; 409 in gaffer --.
func (s *Server) postReload(x *exchange) {
	dry, err := x.flag("dry_run")
	if err != nil {
		x.fail(err)
		return
	}
	b, err := capability[core.Reloader](s.opts.Backend)
	if err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitTimeout)
	defer cancel()
	r, err := b.Reload(ctx, dry)
	if err != nil {
		x.fail(err)
		return
	}
	if r.Plan == nil {
		r.Plan = []core.ReloadStep{}
	}
	code := 200
	if len(r.Errors) > 0 {
		code = 422
	}
	x.json(code, r)
}

func (s *Server) getMetrics(x *exchange) {
	var snap stats.Snapshot
	if s.opts.Stats != nil {
		var err error
		if snap, err = s.snapshot(s.ctx); err != nil {
			x.fail(err)
			return
		}
	}
	info, procs := s.info(), s.processes()
	x.buf.Reset()
	if err := WriteMetrics(x.buf, info, procs, snap); err != nil {
		x.fail(fmt.Errorf("cannot write metrics: %w", err))
		return
	}
	x.respond(200, MetricsContentType, x.buf.Bytes())
}
