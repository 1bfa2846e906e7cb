package hub

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is how deeply arrays and objects may nest in a payload, the
// top-level object counting as 1; it is encoding/json's limit.
const maxDepth = 10000

// Reasons scanObject rejects a payload; each wraps ErrBadPayload.
var (
	errNotObject = fmt.Errorf("%w: not a JSON object", ErrBadPayload)
	errSyntax    = fmt.Errorf("%w: invalid JSON", ErrBadPayload)
	errUTF8      = fmt.Errorf("%w: invalid UTF-8", ErrBadPayload)
	errDepth     = fmt.Errorf("%w: nested deeper than %d", ErrBadPayload, maxDepth)
	errTrailing  = fmt.Errorf("%w: data after the object", ErrBadPayload)
	errNodeID    = fmt.Errorf("%w: node_id is not an unsigned 64-bit integer", ErrBadPayload)
	errString    = fmt.Errorf("%w: pot_id or event_type is not a string", ErrBadPayload)
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

// scanObject checks in one pass, without decoding it, that payload is
// exactly one JSON object (RFC 8259, surrounded by optional whitespace),
// valid UTF-8 throughout and nested at most maxDepth deep, so that a frame
// wrapping it is a valid WebSocket text frame of valid JSON.
//
// It returns the top-level members named in want as json.Unmarshal would
// decode them into a struct with uint64 and string fields: names match
// case-insensitively, the last of duplicate members wins, null leaves a
// field as it was, a missing member leaves it zero, and a value of another
// type (a node_id that is negative, fractional, in exponent form or too
// large included) is an error. Every error wraps ErrBadPayload.
func scanObject(payload []byte, want fieldSet) (fields, error) {
	var m members
	if i, err := scanMembers(payload, want, &m); err != nil {
		return fields{}, fmt.Errorf("%w at offset %d", err, i)
	}
	return fields{NodeID: m.nodeID, PotID: m.potID.String(payload), EventType: m.eventType.String(payload)}, nil
}

// members are the fields as scanMembers finds them: the strings as spans
// of the payload, so that only the last of duplicates is converted.
type members struct {
	nodeID           uint64
	potID, eventType strSpan
}

// scanMembers does the work of scanObject and returns the offset of the
// error if there is one.
func scanMembers(b []byte, want fieldSet, m *members) (int, error) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return i, errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i == len(b) || b[i] != '"' {
				return i, errSyntax
			}
			key := i
			var escaped bool
			var err error
			if i, escaped, err = scanString(b, i); err != nil {
				return i, err
			}
			field := matchField(b[key+1:i-1], escaped) & want
			if i = skipSpace(b, i); i == len(b) || b[i] != ':' {
				return i, errSyntax
			}
			i = skipSpace(b, i+1)
			switch field {
			case fieldNodeID:
				i, err = scanUint(b, i, &m.nodeID)
			case fieldPotID:
				i, err = scanStringField(b, i, &m.potID)
			case fieldEventType:
				i, err = scanStringField(b, i, &m.eventType)
			default:
				i, err = skipValue(b, i, 1)
			}
			if err != nil {
				return i, err
			}
			if i = skipSpace(b, i); i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return i, errSyntax
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return i, errTrailing
	}
	return i, nil
}

// matchField returns the field a member name (raw, between its quotes)
// selects, or 0. Like encoding/json it compares the unescaped name
// case-insensitively; of the Unicode case folds it applies, only U+017F
// (to s) and U+212A (to k) reach ASCII, and these names have neither.
func matchField(raw []byte, escaped bool) fieldSet {
	name := raw
	if escaped {
		var buf [16]byte
		name = appendUnescaped(buf[:0], raw)
	}
	switch {
	case equalFoldASCII(name, "node_id"):
		return fieldNodeID
	case equalFoldASCII(name, "pot_id"):
		return fieldPotID
	case equalFoldASCII(name, "event_type"):
		return fieldEventType
	}
	return 0
}

// equalFoldASCII reports whether b equals lower, which is in lower case,
// ignoring the case of ASCII letters.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// scanUint scans the value at b[i] into *v: an integer in the range of
// uint64, or null, which leaves *v as it is.
func scanUint(b []byte, i int, v *uint64) (int, error) {
	if i < len(b) && b[i] == 'n' {
		return scanLiteral(b, i, "null")
	}
	if i == len(b) || (b[i] != '-' && !isDigit(b[i])) {
		return i, errNodeID
	}
	start := i
	i, err := scanNumber(b, i)
	if err != nil {
		return i, err
	}
	var n uint64
	for _, c := range b[start:i] {
		if !isDigit(c) || n > (1<<64-1)/10 {
			return start, errNodeID
		}
		d := uint64(c - '0')
		if n*10 > 1<<64-1-d {
			return start, errNodeID
		}
		n = n*10 + d
	}
	*v = n
	return i, nil
}

// strSpan is where a string value lies in a payload, without its quotes.
type strSpan struct {
	start, end int
	escaped    bool
}

// String returns the span's string, unescaped; it allocates once unless
// the span is empty.
func (s strSpan) String(b []byte) string {
	raw := b[s.start:s.end]
	if s.escaped {
		var buf [64]byte
		return string(appendUnescaped(buf[:0], raw))
	}
	return string(raw)
}

// scanStringField scans the value at b[i] into *s: a string, or null,
// which leaves *s as it is.
func scanStringField(b []byte, i int, s *strSpan) (int, error) {
	if i < len(b) && b[i] == 'n' {
		return scanLiteral(b, i, "null")
	}
	if i == len(b) || b[i] != '"' {
		return i, errString
	}
	end, escaped, err := scanString(b, i)
	if err != nil {
		return end, err
	}
	*s = strSpan{start: i + 1, end: end - 1, escaped: escaped}
	return end, nil
}

// skipValue returns the offset just past the JSON value at b[i], which
// lies in a container at nesting depth depth. Nested containers are
// tracked on a stack rather than by recursion, so a deep payload costs
// no more than a long one.
func skipValue(b []byte, i, depth int) (int, error) {
	var buf [32]byte
	open := buf[:0] // the closing byte of each container entered, innermost last
	var err error
	for {
		// A value starts at b[i].
		if i == len(b) {
			return i, errSyntax
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(open) >= maxDepth {
				return i, errDepth
			}
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			open = append(open, closer)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == closer {
				open = open[:len(open)-1]
				i++
				break // an empty container is a complete value
			}
			if c == '{' {
				if i, err = scanName(b, i); err != nil {
					return i, err
				}
			}
			continue // to the first element's value
		case '"':
			i, _, err = scanString(b, i)
		case 't':
			i, err = scanLiteral(b, i, "true")
		case 'f':
			i, err = scanLiteral(b, i, "false")
		case 'n':
			i, err = scanLiteral(b, i, "null")
		default:
			i, err = scanNumber(b, i)
		}
		if err != nil {
			return i, err
		}

		// A value ends at b[i]: close containers until one has another
		// element.
		for {
			if len(open) == 0 {
				return i, nil
			}
			closer := open[len(open)-1]
			i = skipSpace(b, i)
			if i < len(b) && b[i] == closer {
				open = open[:len(open)-1]
				i++
				continue
			}
			if i == len(b) || b[i] != ',' {
				return i, errSyntax
			}
			i = skipSpace(b, i+1)
			if closer == '}' {
				if i, err = scanName(b, i); err != nil {
					return i, err
				}
			}
			break
		}
	}
}

// scanName scans a member name at b[i] and the colon after it, and
// returns the offset of the member's value.
func scanName(b []byte, i int) (int, error) {
	if i == len(b) || b[i] != '"' {
		return i, errSyntax
	}
	i, _, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	if i = skipSpace(b, i); i == len(b) || b[i] != ':' {
		return i, errSyntax
	}
	return skipSpace(b, i+1), nil
}

// plain marks the bytes that stand for themselves in a JSON string and
// need no further check: printable ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString returns the offset just past the string whose opening quote
// is at b[i], and whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	i++
	for {
		// Skip plain bytes eight at a time while there are eight, then
		// one at a time.
		if i+8 <= len(b) {
			special := notPlain8(binary.LittleEndian.Uint64(b[i:]))
			if special == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(special) >> 3
		} else if i == len(b) {
			return i, false, errSyntax
		} else if plain[b[i]] {
			i++
			continue
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 == len(b) {
				return i, false, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || hex4(b[i+2:i+6]) < 0 {
					return i, false, errSyntax
				}
				i += 6
			default:
				return i, false, errSyntax
			}
		case c < 0x20:
			return i, false, errSyntax
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, false, errUTF8
			}
			i += size
		}
	}
}

// notPlain8 returns, of the eight bytes packed little-endian in x, the high
// bit of each byte that is not plain (a control character, '"', '\\' or
// the start of a non-ASCII rune) set, among possibly others in later bytes:
// the lowest bit set is exact. It is the zero-byte test of "Bit Twiddling
// Hacks" applied to x-0x20 (control characters), x^'"' and x^'\\'.
func notPlain8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	bs := x ^ ('\\' * ones)
	return ((x - 0x20*ones) | (q - ones) | (bs - ones) | x) & highs
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

// scanNumber returns the offset just past the number at b[i].
func scanNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return i, errSyntax
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		if i++; i == len(b) || !isDigit(b[i]) {
			return i, errSyntax
		}
		i = skipDigits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || !isDigit(b[i]) {
			return i, errSyntax
		}
		i = skipDigits(b, i+1)
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanLiteral returns the offset just past lit, which must be at b[i].
func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, errSyntax
	}
	return i + len(lit), nil
}

// skipSpace returns the offset of the first byte at or after b[i] that is
// not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}
