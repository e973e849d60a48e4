package http1

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// Request is a parsed request head: only what gaffer's server acts on is kept.
type Request struct {
	Method         string
	Path           string // the request target's path, still percent-encoded
	Query          string // the raw query, without '?'
	HTTP11         bool
	Close          bool  // the connection ends after this exchange (Connection: close, or HTTP/1.0)
	ContentLength  int64 // -1 when absent
	Chunked        bool
	ExpectContinue bool
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// ReadRequest reads one request head of at most maxHeader bytes. It returns io.EOF when the peer
// closed the connection before sending anything, a *StatusError for a malformed or unacceptable
// request, and read errors (timeouts) as they are.
func ReadRequest(br *bufio.Reader, maxHeader int) (*Request, error) {
	budget := maxHeader
	var line []byte
	var err error
	// RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
	for blank := 0; ; blank++ {
		if line, err = readLine(br, &budget, 431, "request header too large"); err != nil {
			return nil, err
		}
		if len(line) > 0 {
			break
		}
		if blank == 3 {
			return nil, errStatus(400, "empty request line")
		}
	}
	req := &Request{ContentLength: -1}
	if err := req.parseRequestLine(line); err != nil {
		return nil, err
	}
	var (
		hosts int
		te    []byte
	)
	for n := 0; ; n++ {
		if line, err = readLine(br, &budget, 431, "request header too large"); err != nil {
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
			if req.ContentLength >= 0 && req.ContentLength != n {
				return nil, errStatus(400, "conflicting Content-Length headers")
			}
			req.ContentLength = n
		case equalFold(name, "transfer-encoding"):
			if te != nil {
				te = append(te, ',')
			}
			te = append(te, value...)
		case equalFold(name, "connection"):
			eachToken(value, func(tok []byte) {
				if equalFold(tok, "close") {
					req.Close = true
				}
			})
		case equalFold(name, "expect"):
			if !equalFold(value, "100-continue") {
				return nil, errStatus(417, "unsupported expectation "+strconv.Quote(string(value)))
			}
			req.ExpectContinue = true
		case equalFold(name, "host"):
			hosts++
		}
	}
	if te != nil {
		// RFC 9112 6.1: Transfer-Encoding with Content-Length is a smuggling attempt; only
		// HTTP/1.1 has it at all, and the only coding gaffer decodes is chunked.
		switch {
		case !req.HTTP11:
			return nil, errStatus(400, "Transfer-Encoding in an HTTP/1.0 request")
		case req.ContentLength >= 0:
			return nil, errStatus(400, "both Transfer-Encoding and Content-Length")
		case !equalFold(bytes.TrimSpace(te), "chunked"):
			return nil, errStatus(501, "unsupported Transfer-Encoding "+strconv.Quote(string(te)))
		}
		req.Chunked = true
	}
	if req.HTTP11 && hosts != 1 {
		// RFC 9112 3.2: exactly one Host, or 400.
		return nil, errStatus(400, "an HTTP/1.1 request needs exactly one Host header")
	}
	if !req.HTTP11 {
		// gaffer keeps only HTTP/1.1 connections alive; 1.0's keep-alive is a legacy extension.
		req.Close = true
	}
	return req, nil
}

// parseRequestLine parses "METHOD SP request-target SP HTTP/1.x".
func (r *Request) parseRequestLine(line []byte) error {
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
	if !IsToken(method) {
		return errStatus(400, "malformed method")
	}
	switch {
	case string(version) == "HTTP/1.1":
		r.HTTP11 = true
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
		r.Method, r.Path = string(method), string(target)
		return nil
	}
	if i := bytes.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	r.Method = string(method)
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		r.Path, r.Query = string(target[:i]), string(target[i+1:])
	} else {
		r.Path = string(target)
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

// ReadBody reads the request's whole body, at most max bytes: a larger Content-Length fails with
// 413 before anything is read, a chunked body as soon as a chunk would pass max.
func ReadBody(br *bufio.Reader, req *Request, max int64) ([]byte, error) {
	switch {
	case req.Chunked:
		body, err := io.ReadAll(newChunkedReader(br, max))
		if err != nil {
			return nil, err
		}
		return body, nil
	case req.ContentLength > max:
		return nil, errStatus(413, "request body too large (limit "+strconv.FormatInt(max, 10)+" bytes)")
	case req.ContentLength > 0:
		body := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, eofUnexpected(err)
		}
		return body, nil
	}
	return nil, nil
}
