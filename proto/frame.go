package proto

import (
	"errors"
	"fmt"
	"io"
)

// Reader splits a byte stream into envelopes. It copes with an envelope
// split over many reads, many envelopes in one read, envelopes separated by
// newlines or written back to back, and blank lines. It finds the end of an
// envelope by scanning JSON structure (strings, escapes, nesting), so it
// never needs a separator.
//
// A line that does not start with '{' is returned as one frame (up to the
// newline) for the decoder to reject, so a garbage line costs one decode
// error, not the connection. A raw newline inside a JSON string cannot be
// valid JSON; the reader ends the frame there, which resynchronizes after a
// truncated message.
//
// A frame longer than the maximum size makes Next return ErrTooLarge; the
// reader's buffer never grows beyond the maximum size plus one byte, and it
// reads straight into that buffer.
//
// The buffer starts at 256 bytes and doubles as frames need. Once everything
// read is consumed and the last read was small (a connection gone quiet, or
// sending only heartbeats), the reader goes back to its 256-byte buffer, so
// a server holding many idle connections does not hold a large buffer for
// each. A Reader is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max int
	buf []byte
	// small is the initial buffer, kept to go back to when idle; lastRead
	// is the byte count of the last read.
	small    []byte
	lastRead int
	// buf[start:end] holds unconsumed bytes; buf[start:pos] has been scanned.
	start, end, pos int
	// Scan state of the frame that starts at start.
	inFrame, garbage, inStr, esc bool
	depth                        int
	// readErr is an error the underlying reader returned along with data;
	// it is reported once that data has been scanned.
	readErr error
	err     error
}

// NewReader returns a Reader on r with the given maximum message size
// (DefaultMaxSize when maxSize <= 0).
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	initial := min(smallBuffer, maxSize+1)
	buf := make([]byte, initial)
	return &Reader{r: r, max: maxSize, buf: buf, small: buf}
}

// smallBuffer is a Reader's initial and idle buffer size: a heartbeat fits.
const smallBuffer = 256

// Next returns the next frame. The slice is valid until the following call.
// It returns io.EOF at a clean end of stream, io.ErrUnexpectedEOF when the
// stream ends inside a frame, an error wrapping ErrTooLarge when a frame
// exceeds the maximum size, and the underlying read error otherwise (an
// error that came with data is returned once that data is used up). Any
// error is final.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		if frame, ok := r.scan(); ok {
			if len(frame) > r.max {
				// A complete frame of max+1 bytes fits the buffer.
				r.err = fmt.Errorf("%w: a message of %d bytes, limit %d", ErrTooLarge, len(frame), r.max)
				return nil, r.err
			}
			return frame, nil
		}
		if r.inFrame && r.pos-r.start > r.max {
			r.err = fmt.Errorf("%w: more than %d bytes without the end of a message", ErrTooLarge, r.max)
			return nil, r.err
		}
		if err := r.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				if r.inFrame {
					if r.garbage {
						// A final unterminated non-JSON line is still one frame.
						frame := r.buf[r.start:r.end]
						r.start, r.inFrame = r.end, false
						r.err = io.EOF
						return frame, nil
					}
					err = io.ErrUnexpectedEOF
				}
			}
			r.err = err
			return nil, err
		}
	}
}

// scan advances over buffered bytes; it reports a complete frame.
func (r *Reader) scan() ([]byte, bool) {
	for r.pos < r.end {
		c := r.buf[r.pos]
		if !r.inFrame {
			switch c {
			case ' ', '\t', '\r', '\n':
				r.pos++
				r.start = r.pos
				continue
			case '{':
				r.inFrame, r.garbage, r.depth, r.inStr, r.esc = true, false, 0, false, false
			default:
				r.inFrame, r.garbage = true, true
			}
		}
		if r.garbage {
			if c == '\n' {
				return r.cut(r.pos, r.pos+1), true
			}
			r.pos++
			continue
		}
		if r.inStr {
			switch {
			case r.esc:
				r.esc = false
			case c == '\\':
				r.esc = true
			case c == '"':
				r.inStr = false
			case c == '\n':
				// Raw newline in a string: invalid JSON; resynchronize here.
				return r.cut(r.pos, r.pos+1), true
			}
			r.pos++
			continue
		}
		switch c {
		case '"':
			r.inStr = true
		case '{', '[':
			r.depth++
		case '}', ']':
			r.depth--
			if r.depth <= 0 {
				return r.cut(r.pos+1, r.pos+1), true
			}
		}
		r.pos++
	}
	return nil, false
}

// cut returns buf[start:frameEnd] and continues scanning at next.
func (r *Reader) cut(frameEnd, next int) []byte {
	frame := r.buf[r.start:frameEnd]
	r.start, r.pos, r.inFrame = next, next, false
	return frame
}

// errInvalidRead is returned when the underlying reader breaks the
// io.Reader contract with a count outside [0, len(p)].
var errInvalidRead = errors.New("proto: reader returned an invalid count")

// fill reads more data, compacting or growing the buffer as needed.
func (r *Reader) fill() error {
	if r.readErr != nil {
		return r.readErr
	}
	if r.start == r.end && len(r.buf) > len(r.small) && r.lastRead < len(r.small) {
		// All consumed and the stream is slow: drop the grown buffer.
		r.buf = r.small
		r.start, r.end, r.pos = 0, 0, 0
	}
	if r.start > 0 && (r.end == len(r.buf) || r.start == r.end) {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.pos -= r.start
		r.end = n
		r.start = 0
	}
	if r.end == len(r.buf) {
		size := 2 * len(r.buf)
		if size > r.max+1 {
			size = r.max + 1
		}
		if size <= len(r.buf) {
			// Cannot happen: scan would have reported ErrTooLarge first.
			return fmt.Errorf("%w: buffer full", ErrTooLarge)
		}
		nb := make([]byte, size)
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return errInvalidRead
		}
		r.end += n
		r.lastRead = n
		if n > 0 {
			r.readErr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}
