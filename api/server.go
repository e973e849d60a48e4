package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"gaffer/stats"

	"golang.org/x/sys/unix"
)

// Defaults of Options.
const (
	DefaultMode          = 0o600
	DefaultMaxBody       = 1 << 20
	DefaultMaxHeader     = 64 << 10
	DefaultHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultMaxConns      = 256
)

const (
	bodyTimeout  = 30 * time.Second // to receive a request body
	writeTimeout = 30 * time.Second // to write a response, or one line of a stream
	waitTimeout  = 60 * time.Second // start/stop/restart?wait=1
	closeGrace   = 2 * time.Second  // Close waits this long for handlers before cutting connections
	lingerTime   = 500 * time.Millisecond
	lingerBytes  = 4 << 20
)

// Options configure the API server. Path and Backend are required (Backend may instead be given
// to SetBackend before Serve); zero values of the rest mean the defaults.
type Options struct {
	Path      string      // the socket's path
	Mode      os.FileMode // the socket file's permissions; 0 means 0600
	Group     int         // the socket file's group id; -1 leaves it (0 is root's group, not "unset")
	AllowUIDs []int       // peers allowed besides root and gaffer's own uid
	Version   string      // gaffer's version, for /v1/info when the Backend leaves it empty
	Backend   Backend
	// Stats measures the given processes (name -> pid); it should cache, since clients may ask
	// often. The server keeps its JSON encoding of a snapshot while Stats returns the same one
	// (same Time and Processes array), so Stats must never modify a snapshot it has returned.
	// Nil makes the stats routes answer 409 and /metrics go without resource metrics.
	Stats   func(ctx context.Context, pids map[string]int) (stats.Snapshot, error)
	MaxBody int64                            // request body limit in bytes; 0 means 1 MiB
	Logf    func(format string, args ...any) // the server's own trouble: panics, accept errors, 500s; nil discards

	MaxHeader     int           // request line plus headers, in bytes; 0 means 64 KiB
	HeaderTimeout time.Duration // to receive a request's line and headers; 0 means 5 s
	IdleTimeout   time.Duration // a kept-alive connection waits this long for the next request; 0 means 60 s
	MaxConns      int           // connections served at once, more get 503; 0 means 256
}

// Server serves the API on a Unix socket. Create it with Listen.
type Server struct {
	opts    Options
	ln      *net.UnixListener
	ino     uint64 // the socket file's inode: Close removes only the file it created
	selfUID int
	ctx     context.Context // cancelled by Close: ends streams and waits
	cancel  context.CancelFunc
	sem     chan struct{} // one token per connection being served
	wg      sync.WaitGroup

	closeDone chan struct{} // closed when Close has finished

	snapMu    sync.Mutex
	snapCache encodedSnapshot // guarded by snapMu

	mu     sync.Mutex
	conns  map[*conn]struct{} // guarded by mu
	closed bool               // guarded by mu
}

// Listen creates the socket: its parent directory if missing (0755), replacing a stale socket
// file that nobody answers on. It fails when another process answers on Path, when Path exists and
// is not a socket, and on any failure to listen or to apply Mode and Group.
func Listen(opts Options) (*Server, error) {
	if opts.Path == "" {
		return nil, errors.New("no socket path")
	}
	path := opts.Path
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the socket's directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", path, unwrapSyscall(err))
	}
	ln.SetUnlinkOnClose(false) // Close removes the file itself, and only if it is still ours
	s := newServer(opts)
	opts = s.opts
	fail := func(err error) (*Server, error) {
		s.cancel()
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	// Between bind and chmod the file has the umask's mode; the peer-uid check covers that window
	// (changing the umask would race with children being spawned).
	if err := os.Chmod(path, opts.Mode.Perm()); err != nil {
		return fail(fmt.Errorf("cannot set the socket's mode: %w", err))
	}
	if opts.Group >= 0 {
		if err := os.Chown(path, -1, opts.Group); err != nil {
			return fail(fmt.Errorf("cannot set the socket's group: %w", err))
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fail(fmt.Errorf("cannot stat %s: %w", path, err))
	}
	s.ln, s.ino = ln, st.Ino
	return s, nil
}

// newServer applies the defaults of opts and makes a Server without its listener.
func newServer(opts Options) *Server {
	if opts.Mode == 0 {
		opts.Mode = DefaultMode
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxHeader <= 0 {
		opts.MaxHeader = DefaultMaxHeader
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = DefaultHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:      opts,
		selfUID:   os.Getuid(),
		ctx:       ctx,
		cancel:    cancel,
		sem:       make(chan struct{}, opts.MaxConns),
		conns:     map[*conn]struct{}{},
		closeDone: make(chan struct{}),
	}
}

// removeStale removes a socket file that nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", path, unwrapSyscall(err))
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("cannot listen on %s: it exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("another gaffer is listening on %s", path)
	case errors.Is(err, syscall.EAGAIN):
		// A full backlog: something is listening, just busy.
		return fmt.Errorf("another gaffer is listening on %s", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove stale socket %s: %w", path, unwrapSyscall(err))
		}
		return nil
	}
	return fmt.Errorf("cannot check the existing socket %s: %w", path, unwrapSyscall(err))
}

// SetBackend sets the Backend when Options had none (gaffer listens before its processes run).
// Call it before Serve.
func (s *Server) SetBackend(b Backend) { s.opts.Backend = b }

// Path returns the socket's path.
func (s *Server) Path() string { return s.opts.Path }

// Serve accepts connections until ctx ends or Close is called, and then closes the server
// (Close has finished when Serve returns). Errors of accept are logged and retried with a backoff;
// it returns an error only when there is no Backend.
func (s *Server) Serve(ctx context.Context) error {
	if s.opts.Backend == nil {
		s.Close()
		return errors.New("api: Serve without a Backend")
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.Close()
				return nil
			}
			// Out of file descriptors and the like: back off like net/http, never spin, never
			// give up (the socket is the only way in).
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.opts.Logf("api: accept: %v; retrying in %v", err, delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				s.Close()
				return nil
			}
			continue
		}
		delay = 0
		s.accept(c)
	}
}

// accept starts serving one connection, or answers 503 when MaxConns are busy.
func (s *Server) accept(c *net.UnixConn) {
	sc := &conn{Conn: c}
	if raw, err := c.SyscallConn(); err == nil {
		sc.raw = raw
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
	default:
		go func() {
			defer s.done(sc)
			x := s.newExchange(sc)
			x.closing = true
			x.fail(errStatus(503, "too many connections"))
			s.linger(sc)
		}()
		return
	}
	go func() {
		defer func() { <-s.sem }()
		defer s.done(sc)
		s.serveConn(sc, s.peerAllowed(sc))
	}()
}

func (s *Server) done(sc *conn) {
	sc.Close()
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	s.wg.Done()
}

// peerAllowed reads the peer's uid (SO_PEERCRED) and checks it.
func (s *Server) peerAllowed(sc *conn) bool {
	uid, err := peerUID(sc.raw)
	if err != nil {
		s.opts.Logf("api: cannot read the peer's credentials: %v", err)
		return false
	}
	return allowed(uid, s.selfUID, s.opts.AllowUIDs)
}

func peerUID(raw syscall.RawConn) (int, error) {
	if raw == nil {
		return 0, errors.New("not a socket")
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return int(cred.Uid), nil
}

// allowed reports whether a peer with uid may use the API: root, gaffer's own uid, or one listed.
func allowed(uid, self int, allow []int) bool {
	return uid == 0 || uid == self || slices.Contains(allow, uid)
}

// Close stops accepting, ends streams and waits, lets requests being handled finish for a moment,
// then cuts every connection and removes the socket file (if it is still the one Listen made).
// It is safe to call more than once, and from several goroutines: each returns once it is done.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	defer close(s.closeDone)
	s.closed = true
	s.cancel()
	err := s.ln.Close()
	for sc := range s.conns {
		sc.shutdown() // wakes idle readers; handlers see the cancelled ctx
	}
	s.mu.Unlock()
	var st unix.Stat_t
	if unix.Stat(s.opts.Path, &st) == nil && st.Ino == s.ino {
		os.Remove(s.opts.Path)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
		return err
	case <-t.C:
	}
	// A Backend call that ignores its ctx keeps a handler; cut its connection and move on.
	s.mu.Lock()
	for sc := range s.conns {
		sc.Close()
	}
	s.mu.Unlock()
	return err
}

// conn is one client connection. Its read deadline goes through setReadDeadline, so that Close
// can wake a reader for good.
type conn struct {
	net.Conn
	raw      syscall.RawConn // for send; nil in tests' fake connections
	mu       sync.Mutex
	shutting bool // guarded by mu
}

// setReadDeadline sets the read deadline unless the server is shutting down, when reads must
// fail at once.
func (c *conn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shutting {
		t = time.Unix(1, 0)
	}
	c.Conn.SetReadDeadline(t)
}

// send writes bufs whole, honouring the write deadline. It sends with MSG_NOSIGNAL: gaffer
// Notifies SIGPIPE (its meaning is "gaffer's own stdout broke"), and a plain write to a client that
// has gone would deliver one to gaffer for every such client.
func (c *conn) send(bufs [][]byte) error {
	if c.raw == nil {
		nb := net.Buffers(bufs)
		_, err := nb.WriteTo(c.Conn)
		return err
	}
	var serr error
	err := c.raw.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			n, err := unix.SendmsgBuffers(int(fd), bufs, nil, nil, unix.MSG_NOSIGNAL)
			switch err {
			case nil:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait until writable, or the deadline
			default:
				serr = err
				return true
			}
			for n > 0 && len(bufs) > 0 {
				m := min(n, len(bufs[0]))
				bufs[0] = bufs[0][m:]
				n -= m
				if len(bufs[0]) == 0 {
					bufs = bufs[1:]
				}
			}
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shutting = true
	c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// serveConn reads requests and answers them until the connection ends.
func (s *Server) serveConn(sc *conn, allowed bool) {
	defer func() {
		// The last resort: nothing a client sends may take PID 1 down.
		if r := recover(); r != nil {
			s.opts.Logf("api: panic serving a connection: %v\n%s", r, debug.Stack())
		}
	}()
	br := bufio.NewReaderSize(sc, 4096)
	x := s.newExchange(sc)
	x.br = br
	sc.setReadDeadline(time.Now().Add(s.opts.HeaderTimeout))
	for first := true; ; first = false {
		if !first {
			sc.setReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		}
		if _, err := br.Peek(1); err != nil {
			return // the client left, was idle too long, or the server closes
		}
		if !first {
			sc.setReadDeadline(time.Now().Add(s.opts.HeaderTimeout))
		}
		x.reset()
		req, err := readRequest(br, s.opts.MaxHeader)
		if err != nil {
			x.closing = true
			var se *statusError
			switch {
			case errors.As(err, &se):
				x.fail(err)
			case isTimeout(err) && s.ctx.Err() == nil:
				x.fail(errStatus(408, "request head not received in time"))
			case err == io.ErrUnexpectedEOF:
				x.fail(errStatus(400, "incomplete request"))
			default:
				return
			}
			s.linger(sc)
			return
		}
		x.req = req
		x.closing = req.close
		if !allowed {
			x.closing = true
			x.fail(errStatus(403, "permission denied: uid not allowed by socket_allow_uids"))
			s.linger(sc)
			return
		}
		s.handle(x)
		if x.closing {
			if x.pending {
				s.linger(sc)
			}
			return
		}
	}
}

// linger half-closes the connection and reads what the client still sends for a moment: closing a
// Unix socket with unread data makes the client's next read fail with ECONNRESET, possibly before
// it has read the response.
func (s *Server) linger(sc *conn) {
	if cw, ok := sc.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	sc.setReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, sc, lingerBytes)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// unwrapSyscall reduces net and os errors to their errno, whose message reads well after a
// subject ("cannot listen on /run/gaffer.sock: permission denied").
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// newExchange makes the per-connection state of request handling.
func (s *Server) newExchange(sc *conn) *exchange {
	x := &exchange{s: s, c: sc, buf: new(bytes.Buffer)}
	x.enc = json.NewEncoder(x.buf)
	x.enc.SetEscapeHTML(false) // log lines with <, > and & stay readable
	return x
}
