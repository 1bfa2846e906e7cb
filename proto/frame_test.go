package proto_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/honeybee/core/proto"
)

// chunkReader returns its data in reads of random sizes between 1 and max.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rnd.IntN(c.max)
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// readAll returns every frame until the first error, and that error.
func readAll(t *testing.T, r *proto.Reader, max int) ([]string, error) {
	t.Helper()
	var frames []string
	for {
		f, err := r.Next()
		if size := r.BufferSize(); size > max+1 {
			t.Fatalf("buffer grew to %d bytes, limit %d+1", size, max)
		}
		if err != nil {
			return frames, err
		}
		if len(f) > max {
			t.Fatalf("frame of %d bytes, limit %d", len(f), max)
		}
		frames = append(frames, string(f))
	}
}

const (
	drop  = `{"version":2,"message":{"NodeDrop":{}}}`
	event = `{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","message":"a {tricky} \"quoted\" [string] \\","metadata":{"k":"}{]["}}}}`
	reg   = `{"version":2,"message":{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":1,"node_type":"Full"}}}`
)

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr error
	}{
		{"empty stream", "", nil, io.EOF},
		{"only blank lines", "\n\r\n  \t\n", nil, io.EOF},
		{"one envelope with newline", drop + "\n", []string{drop}, io.EOF},
		{"one envelope without newline", drop, []string{drop}, io.EOF},
		{"newline separated", drop + "\n" + event + "\n" + reg + "\n", []string{drop, event, reg}, io.EOF},
		{"back to back", drop + event + reg, []string{drop, event, reg}, io.EOF},
		{"crlf and blank lines", "\r\n" + drop + "\r\n\r\n\n" + event + "\r\n \t" + reg + "\r\n", []string{drop, event, reg}, io.EOF},
		{"braces and escaped quotes in strings", `{"a":"}"}{"b":"\"}\\"}{"c":"\\\"{"}`, []string{`{"a":"}"}`, `{"b":"\"}\\"}`, `{"c":"\\\"{"}`}, io.EOF},
		{"pretty printed envelope", "{\n  \"version\": 2,\n  \"message\": \"NodeDrop\"\n}\n", []string{"{\n  \"version\": 2,\n  \"message\": \"NodeDrop\"\n}"}, io.EOF},
		{"garbage line then envelope", "hello world\n" + drop + "\n", []string{"hello world", drop}, io.EOF},
		{"garbage line with braces then envelope", "x{\"a\":1}\n" + drop, []string{"x{\"a\":1}", drop}, io.EOF},
		{"array line is garbage", "[1,2]\n" + drop, []string{"[1,2]", drop}, io.EOF},
		{"garbage after an envelope on its line", drop + "junk\n" + event, []string{drop, "junk", event}, io.EOF},
		{"final unterminated garbage line", drop + "\ntrailing junk", []string{drop, "trailing junk"}, io.EOF},
		{"truncated string resynchronizes at the raw newline",
			`{"version":2,"message":{"PotEvent":{"pot_id":"cut here` + "\n" + drop + "\n",
			[]string{`{"version":2,"message":{"PotEvent":{"pot_id":"cut here`, drop}, io.EOF},
		{"stream ends inside an envelope", drop + "\n" + `{"version":2,"message":`, []string{drop}, io.ErrUnexpectedEOF},
		{"stream ends inside a string", drop + `{"version":"2`, []string{drop}, io.ErrUnexpectedEOF},
		{"unbalanced closer ends a frame", `{]` + drop, []string{`{]`, drop}, io.EOF},
	}
	for _, tt := range tests {
		readers := map[string]func() io.Reader{
			"all at once": func() io.Reader { return strings.NewReader(tt.give) },
			"one byte":    func() io.Reader { return iotest.OneByteReader(strings.NewReader(tt.give)) },
			"data+EOF":    func() io.Reader { return iotest.DataErrReader(strings.NewReader(tt.give)) },
			"half":        func() io.Reader { return iotest.HalfReader(strings.NewReader(tt.give)) },
			"random":      func() io.Reader { return &chunkReader{data: []byte(tt.give), rnd: rand.New(rand.NewPCG(1, 2)), max: 7} },
		}
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				r := proto.NewReader(mk(), 0)
				got, err := readAll(t, r, proto.DefaultMaxSize)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
					t.Errorf("frames = %q, want %q", got, tt.want)
				}
				if _, again := r.Next(); !errors.Is(again, tt.wantErr) {
					t.Errorf("Next after the end = %v, want %v again", again, tt.wantErr)
				}
			})
		}
	}
}

// TestReaderDecodes checks that a garbage line and a truncated message each
// cost one decode error and the next envelope still decodes.
func TestReaderDecodes(t *testing.T) {
	stream := "not json\n" +
		`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"torn` + "\n" +
		reg + drop + "\r\n\r\n" + event
	r := proto.NewReader(strings.NewReader(stream), 0)
	want := []struct {
		variant string
		err     error
	}{
		{"", proto.ErrNotJSON},
		{"", proto.ErrNotJSON},
		{"NodeRegistration", nil},
		{"NodeDrop", nil},
		{"PotEvent", nil},
	}
	for i, w := range want {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		e, err := proto.Decode(f)
		if !errors.Is(err, w.err) {
			t.Fatalf("frame %d %q: Decode error %v, want %v", i, f, err, w.err)
		}
		if err == nil && e.Message.Variant() != w.variant {
			t.Fatalf("frame %d: %s, want %s", i, e.Message.Variant(), w.variant)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

func TestReaderMaxSize(t *testing.T) {
	const max = 1000
	// frameOf returns an envelope-shaped frame of exactly n bytes.
	frameOf := func(n int) string {
		head, tail := `{"version":2,"message":{"NodeEvent":{"type":"Error","message":"`, `"}}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	if len(frameOf(max)) != max {
		t.Fatal("frameOf is wrong")
	}
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr error
	}{
		{"frame of exactly max", frameOf(max) + "\n" + drop, []string{frameOf(max), drop}, io.EOF},
		{"frame of max+1 with newline", frameOf(max+1) + "\n" + drop, nil, proto.ErrTooLarge},
		{"frame of max+1 at the end", frameOf(max + 1), nil, proto.ErrTooLarge},
		{"frame after a good one", drop + frameOf(max+1), []string{drop}, proto.ErrTooLarge},
		{"huge frame with newline", frameOf(100*max) + "\n" + drop, nil, proto.ErrTooLarge},
		{"huge frame without newline", `{"a":"` + strings.Repeat("y", 100*max), nil, proto.ErrTooLarge},
		{"huge unclosed nesting", strings.Repeat("[{", 100*max), nil, proto.ErrTooLarge},
		{"garbage line of exactly max", strings.Repeat("g", max) + "\n" + drop, []string{strings.Repeat("g", max), drop}, io.EOF},
		{"garbage line of max+1", strings.Repeat("g", max+1) + "\n" + drop, nil, proto.ErrTooLarge},
		{"huge garbage without newline", strings.Repeat("g", 100*max), nil, proto.ErrTooLarge},
		{"unterminated garbage of exactly max at the end", strings.Repeat("g", max), []string{strings.Repeat("g", max)}, io.EOF},
		{"much whitespace is not a frame", strings.Repeat(" \r\n\t", 100*max) + drop, []string{drop}, io.EOF},
		{"many small frames", strings.Repeat(drop+"\n", 1000), repeat(drop, 1000), io.EOF},
	}
	for _, tt := range tests {
		readers := map[string]func() io.Reader{
			"all at once": func() io.Reader { return strings.NewReader(tt.give) },
			"one byte":    func() io.Reader { return iotest.OneByteReader(strings.NewReader(tt.give)) },
			"random": func() io.Reader {
				return &chunkReader{data: []byte(tt.give), rnd: rand.New(rand.NewPCG(3, 4)), max: 3000}
			},
		}
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				r := proto.NewReader(mk(), max)
				got, err := readAll(t, r, max)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
					t.Errorf("got %d frames, want %d", len(got), len(tt.want))
				}
			})
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestReaderDefaultMax(t *testing.T) {
	for _, give := range []int{0, -1} {
		big := `{"a":"` + strings.Repeat("z", proto.DefaultMaxSize) + `"}`
		r := proto.NewReader(strings.NewReader(big), give)
		if _, err := r.Next(); !errors.Is(err, proto.ErrTooLarge) {
			t.Errorf("NewReader(_, %d): %v, want ErrTooLarge beyond DefaultMaxSize", give, err)
		}
		if r.BufferSize() > proto.DefaultMaxSize+1 {
			t.Errorf("buffer %d", r.BufferSize())
		}
	}
}

func TestReaderTinyMax(t *testing.T) {
	r := proto.NewReader(strings.NewReader("{}\n{}{ }\n{\"a\":1}"), 3)
	got, err := readAll(t, r, 3)
	if want := []string{"{}", "{}", "{ }"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("frames %q, want %q", got, want)
	}
	if !errors.Is(err, proto.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}

// TestReaderLargeFrames grows the buffer from its initial size to a frame
// close to a large limit.
func TestReaderLargeFrames(t *testing.T) {
	const max = 1 << 20
	frame := `{"data":"` + strings.Repeat("q", max-20) + `"}`
	stream := drop + frame + "\n" + frame + drop
	r := proto.NewReader(&chunkReader{data: []byte(stream), rnd: rand.New(rand.NewPCG(5, 6)), max: 64 << 10}, max)
	got, err := readAll(t, r, max)
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if len(got) != 4 || got[1] != frame || got[2] != frame || got[0] != drop || got[3] != drop {
		t.Fatalf("got %d frames", len(got))
	}
}

// badReader claims to have read more than it was given.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

type errReader struct {
	data []byte
	err  error
	// withData returns the error along with the last data.
	withData bool
	reads    int
}

func (e *errReader) Read(p []byte) (int, error) {
	e.reads++
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	if e.withData && len(e.data) == 0 {
		return n, e.err
	}
	return n, nil
}

func TestReaderReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		give    io.Reader
		want    []string
		wantErr error
	}{
		{"error after data", &errReader{data: []byte(drop + "\n" + `{"x"`), err: boom}, []string{drop}, boom},
		{"error with the last data", &errReader{data: []byte(drop + "\n" + event), err: boom, withData: true}, []string{drop, event}, boom},
		{"error with data inside a frame", &errReader{data: []byte(drop + `{"x`), err: boom, withData: true}, []string{drop}, boom},
		{"timeout reader", iotest.TimeoutReader(strings.NewReader(drop + drop)), []string{drop, drop}, iotest.ErrTimeout},
		{"no progress", &errReader{data: []byte(drop), err: nil}, []string{drop}, io.ErrNoProgress},
		{"invalid count", badReader{}, nil, proto.ErrInvalidRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := proto.NewReader(tt.give, 0)
			got, err := readAll(t, r, proto.DefaultMaxSize)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("frames = %q, want %q", got, tt.want)
			}
			if _, again := r.Next(); !errors.Is(again, tt.wantErr) {
				t.Errorf("Next after an error = %v, want the same error", again)
			}
		})
	}
}

// TestReaderErrorNotLost: a read that returns data and an error must not
// lose the error, even if the underlying reader would succeed afterwards.
func TestReaderErrorNotLost(t *testing.T) {
	boom := errors.New("tls: bad record MAC")
	src := &onceErrReader{first: []byte(drop), err: boom, rest: []byte(event)}
	r := proto.NewReader(src, 0)
	got, err := readAll(t, r, proto.DefaultMaxSize)
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want %v", err, boom)
	}
	if len(got) != 1 || got[0] != drop {
		t.Fatalf("frames = %q, want only the data read before the error", got)
	}
}

// onceErrReader returns first with err, then rest as if nothing happened.
type onceErrReader struct {
	first, rest []byte
	err         error
	done        bool
}

func (o *onceErrReader) Read(p []byte) (int, error) {
	if !o.done {
		o.done = true
		return copy(p, o.first), o.err
	}
	if len(o.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, o.rest)
	o.rest = o.rest[n:]
	return n, nil
}

// TestReaderFrameReuse: a frame stays intact until the next call.
func TestReaderFrameReuse(t *testing.T) {
	r := proto.NewReader(strings.NewReader(drop+"\n"+reg), 0)
	a, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	aCopy := bytes.Clone(a)
	b, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(aCopy) != drop || string(b) != reg {
		t.Fatalf("frames %q %q", aCopy, b)
	}
}

// chunks returns its chunks one per Read, like a socket delivering one
// write at a time.
type chunks struct{ c [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.c[0])
	c.c[0] = c.c[0][n:]
	if len(c.c[0]) == 0 {
		c.c = c.c[1:]
	}
	return n, nil
}

// TestReaderShrinksWhenQuiet: a large frame grows the buffer; once the
// stream goes back to small messages the reader waits for the next one
// with a small buffer again, and a burst of back-to-back large frames keeps
// the large one while it lasts.
func TestReaderShrinksWhenQuiet(t *testing.T) {
	big := `{"data":"` + strings.Repeat("x", 5000) + `"}`
	beat := `{"version":2,"message":{"Heartbeat":{}}}`
	burst := strings.Repeat(big, 3)
	src := &chunks{c: [][]byte{[]byte(beat), []byte(big), []byte(beat), []byte(beat), []byte(burst), []byte(beat), []byte(beat)}}
	r := proto.NewReader(src, 0)
	small := r.BufferSize()
	if small > 1024 {
		t.Fatalf("initial buffer %d bytes, want a small one", small)
	}
	next := func(want string) {
		t.Helper()
		f, err := r.Next()
		if err != nil || string(f) != want {
			t.Fatalf("Next = %.40q, %v; want %.40q", f, err, want)
		}
	}
	next(beat)
	next(big)
	grown := r.BufferSize()
	if grown <= small {
		t.Fatalf("buffer %d bytes after a 5 KB frame", grown)
	}
	// The read that brings the first heartbeat still uses the large buffer;
	// the one after it (where an idle connection waits) the small one.
	next(beat)
	next(beat)
	if got := r.BufferSize(); got != small {
		t.Errorf("after quiet reads the buffer is %d bytes, want %d", got, small)
	}
	next(big)
	grown = r.BufferSize()
	next(big)
	next(big)
	if r.BufferSize() != grown {
		t.Errorf("buffer changed inside a burst: %d -> %d", grown, r.BufferSize())
	}
	next(beat)
	next(beat)
	if got := r.BufferSize(); got != small {
		t.Errorf("after the burst the buffer is %d bytes, want %d", got, small)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("end: %v", err)
	}
}
