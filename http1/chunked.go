package http1

import (
	"bufio"
	"bytes"
	"io"
)

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
	return &chunkedReader{br: br, limit: limit, framing: ChunkFraming}
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
		line, err := readLine(r.br, &r.framing, 413, "request header too large")
		if err != nil {
			return eofUnexpected(err)
		}
		if len(line) > 0 {
			return errStatus(400, "malformed chunk: data longer than its size")
		}
		r.crlf = false
	}
	line, err := readLine(r.br, &r.framing, 413, "request header too large")
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
			line, err := readLine(r.br, &r.framing, 413, "request header too large")
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
