package bus

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends ev as JSON and returns the extended buffer. The bytes
// are exactly those of json.Marshal(ev): the same fields in the same
// order, the same omissions (src_ip when empty, message when nil), strings
// escaped as AppendJSONString does, times as AppendJSONTime writes them,
// and Data compacted with <, >, &, U+2028 and U+2029 escaped, as
// encoding/json writes a json.RawMessage (nil Data is null).
//
// It exists because encoding/json re-validates and compacts Data on every
// call, which is most of the cost of publishing an event. AppendJSON does
// not validate Data: it copies it as it is when it is already compact and
// has nothing to escape, which is what the proto decoder and the
// constructors usually give, and otherwise re-encodes it with
// encoding/json.
//
// Where json.Marshal(ev) fails, AppendJSON still writes a JSON object, with
// no output of json.Marshal to equal: a time encoding/json refuses is
// written as null, an empty non-nil Data as null, and a Data that is not
// valid JSON as it is.
func (ev *AttackEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = AppendJSONString(b, ev.EventID)
	b = append(b, `,"node_id":`...)
	b = strconv.AppendUint(b, ev.NodeID, 10)
	b = append(b, `,"node_id_str":`...)
	b = AppendJSONString(b, ev.NodeIDStr)
	b = append(b, `,"node_name":`...)
	b = AppendJSONString(b, ev.NodeName)
	b = append(b, `,"pot_id":`...)
	b = AppendJSONString(b, ev.PotID)
	b = append(b, `,"pot_type":`...)
	b = AppendJSONString(b, ev.PotType)
	b = append(b, `,"event_type":`...)
	b = AppendJSONString(b, ev.EventType)
	b = append(b, `,"timestamp":`...)
	b = AppendJSONTime(b, ev.Timestamp)
	b = append(b, `,"received_at":`...)
	b = AppendJSONTime(b, ev.ReceivedAt)
	if ev.SrcIP != "" {
		b = append(b, `,"src_ip":`...)
		b = AppendJSONString(b, ev.SrcIP)
	}
	if ev.Message != nil {
		b = append(b, `,"message":`...)
		b = AppendJSONString(b, *ev.Message)
	}
	b = append(b, `,"data":`...)
	b = appendRawJSON(b, ev.Data)
	return append(b, '}')
}

// appendRawJSON appends v as encoding/json writes a json.RawMessage:
// compacted, with HTML characters and U+2028/U+2029 escaped.
func appendRawJSON(b []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(b, "null"...)
	}
	if rawIsFinal(v) {
		return append(b, v...)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, v...) // not valid JSON: nothing better to write
	}
	return append(b, out...)
}

// rawIsFinal reports whether encoding/json would write the valid JSON
// value v unchanged: no white space outside strings, and none of <, >, &,
// U+2028 or U+2029 anywhere.
func rawIsFinal(v []byte) bool {
	// Most data has none of the bytes that may need a change (white space
	// and other bytes up to 0x20, <, >, &, and 0xE2 which starts U+2028 and
	// U+2029): look for them eight bytes at a time.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		lt := func(x uint64, n byte) uint64 { return (x - ones*uint64(n)) &^ x & highs } // a byte < n (n <= 128)
		zero := func(x uint64) uint64 { return (x - ones) &^ x & highs }                 // a zero byte
		if lt(x, 0x21)|zero((x|ones*2)^(ones*'>'))|zero(x^(ones*'&'))|zero(x^(ones*0xE2)) != 0 {
			return rawIsFinalSlow(v)
		}
	}
	for ; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return rawIsFinalSlow(v)
		}
	}
	return true
}

// rawSpecial marks the bytes rawIsFinalSlow must look at.
var rawSpecial = [256]bool{'"': true, '\\': true, ' ': true, '\t': true, '\n': true, '\r': true,
	'<': true, '>': true, '&': true, 0xE2: true}

// rawIsFinalSlow is rawIsFinal, byte by byte, knowing which bytes are
// inside strings (where spaces need no change).
func rawIsFinalSlow(v []byte) bool {
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !rawSpecial[c] {
			continue
		}
		switch c {
		case '<', '>', '&':
			return false
		case 0xE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(v) && v[i+1] == 0x80 && v[i+2]&^1 == 0xA8 {
				return false
			}
		case '"':
			inString = !inString
		case '\\':
			i++ // only inside a string in valid JSON; skips the escaped byte
		default: // white space
			if !inString {
				return false
			}
		}
	}
	return true
}

// AppendJSONTime appends t as encoding/json writes a time.Time: an RFC 3339
// string with as many fractional-second digits as needed (at most nine).
// A time encoding/json refuses to write (a year outside 0 to 9999, or a
// zone offset of 24 hours or more) is written as null.
func AppendJSONTime(b []byte, t time.Time) []byte {
	n := len(b)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	if !strictRFC3339(b[n+1:]) {
		return append(b[:n], "null"...)
	}
	return append(b, '"')
}

// strictRFC3339 makes the checks of time.Time.MarshalJSON on s, the
// RFC3339Nano form of a time.
func strictRFC3339(s []byte) bool {
	num2 := func(b []byte) byte { return 10*(b[0]-'0') + (b[1] - '0') }
	switch {
	case len(s) < len("2006-01-02T15:04:05Z") || s[len("2006")] != '-': // year not exactly 4 digits
		return false
	case s[len(s)-1] != 'Z':
		c := s[len(s)-len("Z07:00")]
		if ('0' <= c && c <= '9') || num2(s[len(s)-len("07:00"):]) >= 24 {
			return false
		}
	}
	return true
}

// AppendJSONString appends s as a JSON string exactly as encoding/json
// (json.Marshal) writes a string: quotes and backslashes escaped, control
// characters as \b, \f, \n, \r, \t or \u00XX, the HTML characters <, > and
// & as \u003c, \u003e and \u0026, U+2028 and U+2029 as \u2028 and \u2029,
// and each byte of invalid UTF-8 as \ufffd.
func AppendJSONString(b []byte, s string) []byte {
	return appendJSONString(b, s, true)
}

// AppendJSONStringNoEscapeHTML is AppendJSONString without the escaping of
// <, > and &: it writes s exactly as a json.Encoder with SetEscapeHTML(false)
// does.
func AppendJSONStringNoEscapeHTML(b []byte, s string) []byte {
	return appendJSONString(b, s, false)
}

// safeSet and htmlSafeSet mark the bytes written as they are in a JSON
// string, without and with HTML escaping: ASCII but control characters,
// quote and backslash (and, in htmlSafeSet, <, > and &).
var safeSet, htmlSafeSet = func() (safe, htmlSafe [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\'
		htmlSafe[c] = safe[c] && c != '<' && c != '>' && c != '&'
	}
	return safe, htmlSafe
}()

func appendJSONString(b []byte, s string, escapeHTML bool) []byte {
	const hex = "0123456789abcdef"
	safe := &safeSet
	if escapeHTML {
		safe = &htmlSafeSet
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if safe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default: // other control characters, and <, > and &
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
