package proto_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/honeybee/core/proto"
)

// trickySeeds are hand-written inputs that reach the decoder's and the
// reader's corners.
var trickySeeds = []string{
	``,
	`{}`,
	`null`,
	`{"version":2}`,
	`{"version":2,"message":null}`,
	`{"version":2,"message":"NodeDrop"}`,
	`{"version":2,"message":{"NodeDrop":null}}`,
	`{"version":2,"message":{"NodeEvent":"Started"}}`,
	`{"version":2,"message":{"NodeEvent":{"Error":{"message":"m"}}}}`,
	`{"version":2,"message":{"NodeEvent":{"type":"Alarm","description":"d"}}}`,
	`{"version":2,"message":{"NodeRegistration":{"node_id":18446744073709551616,"node_name":"n","node_type":"Full"}}}`,
	`{"version":2,"message":{"NodeRegistration":{"node_id":1,"node_name":"n","node_type":"Full","totp_code":"123456"}}}`,
	`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","timestamp":1e300,"metadata":{}}}}`,
	`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event_type":"e","timestamp":"2024-01-15T10:30:00.123+05:30","data":{"a":[1,{"b":null}]}}}}`,
	`{"version":2,"message":{"PotStatusUpdate":{"node_id":1,"pot_id":"p","status":"","message":"<script>&amp;</script>"}}}`,
	`{"version":2,"message":{"RegistrationAck":{"node_id":1,"accepted":true,"message":null,"totp_key":null}}}`,
	`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"p","honeypot_type":"t","git_url":null,"config":{}}}}}}`,
	`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":"Restart"}}}`,
	`{"version":2,"message":{"BackendRegistration":{"backend_name":"b","backend_type":{"Custom":"x"}}}}`,
	`{"version":2,"message":{"BackendCommand":{"NodeCommand":{"node_id":1,"command":{"StopPot":"p"}}}}}`,
	`{"version":2,"message":{"BackendResponse":{"Success":{"message":"m","data":[1,"x"]}}}}`,
	`{"version":2,"message":{"BackendResponse":{"Failure":"f"}}}`,
	`{"VERSION":2,"Message":"NodeDrop"}`,
	`{"version":2,"message":{"NodeDrop":{}},"version":3}`,
	"{\"version\":2,\"message\":{\"PotEvent\":{\"pot_id\":\"torn\n",
	"{\"a\":\"\\\"}\"}{\"b\":1}\r\n\r\n]]]garbage\n{",
	strings.Repeat("[", 200),
	strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40),
	"\xff\xfe{}",
	"\u00a0{\"version\":2,\"message\":\"NodeDrop\"}",
	`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","timestamp":"1960-01-01T00:00:00Z"}}}`,
	`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","timestamp":"9999-12-31T23:59:59Z"}}}`,
	`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event_type":"e","timestamp":"0000-01-01T00:00:00Z"}}}`,
	`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event_type":"e","timestamp":99999999999.999}}}`,
}

// fuzzSeeds returns every conformance line, each transcript as one stream,
// and the tricky seeds.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, tr := range readTranscripts(f) {
		seeds = append(seeds, tr.lines...)
		seeds = append(seeds, bytes.Join(tr.lines, []byte("\n")), bytes.Join(tr.lines, nil))
	}
	for _, s := range trickySeeds {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzDecode: Decode never panics, and whatever it accepts it can write
// and read back as the same variant; a second round trip is stable.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := proto.Decode(data)
		// The fast path must agree with the general one.
		g, gerr := proto.Decoder{}.DecodeGeneral(data)
		if !sameSentinels(err, gerr) || !reflect.DeepEqual(e, g) {
			t.Fatalf("fast path %+v, %v\ngeneral   %+v, %v", e.Message, err, g.Message, gerr)
		}
		if err != nil {
			if e.Message != nil {
				t.Fatalf("message %+v returned with error %v", e.Message, err)
			}
			return
		}
		b, err := proto.Marshal(e.Message)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", e.Message, err)
		}
		// Marshal may escape <, > and & as \u003c..., so the copy may be
		// larger than the input: allow for it.
		e2, err := proto.Decoder{MaxSize: len(b)}.Decode(b)
		if err != nil {
			t.Fatalf("Decode(Marshal(Decode(%q))) = %v\nmarshalled: %s", data, err, b)
		}
		if e2.Message.Variant() != e.Message.Variant() {
			t.Fatalf("variant %s became %s", e.Message.Variant(), e2.Message.Variant())
		}
		b2, err := proto.Marshal(e2.Message)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzDecodePotEvent: on PotEvent payloads, the fast path of Decode gives
// the same message or the same error as the general path.
func FuzzDecodePotEvent(f *testing.F) {
	for _, tt := range potEventTests {
		f.Add([]byte(tt.give))
	}
	for _, p := range conformancePotEvents(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		data := []byte(env(`{"PotEvent":` + string(payload) + `}`))
		e, err := proto.Decode(data)
		g, gerr := proto.Decoder{}.DecodeGeneral(data)
		if !sameSentinels(err, gerr) || !reflect.DeepEqual(e, g) {
			t.Fatalf("payload %q\nfast path %+v, %v\ngeneral   %+v, %v", payload, e.Message, err, g.Message, gerr)
		}
	})
}

// FuzzDecodePotStatusUpdate: as FuzzDecodePotEvent, for PotStatusUpdate.
func FuzzDecodePotStatusUpdate(f *testing.F) {
	for _, tt := range potStatusTests {
		f.Add([]byte(tt.give))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		data := []byte(env(`{"PotStatusUpdate":` + string(payload) + `}`))
		e, err := proto.Decode(data)
		g, gerr := proto.Decoder{}.DecodeGeneral(data)
		if !sameSentinels(err, gerr) || !reflect.DeepEqual(e, g) {
			t.Fatalf("payload %q\nfast path %+v, %v\ngeneral   %+v, %v", payload, e.Message, err, g.Message, gerr)
		}
	})
}

// seqReader returns data in reads whose sizes cycle through sizes.
type seqReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (s *seqReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(s.sizes) > 0 {
		n = int(s.sizes[s.i%len(s.sizes)]) + 1
		s.i++
	}
	n = min(n, len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// readFrames reads every frame of data through chunks and checks the
// reader's invariants.
func readFrames(t *testing.T, data, chunks []byte, max int) ([][]byte, error) {
	r := proto.NewReader(&seqReader{data: data, sizes: chunks}, max)
	var frames [][]byte
	total, at := 0, 0
	for calls := 0; ; calls++ {
		if calls > len(data)+2 {
			t.Fatalf("%d calls to Next for %d bytes", calls, len(data))
		}
		f, err := r.Next()
		if r.BufferSize() > max+1 {
			t.Fatalf("buffer of %d bytes, max %d", r.BufferSize(), max)
		}
		if err != nil {
			if f != nil {
				t.Fatalf("frame %q with error %v", f, err)
			}
			if total > len(data) {
				t.Fatalf("%d frame bytes from %d input bytes", total, len(data))
			}
			return frames, err
		}
		if len(f) == 0 || len(f) > max {
			t.Fatalf("frame of %d bytes, max %d", len(f), max)
		}
		// Frames come out of the input in order, without overlap.
		i := bytes.Index(data[at:], f)
		if i < 0 {
			t.Fatalf("frame %q is not in the rest of the input", f)
		}
		at += i + len(f)
		total += len(f)
		frames = append(frames, bytes.Clone(f))
	}
}

// FuzzReader: arbitrary bytes in arbitrary chunks never panic, never give a
// frame longer than the maximum or more frame bytes than input, and the
// frames do not depend on how the input was chunked.
func FuzzReader(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, []byte{byte(i), 0, 200, 3}, uint16(64+i*7))
	}
	f.Add([]byte(strings.Repeat(drop, 10)), []byte{0}, uint16(len(drop)))
	f.Add([]byte(strings.Repeat(drop, 10)), []byte{7}, uint16(len(drop)-1))
	f.Fuzz(func(t *testing.T, data, chunks []byte, maxSize uint16) {
		max := 1 + int(maxSize)%4096
		frames, err := readFrames(t, data, chunks, max)
		whole, wholeErr := readFrames(t, data, []byte{255}, max)
		if len(frames) != len(whole) {
			t.Fatalf("%d frames in chunks, %d at once", len(frames), len(whole))
		}
		for i := range frames {
			if !bytes.Equal(frames[i], whole[i]) {
				t.Fatalf("frame %d: %q in chunks, %q at once", i, frames[i], whole[i])
			}
		}
		for _, sentinel := range []error{io.EOF, io.ErrUnexpectedEOF, proto.ErrTooLarge} {
			if errors.Is(err, sentinel) != errors.Is(wholeErr, sentinel) {
				t.Fatalf("error %v in chunks, %v at once", err, wholeErr)
			}
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, proto.ErrTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzParseCommand: ParseCommand never panics and what it accepts marshals
// back to a command it accepts unchanged.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`{"Restart":{}}`, `"Restart"`, `{"StopPot":"p"}`, `{"InstallPot":{"pot_id":"p","honeypot_type":"t","config":{"a":"b"}}}`, `{"X":1}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := proto.ParseCommand(data)
		if err != nil {
			return
		}
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := proto.ParseCommand(b)
		if err != nil {
			t.Fatalf("ParseCommand(%s) = %v", b, err)
		}
		b2, _ := c2.MarshalJSON()
		if !bytes.Equal(b, b2) {
			t.Fatalf("unstable: %s then %s", b, b2)
		}
	})
}

var sentinels = []error{proto.ErrNotJSON, proto.ErrInvalidUTF8, proto.ErrNotEnvelope, proto.ErrUnknownVariant,
	proto.ErrMissingField, proto.ErrInvalidField, proto.ErrTooDeep, proto.ErrTooLarge, proto.ErrInvalidCommand}

// sameSentinels reports whether a and b are both nil or wrap the same
// sentinel errors.
func sameSentinels(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	for _, s := range sentinels {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return true
}

// FuzzSplitVariant: the map-free splitter agrees with encoding/json.
func FuzzSplitVariant(f *testing.F) {
	for _, s := range []string{`"Restart"`, `{"Restart":{}}`, `{"StopPot":"p"}`, `{"A":1,"B":2}`, `{}`, `{"A":}`, `{"A":[}`,
		`{"A":{"b":"}"}}`, `{"A\u0041":1}`, `{"A":1}x`, ` {"A" : null } `, `{"A":tru}`, `{"A":"\ud800"}`, `{"A":1,"A":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // callers check UTF-8 first
		}
		tag, payload, err := proto.SplitVariant(data)
		gtag, gpayload, gerr := proto.SplitVariantGeneral(data)
		if tag != gtag || !bytes.Equal(payload, gpayload) || !sameSentinels(err, gerr) {
			t.Fatalf("SplitVariant(%q) = %q %q %v, general %q %q %v", data, tag, payload, err, gtag, gpayload, gerr)
		}
	})
}
