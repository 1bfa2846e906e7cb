package hub

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/honeybee/core/proto"
)

// Reasons scanObject rejects a member; scanObject wraps them in ErrBadPayload.
var (
	errNodeID = errors.New("node_id is not an unsigned 64-bit integer")
	errString = errors.New("pot_id or event_type is not a string")
)

// fieldSet selects the top-level members scanObject extracts.
type fieldSet uint8

const (
	fieldNodeID fieldSet = 1 << iota
	fieldPotID
	fieldEventType
)

// fields are the top-level members of a payload that clients filter on.
type fields struct {
	NodeID    uint64
	PotID     string
	EventType string
}

// scanObject checks with proto.ScanObject that payload is exactly one JSON
// object (RFC 8259, surrounded by optional whitespace), valid UTF-8
// throughout and nested at most 10000 levels deep, so that a frame
// wrapping it is a valid WebSocket text frame of valid JSON.
//
// It returns the top-level members named in want as json.Unmarshal would
// decode them into a struct with uint64 and string fields: names match
// case-insensitively, the last of duplicate members wins, null leaves a
// field as it was, a missing member leaves it zero, and a value of another
// type (a node_id that is negative, fractional, in exponent form or too
// large included) is an error. Every error wraps ErrBadPayload.
func scanObject(payload []byte, want fieldSet) (fields, error) {
	m := members{want: want}
	if err := proto.ScanObject(payload, m.member); err != nil {
		return fields{}, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return fields{NodeID: m.nodeID, PotID: m.potID.String(), EventType: m.eventType.String()}, nil
}

// members collects the fields as proto.ScanObject reports them: the
// strings raw, so that only the last of duplicates is converted.
type members struct {
	want             fieldSet
	nodeID           uint64
	potID, eventType rawString
}

// member is the proto.ScanObject callback.
func (m *members) member(name, value []byte) error {
	switch matchField(name) & m.want {
	case fieldNodeID:
		return readUint(value, &m.nodeID)
	case fieldPotID:
		return m.potID.read(value)
	case fieldEventType:
		return m.eventType.read(value)
	}
	return nil
}

// matchField returns the field a member name (raw, between its quotes)
// selects, or 0. Like encoding/json it compares the unescaped name
// case-insensitively; of the Unicode case folds it applies, only U+017F
// (to s) and U+212A (to k) reach ASCII, and these names have neither.
func matchField(raw []byte) fieldSet {
	name := raw
	if bytes.IndexByte(raw, '\\') >= 0 {
		var buf [16]byte
		name = appendUnescaped(buf[:0], raw)
	}
	switch {
	case bytes.EqualFold(name, []byte("node_id")):
		return fieldNodeID
	case bytes.EqualFold(name, []byte("pot_id")):
		return fieldPotID
	case bytes.EqualFold(name, []byte("event_type")):
		return fieldEventType
	}
	return 0
}

// readUint reads value, one valid JSON value, into *v: an integer in the
// range of uint64, or null, which leaves *v as it is.
func readUint(value []byte, v *uint64) error {
	if value[0] == 'n' {
		return nil
	}
	var n uint64
	for _, c := range value {
		if c < '0' || c > '9' || n > (1<<64-1)/10 {
			return errNodeID
		}
		d := uint64(c - '0')
		if n*10 > 1<<64-1-d {
			return errNodeID
		}
		n = n*10 + d
	}
	*v = n
	return nil
}

// rawString is a string member's value between its quotes, escapes not
// resolved.
type rawString []byte

// read reads value, one valid JSON value, into *s: a string, or null,
// which leaves *s as it is.
func (s *rawString) read(value []byte) error {
	switch value[0] {
	case 'n':
		return nil
	case '"':
		*s = value[1 : len(value)-1]
		return nil
	}
	return errString
}

// String returns the string, unescaped; it allocates once unless the
// string is empty.
func (s rawString) String() string {
	if bytes.IndexByte(s, '\\') >= 0 {
		var buf [64]byte
		return string(appendUnescaped(buf[:0], s))
	}
	return string(s)
}

// hex4 returns the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendUnescaped appends the string raw, the valid body of a JSON string
// between its quotes, unescaped as encoding/json does: a \u escape of a
// surrogate that is not half of a valid pair becomes U+FFFD.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch c = raw[i+1]; c {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
					r = pair
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		dst = append(dst, c) // '"', '\\' and '/' stand for themselves
		i += 2
	}
	return dst
}
