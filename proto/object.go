package proto

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// maxObjectDepth is how deeply ScanObject lets arrays and objects nest, the
// scanned object counting as 1; it is encoding/json's limit.
const maxObjectDepth = 10000

// Reasons ScanObject rejects a payload.
var (
	errNotObject   = fmt.Errorf("%w: not an object", ErrNotJSON)
	errSyntax      = fmt.Errorf("%w: invalid syntax", ErrNotJSON)
	errTrailing    = fmt.Errorf("%w: data after the object", ErrNotJSON)
	errObjectUTF8  = fmt.Errorf("%w in a string", ErrInvalidUTF8)
	errObjectDepth = fmt.Errorf("%w: more than %d levels", ErrTooDeep, maxObjectDepth)
)

// ScanObject checks in one pass, without decoding it, that payload is
// exactly one JSON object (RFC 8259, with optional whitespace around it),
// valid UTF-8 throughout and nested at most 10000 levels deep (the limit of
// encoding/json; the object itself is the first level). On the way it
// calls member, unless member is nil, for each top-level member in order:
// name is the member's name as written between its quotes, escapes not
// resolved (it holds a backslash exactly when it has escapes), and value is
// the member's value as written, without the whitespace around it. Both
// share memory with payload. Members are reported before the rest of the
// payload is checked, so act on them only once ScanObject returns nil.
//
// An error from member stops the scan and is returned as it is. Otherwise
// the error wraps ErrNotJSON (syntax, or not one object), ErrInvalidUTF8 or
// ErrTooDeep, and gives the offset of the problem.
func ScanObject(payload []byte, member func(name, value []byte) error) error {
	b := payload
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return scanErr(errNotObject, i)
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i == len(b) || b[i] != '"' {
				return scanErr(errSyntax, i)
			}
			name := i
			end, err := scanString(b, i)
			if err != nil {
				return scanErr(err, end)
			}
			if i = skipSpace(b, end); i == len(b) || b[i] != ':' {
				return scanErr(errSyntax, i)
			}
			value := skipSpace(b, i+1)
			if i, err = scanValue(b, value, 1); err != nil {
				return scanErr(err, i)
			}
			if member != nil {
				if err := member(b[name+1:end-1], b[value:i]); err != nil {
					return err
				}
			}
			if i = skipSpace(b, i); i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return scanErr(errSyntax, i)
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return scanErr(errTrailing, i)
	}
	return nil
}

func scanErr(err error, offset int) error { return fmt.Errorf("%w at offset %d", err, offset) }

// scanValue returns the offset just past the JSON value at b[i], which
// lies in a container at nesting depth depth. Nested containers are
// tracked on a stack rather than by recursion, so a deep payload costs
// no more than a long one.
func scanValue(b []byte, i, depth int) (int, error) {
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
			if depth+len(open) >= maxObjectDepth {
				return i, errObjectDepth
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
			i, err = scanString(b, i)
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
	i, err := scanString(b, i)
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
// is at b[i].
func scanString(b []byte, i int) (int, error) {
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
			return i, errSyntax
		} else if plain[b[i]] {
			i++
			continue
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 == len(b) {
				return i, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return i, errSyntax
				}
				i += 6
			default:
				return i, errSyntax
			}
		case c < 0x20:
			return i, errSyntax
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, errObjectUTF8
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

// isHex4 reports whether b starts with four hex digits.
func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
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
