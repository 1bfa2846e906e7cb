package proto

// BufferSize exposes the size of the reader's buffer to tests, which check
// that it never grows past the maximum message size plus one byte.
func (r *Reader) BufferSize() int { return len(r.buf) }

// ErrInvalidRead is the error for a reader that breaks the io.Reader contract.
var ErrInvalidRead = errInvalidRead
