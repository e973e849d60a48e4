package api

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// The HTTP/1.1 message syntax of RFC 9112, spoken strictly: just what curl, net/http and gaffer's
// own client send, and a clear JSON 4xx for anything else.
//
//   - Connections: HTTP/1.1 ones stay open (keep-alive, pipelining answered in order) until the
//     client sends "Connection: close", an error leaves the stream of requests out of sync, or
//     IdleTimeout passes between requests; HTTP/1.0 requests get one answer and the close.
//   - Request head: at most MaxHeader bytes (431) and maxHeaderLines fields (431), received
//     within HeaderTimeout of the connection or of its first byte (408); exactly one Host in
//     HTTP/1.1 (400); obsolete line folding, whitespace before a colon, control characters,
//     malformed or conflicting Content-Length are 400; Transfer-Encoding with Content-Length is
//     400 (smuggling); Expect other than 100-continue is 417; versions other than 1.0/1.1 are 505.
//   - Request body: by Content-Length, or chunked (decoded, so that curl -T - works), at most
//     MaxBody bytes (413, before reading past the limit; with Expect: 100-continue the 413 comes
//     instead of the 100); another transfer coding is 501. An unread body ends the connection.
//   - Responses carry Content-Length, except streams (JSON lines): chunked, one chunk per line,
//     then "Connection: close"; close-delimited for HTTP/1.0.

const (
	maxHeaderLines = 128      // header fields in one request or response head
	chunkFraming   = 64 << 10 // bytes of chunk-size lines, extensions and trailers per body
)

// statusError is an HTTP error status with its message, from parsing or from a handler.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func errStatus(code int, msg string) error { return &statusError{code, msg} }

// statusText is the reason phrase of every status the server sends.
func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

// readLine returns the next line without its CRLF (a bare LF ends a line too, RFC 9112 2.2),
// charging the bytes read to *budget; over budget it fails with status tooLong. The line may alias
// br's buffer: it is valid until the next read. At EOF it returns io.EOF when nothing was read, else
// io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader, budget *int, tooLong int) ([]byte, error) {
	var acc []byte
	for {
		frag, err := br.ReadSlice('\n')
		*budget -= len(frag)
		if *budget < 0 {
			return nil, errStatus(tooLong, "request header too large")
		}
		switch err {
		case nil:
			line := frag
			if acc != nil {
				line = append(acc, frag...)
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if bytes.IndexByte(line, '\r') >= 0 {
				return nil, errStatus(400, "bare CR in message head")
			}
			return line, nil
		case bufio.ErrBufferFull:
			acc = append(acc, frag...)
			continue
		case io.EOF:
			if len(acc)+len(frag) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
		}
		return nil, err
	}
}

// request is a parsed request head: only what the server acts on is kept.
type request struct {
	method         string
	path           string // the request target's path, still percent-encoded
	query          string // the raw query, without '?'
	http11         bool
	close          bool  // the connection ends after this exchange
	contentLength  int64 // -1 when absent
	chunked        bool
	expectContinue bool
}

// hasBody reports whether a body follows the head.
func (r *request) hasBody() bool { return r.chunked || r.contentLength > 0 }

// readRequest reads one request head of at most maxHeader bytes. It returns io.EOF when the peer
// closed the connection before sending anything, a *statusError for a malformed or unacceptable
// request, and read errors (timeouts) as they are.
func readRequest(br *bufio.Reader, maxHeader int) (*request, error) {
	budget := maxHeader
	var line []byte
	var err error
	// RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
	for blank := 0; ; blank++ {
		if line, err = readLine(br, &budget, 431); err != nil {
			return nil, err
		}
		if len(line) > 0 {
			break
		}
		if blank == 3 {
			return nil, errStatus(400, "empty request line")
		}
	}
	req := &request{contentLength: -1}
	if err := req.parseRequestLine(line); err != nil {
		return nil, err
	}
	var (
		hosts int
		te    []byte
	)
	for n := 0; ; n++ {
		if line, err = readLine(br, &budget, 431); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if n == maxHeaderLines {
			return nil, errStatus(431, "too many header fields")
		}
		name, value, err := splitField(line)
		if err != nil {
			return nil, err
		}
		switch {
		case equalFold(name, "content-length"):
			n, err := parseContentLength(value)
			if err != nil {
				return nil, err
			}
			if req.contentLength >= 0 && req.contentLength != n {
				return nil, errStatus(400, "conflicting Content-Length headers")
			}
			req.contentLength = n
		case equalFold(name, "transfer-encoding"):
			if te != nil {
				te = append(te, ',')
			}
			te = append(te, value...)
		case equalFold(name, "connection"):
			eachToken(value, func(tok []byte) {
				if equalFold(tok, "close") {
					req.close = true
				}
			})
		case equalFold(name, "expect"):
			if !equalFold(value, "100-continue") {
				return nil, errStatus(417, "unsupported expectation "+strconv.Quote(string(value)))
			}
			req.expectContinue = true
		case equalFold(name, "host"):
			hosts++
		}
	}
	if te != nil {
		// RFC 9112 6.1: Transfer-Encoding with Content-Length is a smuggling attempt; only
		// HTTP/1.1 has it at all, and the only coding gaffer decodes is chunked.
		switch {
		case !req.http11:
			return nil, errStatus(400, "Transfer-Encoding in an HTTP/1.0 request")
		case req.contentLength >= 0:
			return nil, errStatus(400, "both Transfer-Encoding and Content-Length")
		case !equalFold(bytes.TrimSpace(te), "chunked"):
			return nil, errStatus(501, "unsupported Transfer-Encoding "+strconv.Quote(string(te)))
		}
		req.chunked = true
	}
	if req.http11 && hosts != 1 {
		// RFC 9112 3.2: exactly one Host, or 400.
		return nil, errStatus(400, "an HTTP/1.1 request needs exactly one Host header")
	}
	if !req.http11 {
		// gaffer keeps only HTTP/1.1 connections alive; 1.0's keep-alive is a legacy extension.
		req.close = true
	}
	return req, nil
}

// parseRequestLine parses "METHOD SP request-target SP HTTP/1.x".
func (r *request) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errStatus(400, "malformed request line")
	}
	method, rest := line[:sp1], line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errStatus(400, "malformed request line")
	}
	target, version := rest[:sp2], rest[sp2+1:]
	if !isToken(method) {
		return errStatus(400, "malformed method")
	}
	switch {
	case string(version) == "HTTP/1.1":
		r.http11 = true
	case string(version) == "HTTP/1.0":
	case len(version) == 8 && string(version[:5]) == "HTTP/" && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]):
		return errStatus(505, "unsupported HTTP version "+string(version))
	default:
		return errStatus(400, "malformed HTTP version")
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return errStatus(400, "malformed request target")
		}
	}
	// Absolute form (RFC 9112 3.2.2) must be accepted; what matters is the path.
	if t, ok := cutSchemePrefix(target); ok {
		if i := bytes.IndexAny(t, "/?"); i < 0 {
			target = []byte("/")
		} else if t[i] == '?' {
			target = append([]byte("/"), t[i:]...)
		} else {
			target = t[i:]
		}
	}
	if target[0] != '/' {
		// '*' (OPTIONS) and authority form (CONNECT) name no resource here.
		r.method, r.path = string(method), string(target)
		return nil
	}
	if i := bytes.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	r.method = string(method)
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		r.path, r.query = string(target[:i]), string(target[i+1:])
	} else {
		r.path = string(target)
	}
	return nil
}

// cutSchemePrefix removes "http://" or "https://" (any case) from an absolute-form target.
func cutSchemePrefix(t []byte) ([]byte, bool) {
	for _, p := range []string{"http://", "https://"} {
		if len(t) >= len(p) && equalFold(t[:len(p)], p) {
			return t[len(p):], true
		}
	}
	return t, false
}

// splitField splits "name: value", rejecting obsolete line folding, whitespace before the colon,
// and control characters in the value.
func splitField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, errStatus(400, "obsolete line folding in header")
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 || !isToken(line[:i]) {
		return nil, nil, errStatus(400, "malformed header field")
	}
	value = bytes.Trim(line[i+1:], " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, errStatus(400, "control character in header value")
		}
	}
	return line[:i], value, nil
}

// parseContentLength accepts digits, or a list of identical values (RFC 9110 8.6). A length too
// large for int64 is reported as the largest one, which every limit rejects.
func parseContentLength(v []byte) (int64, error) {
	n := int64(-1)
	for _, part := range bytes.Split(v, []byte(",")) {
		part = bytes.Trim(part, " \t")
		if len(part) == 0 {
			return 0, errStatus(400, "malformed Content-Length")
		}
		var m int64
		for _, c := range part {
			if !isDigit(c) {
				return 0, errStatus(400, "malformed Content-Length")
			}
			if m > (1<<63-1-9)/10 {
				m = 1<<63 - 1
				continue
			}
			m = m*10 + int64(c-'0')
		}
		if n >= 0 && m != n {
			return 0, errStatus(400, "conflicting Content-Length values")
		}
		n = m
	}
	return n, nil
}

// eachToken calls fn for each element of a comma-separated list.
func eachToken(v []byte, fn func([]byte)) {
	for _, tok := range bytes.Split(v, []byte(",")) {
		if tok = bytes.Trim(tok, " \t"); len(tok) > 0 {
			fn(tok)
		}
	}
}

// equalFold compares ASCII case-insensitively, without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

// chunkedReader decodes a chunked body (RFC 9112 7.1). With limit >= 0 it fails with 413 as soon as
// a chunk size would take the body past limit, before reading that chunk's data, so that no body
// byte past the limit is ever read; framing (size lines, extensions, trailers) is bounded too.
type chunkedReader struct {
	br      *bufio.Reader
	limit   int64 // body bytes still allowed; < 0: no limit
	framing int   // framing bytes still allowed
	left    int64 // data bytes left in the current chunk
	crlf    bool  // the CRLF after a chunk's data is due
	err     error
}

func newChunkedReader(br *bufio.Reader, limit int64) *chunkedReader {
	return &chunkedReader{br: br, limit: limit, framing: chunkFraming}
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.left > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > r.left {
				p = p[:r.left]
			}
			n, err := r.br.Read(p)
			r.left -= int64(n)
			if r.left == 0 {
				r.crlf = true
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			r.err = err
			return n, err
		}
		r.err = r.next()
	}
	return 0, r.err
}

// next reads the end of the previous chunk and the size line of the next one; io.EOF after the
// last chunk and its trailers.
func (r *chunkedReader) next() error {
	if r.crlf {
		line, err := readLine(r.br, &r.framing, 413)
		if err != nil {
			return eofUnexpected(err)
		}
		if len(line) > 0 {
			return errStatus(400, "malformed chunk: data longer than its size")
		}
		r.crlf = false
	}
	line, err := readLine(r.br, &r.framing, 413)
	if err != nil {
		return eofUnexpected(err)
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions mean nothing to gaffer
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 {
		return errStatus(400, "malformed chunk size")
	}
	var size int64
	for _, c := range line {
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case 'a' <= lower(c) && lower(c) <= 'f':
			d = lower(c) - 'a' + 10
		default:
			return errStatus(400, "malformed chunk size")
		}
		if size > (1<<63-1)>>4 {
			return errStatus(413, "request body too large")
		}
		size = size<<4 | int64(d)
	}
	if size == 0 {
		for {
			line, err := readLine(r.br, &r.framing, 413)
			if err != nil {
				return eofUnexpected(err)
			}
			if len(line) == 0 {
				return io.EOF
			}
		}
	}
	if r.limit >= 0 {
		if size > r.limit {
			return errStatus(413, "request body too large")
		}
		r.limit -= size
	}
	r.left = size
	return nil
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readBody reads the request's whole body, at most max bytes: a larger Content-Length fails with
// 413 before anything is read, a chunked body as soon as a chunk would pass max.
func readBody(br *bufio.Reader, req *request, max int64) ([]byte, error) {
	switch {
	case req.chunked:
		body, err := io.ReadAll(newChunkedReader(br, max))
		if err != nil {
			return nil, err
		}
		return body, nil
	case req.contentLength > max:
		return nil, errStatus(413, "request body too large (limit "+strconv.FormatInt(max, 10)+" bytes)")
	case req.contentLength > 0:
		body := make([]byte, req.contentLength)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, eofUnexpected(err)
		}
		return body, nil
	}
	return nil, nil
}
