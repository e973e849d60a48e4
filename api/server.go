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
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gaffer/core"
	"gaffer/http1"
	"gaffer/sockfile"
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
	// ReservedConns of MaxConns are kept for root and gaffer's own uid: other allowed uids
	// together hold at most MaxConns-ReservedConns connections (fewer when MaxConns is small).
	ReservedConns = 8
)

const (
	bodyTimeout  = 30 * time.Second // to receive a request body
	writeTimeout = 30 * time.Second // to write a response, or one line of a stream
	waitTimeout  = 60 * time.Second // start/stop/restart?wait=1
	closeGrace   = 2 * time.Second  // Close waits this long for handlers before cutting connections
	lingerTime   = 500 * time.Millisecond
	lingerBytes  = 4 << 20

	// A refused connection (a peer not allowed, or over a limit) gets its whole answer in one
	// non-blocking write at accept, and the end of what gaffer sends (shutdown SHUT_WR). Nothing
	// reads it. It is closed refuseLinger later rather than at once, so that the client's request
	// still finds it open: a write to a closed connection fails with EPIPE, and curl then reports
	// no answer at all. At most maxRefused wait; past that the oldest is closed early.
	refuseLinger = 500 * time.Millisecond
	maxRefused   = 256
)

// Options configure the API server. Path and Backend are required (Backend may instead be given
// to SetBackend before Serve); zero values of the rest mean the defaults.
type Options struct {
	Path      string      // the socket's path
	Mode      os.FileMode // the socket file's permissions; 0 means 0600
	Group     int         // the socket file's group id; -1 leaves it (0 is root's group, not "unset")
	AllowUIDs []int       // peers allowed besides root and gaffer's own uid (SetAccess changes them)
	Version   string      // gaffer's version, for /v1/info when the Backend leaves it empty
	// Backend answers the requests. The routes of a capability it lacks (core.Starter,
	// core.Scaler, core.InputWriter, core.LogReader) answer 409.
	Backend core.Backend
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
	// MaxConnsPerUID bounds the connections of one allowed uid other than root and gaffer's;
	// more get 503. 0 means MaxConns/4 (at least 1).
	MaxConnsPerUID int

	hooks *listenHooks // tests' seams in Listen
}

// Server serves the API on a Unix socket. Create it with Listen.
type Server struct {
	opts     Options
	ln       *net.UnixListener
	sock     *sockfile.File // Close removes only the file it created
	selfUID  int
	reserved int             // connections kept for root and selfUID
	ctx      context.Context // cancelled by Close: ends streams and waits
	cancel   context.CancelFunc
	refused  chan refusedConn // answered, waiting for their close, oldest first
	wg       sync.WaitGroup

	closeDone chan struct{} // closed when Close has finished

	snapMu    sync.Mutex
	snapCache encodedSnapshot // guarded by snapMu

	streams *core.StreamBudget // the bytes queued for all streams, at most StreamTotalBytes

	mu     sync.Mutex
	allow  []int              // uids allowed besides root and selfUID; guarded by mu
	conns  map[*conn]struct{} // guarded by mu
	served int                // connections being served; guarded by mu
	others int                // of served, those of uids other than root and selfUID; guarded by mu
	byUID  map[int]int        // others by uid; guarded by mu
	closed bool               // guarded by mu
}

// Listen creates the socket: its parent directories if missing (0755), replacing a stale socket
// file that nobody answers on. It fails when another process answers on Path, when Path exists and
// is not a socket (a symlink is never followed), when a directory on the way belongs to someone
// other than root and gaffer's uid or others may write it and it is not sticky, and on any failure
// to listen or to apply Mode and Group. The socket file has its mode and group before it appears
// at Path (see listen.go).
func Listen(opts Options) (*Server, error) {
	if opts.Path == "" {
		return nil, errors.New("no socket path")
	}
	s := newServer(opts)
	ln, sock, err := listenSocket(s.opts.Path, s.opts.Mode, s.opts.Group, s.opts.hooks)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.ln, s.sock = ln, sock
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
	if opts.MaxConnsPerUID <= 0 {
		opts.MaxConnsPerUID = max(1, opts.MaxConns/4)
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
		reserved:  min(ReservedConns, opts.MaxConns/4),
		refused:   make(chan refusedConn, maxRefused),
		allow:     slices.Clone(opts.AllowUIDs),
		conns:     map[*conn]struct{}{},
		byUID:     map[int]int{},
		closeDone: make(chan struct{}),
		streams:   core.NewStreamBudget(core.StreamTotalBytes),
	}
}

// SetBackend sets the Backend when Options had none (gaffer listens before its processes run).
// Call it before Serve.
func (s *Server) SetBackend(b core.Backend) { s.opts.Backend = b }

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
	closer := make(chan struct{})
	go func() {
		defer close(closer)
		s.closeRefused()
	}()
	defer func() {
		<-closer // ends with s.ctx, which the Close before any return cancels
		s.drainRefused()
	}()
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

// accept checks a new connection's peer (SO_PEERCRED) and starts serving it, or refuses it at
// once without taking a slot: 403 to a uid that is not allowed, 503 over MaxConns or the uid's
// MaxConnsPerUID. Root and gaffer's uid may use the ReservedConns that other uids may not.
func (s *Server) accept(c *net.UnixConn) {
	sc := &conn{Conn: c}
	if raw, err := c.SyscallConn(); err == nil {
		sc.raw = raw
	}
	uid, err := peerUID(sc.raw)
	if err != nil {
		s.opts.Logf("api: cannot read the peer's credentials: %v", err)
		s.refuse(sc, 403, "permission denied: cannot read the peer's credentials")
		return
	}
	s.start(sc, uid)
}

// start serves sc, a new connection of uid, or refuses it (accept's second half).
func (s *Server) start(sc *conn, uid int) {
	sc.uid = uid
	own := uid == 0 || uid == s.selfUID
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sc.Close()
		return
	}
	// Checked under mu: SetAccess either finds this connection among conns or has changed the
	// list this check reads, so no connection of a uid it disallows outlives it.
	if !allowed(uid, s.selfUID, s.allow) {
		s.mu.Unlock()
		s.refuse(sc, 403, "permission denied: uid not allowed by socket_allow_uids")
		return
	}
	if why := s.admit(uid); why != "" {
		s.mu.Unlock()
		s.refuse(sc, 503, why)
		return
	}
	s.served++
	if !own {
		s.others++
		s.byUID[uid]++
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.done(sc, func() {
			s.served--
			if !own {
				s.others--
				if s.byUID[uid]--; s.byUID[uid] == 0 {
					delete(s.byUID, uid)
				}
			}
		})
		s.serveConn(sc, true)
	}()
}

// admit says why a connection of uid (allowed) may not be served now, or "". Call it with mu held.
func (s *Server) admit(uid int) string {
	if uid == 0 || uid == s.selfUID {
		if s.served >= s.opts.MaxConns {
			return "too many connections"
		}
		return ""
	}
	if s.byUID[uid] >= s.opts.MaxConnsPerUID {
		return "too many connections from uid " + strconv.Itoa(uid) + " (at most " + strconv.Itoa(s.opts.MaxConnsPerUID) + ")"
	}
	if s.others >= s.opts.MaxConns-s.reserved || s.served >= s.opts.MaxConns {
		return "too many connections"
	}
	return ""
}

// refusedConn is a refused connection and when to close it.
type refusedConn struct {
	c  net.Conn
	at time.Time
}

// refuse answers a connection that will not be served with code and {"error": msg}, in one
// non-blocking write (a new connection's send buffer is empty, the answer fits), ends what gaffer
// sends, and leaves the close to closeRefused. It never blocks.
func (s *Server) refuse(sc *conn, code int, msg string) {
	if sc.raw != nil {
		resp := errorResponse(code, msg)
		_ = sc.raw.Control(func(fd uintptr) {
			_, _ = unix.SendmsgBuffers(int(fd), [][]byte{resp}, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		})
	}
	if cw, ok := sc.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	r := refusedConn{sc.Conn, time.Now().Add(refuseLinger)}
	for {
		select {
		case s.refused <- r:
			return
		default:
		}
		select {
		case old := <-s.refused:
			old.c.Close() // the oldest goes early
		default:
		}
	}
}

// closeRefused closes each refused connection at its time, until the server closes.
func (s *Server) closeRefused() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case r := <-s.refused:
			if d := time.Until(r.at); d > 0 {
				t.Reset(d)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					r.c.Close()
					return
				}
			}
			r.c.Close()
		case <-s.ctx.Done():
			return
		}
	}
}

// drainRefused closes the refused connections still waiting.
func (s *Server) drainRefused() {
	for {
		select {
		case r := <-s.refused:
			r.c.Close()
		default:
			return
		}
	}
}

// errorResponse is a whole error response that closes the connection, like exchange.fail's.
func errorResponse(code int, msg string) []byte {
	body, _ := json.Marshal(errorBody{msg})
	b := make([]byte, 0, 160+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http1.StatusText(code)...)
	b = append(b, "\r\nContent-Type: "+typeJSON+"\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)+1), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	return append(b, '\n')
}

// done closes a connection and forgets it; release, when not nil, runs under mu.
func (s *Server) done(sc *conn, release func()) {
	sc.Close()
	s.mu.Lock()
	delete(s.conns, sc)
	if release != nil {
		release()
	}
	s.mu.Unlock()
	s.wg.Done()
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

// SetAccess changes who may use the API while it serves (a reload of socket_mode, socket_group
// and socket_allow_uids): the socket file's mode (0 means DefaultMode) and group (-1: the group
// it had when made, gaffer's own unless its directory is set-group-ID, as Listen with Group -1),
// and the uids allowed besides root and gaffer's own.
//
// The uids apply first, and even when the file cannot be changed: from then on a new connection
// of a uid no longer listed gets 403, and the connections such a uid has open are closed at once,
// streams included (a follower of logs or events must not go on reading what it may no longer
// read; its client sees the connection end in the middle of the stream, an error, not a normal
// end); a request being answered on one may lose its answer. Connections of root, of gaffer's
// uid and of uids still listed are not touched. Then the file changes as sockfile.File.SetAccess
// changes it: only the socket Listen made, never a file put at its path since. The mode governs
// new connections only: connect(2) checks it, an open connection is not affected.
func (s *Server) SetAccess(mode os.FileMode, gid int, allowUIDs []int) error {
	if mode == 0 {
		mode = DefaultMode
	}
	allow := slices.Clone(allowUIDs)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("cannot change socket %s: the API server has closed", s.opts.Path)
	}
	s.allow = allow
	var cut []int
	for sc := range s.conns {
		if !allowed(sc.uid, s.selfUID, allow) {
			sc.Close() // wakes its reader and its stream's watcher; done forgets it
			cut = append(cut, sc.uid)
		}
	}
	s.mu.Unlock()
	if len(cut) > 0 {
		slices.Sort(cut)
		s.opts.Logf("api: closed %d connections of uids no longer allowed by socket_allow_uids (%v)", len(cut), slices.Compact(cut))
	}
	if s.sock == nil {
		return nil // a server made without a file (tests)
	}
	return s.sock.SetAccess(mode, -1, gid)
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
	s.sock.Remove()
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
	uid      int             // the peer's, set before the connection is served
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
		req, err := http1.ReadRequest(br, s.opts.MaxHeader)
		if err != nil {
			x.closing = true
			var se *http1.StatusError
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
		x.closing = req.Close
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

// newExchange makes the per-connection state of request handling.
func (s *Server) newExchange(sc *conn) *exchange {
	x := &exchange{s: s, c: sc, buf: new(bytes.Buffer)}
	x.enc = json.NewEncoder(x.buf)
	x.enc.SetEscapeHTML(false) // log lines with <, > and & stay readable
	return x
}
