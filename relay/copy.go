package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

const (
	// readSize is the least room a read of a busy stream gets: a default pipe holds 64 KiB.
	readSize = 64 << 10
	// smallBuf is the read buffer of a stream until it gets busy: most write little.
	smallBuf = 4 << 10
	// bufSize holds a pending partial line (at most MaxLine+UTFMax-1 bytes) and a full read.
	bufSize = MaxLine + utf8.UTFMax + readSize
	// flushAt bounds the formatted output of one read: beyond it, Copy writes what it has (whole
	// lines) and goes on, so that many tiny lines cannot grow the buffer without bound. It is
	// twice the largest read, so that the lines of one read, prefixes added, usually go out in
	// one write: at 128 KiB a full read of 1 KiB lines came out as 128 KiB and a write of the
	// last line or two, one of 16-byte lines as 128 + 72 KiB (bench/relay: 10% more of gaffer's
	// cpu per GiB than with 256 KiB).
	flushAt = 256 << 10
	// busyPipe is the size Copy grows the pipe of a busy stream to, and the Writer its destination
	// when that is a pipe: with 64 KiB pipes the child, gaffer and the reader of gaffer's output
	// take turns on every 64 KiB; with 1 MiB they run side by side. The pages are the kernel's,
	// taken only while the pipe holds data, at most this many bytes.
	busyPipe = 1 << 20
	// maxBusyPipes bounds the streams of one Writer whose pipes are grown at once, so that many
	// busy processes behind a stuck destination hold at most this many MiB of the kernel's memory
	// more than with default pipes (and an unprivileged gaffer stays well within the per-user
	// limit of pipe pages, fs.pipe-user-pages-soft, 64 MiB by default).
	maxBusyPipes = 8
)

// Copy reads r until EOF or a read error and writes every line of it, formatted for src, to the
// Writer. It returns nil at EOF, else the read error, always after a pending partial line was
// written. Errors writing to the destination never end Copy; see Err.
//
// When r is an *os.File and a read fails at its read deadline (the caller bounds the drain after
// the process exited; see the package doc), Copy clears the deadline, still takes the bytes the
// pipe held at that moment (FIONREAD), without waiting for more, and returns an error matching
// os.ErrDeadlineExceeded: nothing written before the deadline is lost, even when back-pressure
// kept Copy from reading until then.
//
// Memory is bounded: a stream that writes little uses 4 KiB buffers; a busy one a read buffer of
// 128 KiB and an output buffer of about 256 KiB (more only for a single long line in JSON, where
// escaping can grow it up to six times). When r is a pipe and the stream gets busy, Copy grows
// the pipe to 1 MiB (for at most 8 streams of a Writer at a time), and the Writer its
// destination, when that is a pipe: see busyPipe.
func (w *Writer) Copy(r io.Reader, src Source) error {
	s := newStream(w, src, 0)
	grown := false
	defer func() {
		if grown {
			w.busyPipes.Add(-1)
		}
	}()
	buf := make([]byte, smallBuf)
	start, end := 0, 0 // buf[start:end] is a partial line waiting for its end
	full := false      // the last read filled the buffer
	var late error     // the deadline error, once the deadline passed
	left := 0          // after the deadline: bytes the pipe held then, still to read
	for {
		if start == end {
			start, end = 0, 0
		} else if len(buf)-end < min(readSize, len(buf)/2) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		// Busy, or a long line pending: from now on, the full-size buffer.
		if len(buf) < bufSize && (full || end > len(buf)/2) {
			buf = append(make([]byte, 0, bufSize), buf[:end]...)[:bufSize]
			if full {
				grown = w.growSource(r)
				w.growDest()
			}
		}
		p := buf[end:]
		if late != nil {
			p = p[:min(len(p), left)]
		}
		n, err := r.Read(p)
		full = n == len(p)
		if n > 0 {
			end += n
			s.begin()
			n := s.lines(buf[start:end])
			if src.Tap != nil && n > 0 {
				src.Tap(buf[start : start+n])
			}
			start += n
			s.flush()
		}
		if late != nil {
			left -= n
			if err == nil && left <= 0 {
				err = late
			}
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			if left = pending(r); left > 0 {
				late, err = err, nil
			}
		}
		if err != nil {
			if start < end {
				s.begin()
				s.line(buf[start:end])
				s.flush()
				if src.Tap != nil {
					src.Tap(buf[start:end])
				}
			}
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("cannot read output of %s: %w", src.Name, err)
		}
	}
}

// pending returns how many bytes a file whose read deadline passed still holds, and clears the
// deadline so that they can be read; 0 when r is no such file or holds nothing.
func pending(r io.Reader) int {
	f, ok := r.(interface {
		SetReadDeadline(time.Time) error
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return 0
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	ctl := func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) } // FIONREAD
	if cerr := rc.Control(ctl); cerr != nil || err != nil {
		return 0
	}
	// Reads of at most n bytes cannot block: nobody else reads the pipe.
	if n <= 0 || f.SetReadDeadline(time.Time{}) != nil {
		return 0
	}
	return n
}

// growSource grows the pipe r to busyPipe, within the Writer's budget of grown pipes; it reports
// whether it took a share of the budget, to be given back when the stream ends.
func (w *Writer) growSource(r io.Reader) bool {
	if w.busyPipes.Add(1) > maxBusyPipes {
		w.busyPipes.Add(-1)
		return false
	}
	if growPipe(r, busyPipe) != nil {
		w.busyPipes.Add(-1)
		return false
	}
	return true
}

// growDest grows the destination to busyPipe when it is a pipe, once: the first stream that gets
// busy asks.
func (w *Writer) growDest() {
	if !w.destGrown.Swap(true) {
		_ = growPipe(w.w, busyPipe)
	}
}

// growPipe makes the pipe f at least size bytes (F_SETPIPE_SZ), never smaller. It fails when f is
// no pipe (a file, a terminal, a socket) or the kernel refuses (an unprivileged process beyond
// fs.pipe-max-size or its share of pipe pages): the pipe then keeps its size.
func growPipe(f any, size int) error {
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return errors.New("not a file")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		var cur int
		if cur, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && cur < size {
			_, err = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
		}
	})
	return errors.Join(cerr, err)
}

// stream formats the lines of one Source; it belongs to one goroutine.
type stream struct {
	w       *Writer
	src     Source
	style   *Style   // the style head was built for
	json    bool     // style.Format == JSON
	width   int      // the name width head was built for
	stamp   int64    // the time head was built for, in Unix milliseconds
	built   bool     // head and tail are built
	head    []byte   // goes before each line: the prefix, or the JSON object up to "line":"
	head16  [16]byte // head padded with zeros, when short16
	short16 bool     // head fits in 16 bytes (a prefix without colour or timestamp, or raw)
	tail    []byte   // goes after each line: "\n", or "}\n in JSON
	out     []byte   // formatted whole lines not yet written
	hold    bool     // keep every line in out: an event, queued by the caller
}

func newStream(w *Writer, src Source, size int) *stream {
	return &stream{w: w, src: src, out: make([]byte, 0, size)}
}

// begin starts the lines of one read: it rebuilds head when the name width or the timestamp
// changed. A timestamp is taken once per read, not per line.
func (s *stream) begin() {
	width := int(s.w.width.Load())
	if st := s.w.style.Load(); st != s.style {
		s.style, s.built, s.json = st, false, st.Format == JSON
	}
	st := s.style
	var now time.Time
	var stamp int64
	switch {
	case st.Format == Raw:
		if !s.built {
			s.head, s.tail, s.built, s.short16 = nil, []byte{'\n'}, true, true
		}
		return
	case s.json || st.Timestamps:
		now = s.w.now()
		stamp = now.UnixMilli()
		if s.built && stamp == s.stamp && (s.json || width == s.width) {
			return
		}
	case s.built && width == s.width:
		return
	}
	s.built, s.width, s.stamp = true, width, stamp
	s.head = s.head[:0]
	if s.json {
		s.head = append(s.head, `{"time":"`...)
		s.head = appendTime(s.head, now)
		s.head = append(s.head, `","name":"`...)
		s.head = appendJSON(s.head, []byte(s.src.Name))
		s.head = append(s.head, `","pid":`...)
		s.head = strconv.AppendInt(s.head, int64(s.src.Pid), 10)
		s.head = append(s.head, `,"stream":"`...)
		s.head = appendJSON(s.head, []byte(s.src.Stream))
		s.head = append(s.head, `","line":"`...)
		s.tail = []byte("\"}\n")
		return
	}
	if st.Color {
		s.head = append(s.head, "\x1b["...)
		s.head = append(s.head, colorCode(s.src.Color)...)
		s.head = append(s.head, 'm')
	}
	if st.Timestamps {
		s.head = appendTime(s.head, now)
		s.head = append(s.head, ' ')
	}
	s.head = appendName(s.head, s.src.Name)
	for n := utf8.RuneCountInString(s.src.Name); n < width; n++ {
		s.head = append(s.head, ' ')
	}
	s.head = append(s.head, " | "...)
	if st.Color {
		s.head = append(s.head, "\x1b[0m"...)
	}
	s.tail = []byte{'\n'}
	s.head16 = [16]byte{}
	s.short16 = copy(s.head16[:], s.head) == len(s.head)
}

// nlMask has the high bit of every byte of x that is a newline set, and no other bit.
func nlMask(x uint64) uint64 {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	t := x ^ 0x0a0a0a0a0a0a0a0a
	return ^((t&lo7 + lo7) | t | lo7)
}

// lines formats the complete lines of data and splits a pending partial line that is already
// too long; it returns how many bytes of data it consumed.
func (s *stream) lines(data []byte) int {
	done := 0
	if s.json {
		for {
			i := bytes.IndexByte(data[done:], '\n')
			if i < 0 {
				break
			}
			s.line(data[done : done+i])
			done += i + 1
		}
	} else {
		// The hot path: each line and its newline in one append, in locals rather than the
		// fields of s (heap stores with write barriers).
		out, head, head16, short16 := s.out, s.head, s.head16, s.short16
		for {
			rest := data[done:]
			i := -1
			if len(rest) >= 16 {
				// The newline of a short line, a word at a time: cheaper than IndexByte's
				// set-up, which costs more than a line of 16 bytes.
				if m := nlMask(binary.LittleEndian.Uint64(rest)); m != 0 {
					i = bits.TrailingZeros64(m) >> 3
				} else if m := nlMask(binary.LittleEndian.Uint64(rest[8:])); m != 0 {
					i = 8 + bits.TrailingZeros64(m)>>3
				} else if j := bytes.IndexByte(rest[16:], '\n'); j >= 0 {
					i = 16 + j
				}
			} else {
				i = bytes.IndexByte(rest, '\n')
			}
			if i < 0 {
				break
			}
			if i < 16 && short16 && len(rest) >= 16 {
				// A short line after a short head: two 16-byte moves, no calls. They write
				// beyond the line, within the capacity, where the next line goes.
				n := len(out)
				if cap(out)-n < 32 {
					out = slices.Grow(out, 32)
				}
				o := out[n : n+32]
				*(*[16]byte)(o) = head16
				*(*[16]byte)(o[len(head):]) = *(*[16]byte)(rest)
				out = out[:n+len(head)+i+1]
			} else if i > MaxLine {
				s.out = out
				s.line(rest[:i])
				out = s.out
			} else {
				out = append(out, head...)
				out = append(out, rest[:i+1]...)
			}
			done += i + 1
			if len(out) >= flushAt {
				s.out = out
				s.flush()
				out = s.out
			}
		}
		s.out = out
	}
	// Emit a chunk of a long partial line only once its cut can be placed on a character
	// boundary, hence UTFMax bytes beyond MaxLine.
	for len(data)-done >= MaxLine+utf8.UTFMax {
		c := cutPoint(data[done:])
		s.emit(data[done : done+c])
		done += c
	}
	return done
}

// line formats one line without its newline, split into chunks of at most MaxLine bytes.
func (s *stream) line(b []byte) {
	for len(b) > MaxLine {
		c := cutPoint(b)
		s.emit(b[:c])
		b = b[c:]
	}
	s.emit(b)
}

// emit formats one output line, b without its newline.
func (s *stream) emit(b []byte) {
	s.out = append(s.out, s.head...)
	if s.json {
		s.out = appendJSON(s.out, b)
	} else {
		s.out = append(s.out, b...)
	}
	s.out = append(s.out, s.tail...)
	if len(s.out) >= flushAt && !s.hold {
		s.flush()
	}
}

// flush writes the formatted lines, whole, in one call under the Writer's lock.
func (s *stream) flush() {
	if len(s.out) > 0 {
		s.w.write(s.out)
		s.out = s.out[:0]
	}
}

// appendTime appends t as RFC 3339 in UTC with milliseconds: 2026-11-23T21:50:01.123Z.
func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
}

// colorCode returns the SGR parameters of palette entry i: six colours that read on dark and
// light terminals (honcho's order), cycling; bold for a negative i.
func colorCode(i int) string {
	if i < 0 {
		return "1"
	}
	codes := [...]string{"36", "33", "32", "35", "34", "31"}
	return codes[i%len(codes)]
}

// appendName appends a name for the prefix, control characters replaced by '?', since a newline
// or an escape sequence in a name would break the line structure.
func appendName(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		b = append(b, c)
	}
	return b
}

// appendJSON appends p escaped as the inside of a JSON string: quote, backslash and control
// characters escaped, each byte of invalid UTF-8 as U+FFFD, valid UTF-8 as is.
func appendJSON(b, p []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0 // p[start:i] is pending, needing no escape
	for i := 0; i < len(p); {
		// Skip 8 plain ASCII bytes at a time: none below 0x20, none from 0x80, no quote or
		// backslash. Escaping is the cost of JSON output; most log text is plain.
		for i+8 <= len(p) {
			const ones, highs = 0x0101010101010101, 0x8080808080808080
			x := binary.LittleEndian.Uint64(p[i:])
			q, bs := x^(ones*'"'), x^(ones*'\\')
			if ((x-ones*0x20)|(q-ones)&^q|(bs-ones)&^bs|x)&highs != 0 {
				break
			}
			i += 8
		}
		if i >= len(p) {
			break
		}
		c := p[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(p[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, p[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c >= utf8.RuneSelf {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
		}
		i++
		start = i
	}
	return append(b, p[start:]...)
}
