package proto

import (
	"bytes"
	"encoding/json"
	"errors"
)

// This file holds the decoder's fast path: a byte scanner that picks the
// parts of the common envelope shape out of the input without building
// intermediate values, and a PotEvent payload decoder on ScanObject.
// Anything they do not fully understand makes them report false, and the
// caller takes the general path through encoding/json, which gives the
// same result for those inputs.

// fastEnvelope reads {"version": <int>, "message": {"Tag": {...}}} (keys in
// either order, any JSON whitespace) where Tag is a variant whose payload
// is decoded into a struct. It checks every byte outside the payload; the
// payload itself is checked by what decodes it (json.Unmarshal, or
// ScanObject for a PotEvent), so the whole input is valid JSON exactly
// when the decode succeeds. data has no surrounding whitespace.
//
// depth is the deepest nesting of the input, counted as checkDepth counts
// it.
func fastEnvelope(data []byte) (version int, tag string, payload []byte, depth int, ok bool) {
	if len(data) == 0 || data[0] != '{' {
		return 0, "", nil, 0, false
	}
	var haveVersion, haveMessage bool
	i := 1
	for {
		key, next, ok := plainString(data, skipSpace(data, i))
		if !ok {
			return 0, "", nil, 0, false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return 0, "", nil, 0, false
		}
		i = skipSpace(data, i+1)
		switch string(key) {
		case "version":
			if haveVersion {
				return 0, "", nil, 0, false
			}
			haveVersion = true
			if version, i, ok = plainInt(data, i); !ok {
				return 0, "", nil, 0, false
			}
		case "message":
			if haveMessage || i >= len(data) || data[i] != '{' {
				return 0, "", nil, 0, false
			}
			haveMessage = true
			t, next, ok := plainString(data, skipSpace(data, i+1))
			if !ok {
				return 0, "", nil, 0, false
			}
			if tag, ok = structVariant(t); !ok {
				return 0, "", nil, 0, false
			}
			i = skipSpace(data, next)
			if i >= len(data) || data[i] != ':' {
				return 0, "", nil, 0, false
			}
			i = skipSpace(data, i+1)
			if i >= len(data) || data[i] != '{' {
				return 0, "", nil, 0, false
			}
			end, d, ok := skipValue(data, i)
			if !ok {
				return 0, "", nil, 0, false
			}
			// The envelope and the message object are two levels.
			payload, depth = data[i:end], 2+d
			i = skipSpace(data, end)
			if i >= len(data) || data[i] != '}' {
				return 0, "", nil, 0, false
			}
			i++
		default:
			return 0, "", nil, 0, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return 0, "", nil, 0, false
		}
		if data[i] == ',' {
			i++
			continue
		}
		if data[i] == '}' && i == len(data)-1 && haveVersion && haveMessage {
			return version, tag, payload, depth, true
		}
		return 0, "", nil, 0, false
	}
}

// decodeVariantFast is decodeVariant with the fast paths of the variants
// that have one.
func decodeVariantFast(tag string, payload []byte) (Message, error) {
	switch tag {
	case "PotEvent":
		if msg, ok, err := scanPotEvent(payload); ok {
			return msg, err
		}
		return decodePotEvent(payload)
	case "PotStatusUpdate":
		if msg, ok, err := scanPotStatusUpdate(payload); ok {
			return msg, err
		}
	}
	return decodeVariant(tag, payload)
}

// scanPotStatusUpdate is decodeVariant's PotStatusUpdate case in one
// ScanObject pass, on the terms of scanPotEvent: for anything it does not
// decode exactly as json.Unmarshal would, it reports false.
func scanPotStatusUpdate(payload []byte) (msg Message, ok bool, err error) {
	var m potStatusMembers
	if ScanObject(payload, m.member) != nil {
		return nil, false, nil
	}
	u := &PotStatusUpdate{NodeID: m.nodeID.n}
	var hasPotID bool
	var status string
	ok = m.potID.unquote(&u.PotID, &hasPotID) &&
		m.potType.unquote(&u.PotType, nil) &&
		m.status.unquote(&status, nil)
	if ok && m.message != nil {
		u.Message = new(string)
		ok = m.message.unquote(u.Message, nil)
	}
	if !ok {
		return nil, false, nil
	}
	if err := required("PotStatusUpdate", "node_id", !m.nodeID.present, "pot_id", !hasPotID); err != nil {
		return nil, true, err
	}
	u.Status = PotStatus(status)
	return u, true, nil
}

// potStatusMembers are the members of a PotStatusUpdate payload, read as
// potEventMembers are: pot_type and status are strings (null leaves them),
// pot_id and message pointers (null resets them).
type potStatusMembers struct {
	nodeID                          rawUint
	potID, potType, status, message rawString
}

var potStatusNames = []string{"node_id", "pot_id", "pot_type", "status", "message"}

// member is the ScanObject callback.
func (m *potStatusMembers) member(name, value []byte) error {
	var ok bool
	switch memberIndex(name, potStatusNames) {
	case -1:
		return errGeneral
	case 0:
		ok = m.nodeID.read(value)
	case 1:
		ok = m.potID.read(value, true)
	case 2:
		ok = m.potType.read(value, false)
	case 3:
		ok = m.status.read(value, false)
	case 4:
		ok = m.message.read(value, true)
	default:
		ok = true // not a field
	}
	if !ok {
		return errGeneral
	}
	return nil
}

// memberIndex returns the index in names (lower case, ASCII) of the
// member name (raw, between its quotes) as json.Unmarshal matches field
// names: exactly, else ignoring case; len(names) for none, and -1 for a
// name with escapes or non-ASCII bytes, which only json.Unmarshal matches
// as it must (see potEventMember).
func memberIndex(name []byte, names []string) int {
	for i, n := range names {
		if string(name) == n {
			return i
		}
	}
	for _, c := range name {
		if c == '\\' || c >= 0x80 {
			return -1
		}
	}
	for i, n := range names {
		if equalFoldASCII(name, n) {
			return i
		}
	}
	return len(names)
}

// errGeneral stops a scan at a member that only the general path decodes
// as it must.
var errGeneral = errors.New("take the general path")

// scanPotEvent is decodePotEvent in one strict pass of ScanObject over the
// payload instead of json.Unmarshal's two (a validating scan, then the
// decode). It takes payloads that ScanObject accepts, whose member names
// have no escapes or non-ASCII bytes, and whose members decodePotEvent
// reads have types that decode; for everything else, every error of
// json.Unmarshal included, it reports false and leaves the payload to
// decodePotEvent, so those errors are always the general path's.
func scanPotEvent(payload []byte) (msg Message, ok bool, err error) {
	var m potEventMembers
	if ScanObject(payload, m.member) != nil {
		return nil, false, nil
	}
	f := potEventFields{
		NodeID: m.nodeID.n, HasNodeID: m.nodeID.present,
		Timestamp: parseTimestamp(m.timestamp),
		// json.RawMessage copies what it decodes, and the event must
		// not share memory with payload.
		Data: bytes.Clone(m.data), Metadata: bytes.Clone(m.metadata),
	}
	ok = m.potID.unquote(&f.PotID, &f.HasPotID) &&
		m.potType.unquote(&f.PotType, nil) &&
		m.eventType.unquote(&f.EventType, &f.HasEventType) &&
		m.event.unquote(&f.Event, &f.HasEvent)
	if ok && m.message != nil {
		f.Message = new(string)
		ok = m.message.unquote(f.Message, nil)
	}
	if !ok {
		return nil, false, nil
	}
	msg, err = f.event()
	return msg, true, err
}

// potEventMembers are the members of a PotEvent payload that
// decodePotEvent reads, as ScanObject reports them, with json.Unmarshal's
// rules for decoding into decodePotEvent's struct: names match
// case-insensitively and the last of duplicates wins; null sets a pointer
// field to nil and leaves pot_type as it is; timestamp, data and metadata
// take any value (null included, which timestamp reads as the zero time
// and the json.RawMessages keep as "null"). Values stay raw until the end,
// so duplicates cost nothing.
type potEventMembers struct {
	nodeID                                    rawUint
	potID, potType, eventType, event, message rawString
	timestamp, data, metadata                 []byte
}

// Names of the members of a PotEvent payload, and 0 for any other.
const (
	potNodeID = 1 + iota
	potPotID
	potPotType
	potEventType
	potEvent
	potMessage
	potTimestamp
	potData
	potMetadata
)

var potEventNames = [...]string{potNodeID: "node_id", potPotID: "pot_id", potPotType: "pot_type",
	potEventType: "event_type", potEvent: "event", potMessage: "message", potTimestamp: "timestamp",
	potData: "data", potMetadata: "metadata"}

// member is the ScanObject callback; it returns errGeneral where only the
// general path knows what to do.
func (m *potEventMembers) member(name, value []byte) error {
	var ok bool
	switch potEventMember(name) {
	case -1:
		return errGeneral
	case potNodeID:
		ok = m.nodeID.read(value)
	case potPotID:
		ok = m.potID.read(value, true)
	case potPotType:
		ok = m.potType.read(value, false)
	case potEventType:
		ok = m.eventType.read(value, true)
	case potEvent:
		ok = m.event.read(value, true)
	case potMessage:
		ok = m.message.read(value, true)
	case potTimestamp:
		m.timestamp, ok = value, true
	case potData:
		m.data, ok = value, true
	case potMetadata:
		m.metadata, ok = value, true
	default:
		ok = true // not a field: json.Unmarshal skips it
	}
	if !ok {
		return errGeneral
	}
	return nil
}

// potEventMember returns which member of a PotEvent payload name (raw,
// between its quotes) is, or 0 for none. For a name with escapes or
// non-ASCII bytes it returns -1: json.Unmarshal unescapes names and folds
// some non-ASCII letters into ASCII ones (U+212A into k, U+017F into s).
func potEventMember(name []byte) int {
	switch string(name) { // the usual spellings first
	case "node_id":
		return potNodeID
	case "pot_id":
		return potPotID
	case "pot_type":
		return potPotType
	case "event_type":
		return potEventType
	case "event":
		return potEvent
	case "message":
		return potMessage
	case "timestamp":
		return potTimestamp
	case "data":
		return potData
	case "metadata":
		return potMetadata
	}
	for _, c := range name {
		if c == '\\' || c >= 0x80 {
			return -1
		}
	}
	for f, n := range potEventNames {
		if n != "" && equalFoldASCII(name, n) {
			return f
		}
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

// rawUint is a *uint64 field as json.Unmarshal decodes it.
type rawUint struct {
	n       uint64
	present bool // false: absent or null
}

// read decodes value, a valid JSON value, into u; it reports false for
// anything but null or a decimal integer that fits a uint64 (json.Unmarshal
// fails on those).
func (u *rawUint) read(value []byte) bool {
	if value[0] == 'n' {
		*u = rawUint{}
		return true
	}
	var n uint64
	for _, c := range value {
		if !isDigit(c) || n > (1<<64-1)/10 {
			return false
		}
		d := uint64(c - '0')
		if n*10 > 1<<64-1-d {
			return false
		}
		n = n*10 + d
	}
	*u = rawUint{n: n, present: true}
	return true
}

// rawString is a string or *string field as json.Unmarshal decodes it:
// a JSON string, quotes included, or nil when absent or (for a *string)
// null.
type rawString []byte

// read takes value, a valid JSON value; null resets a pointer field and
// leaves a string field as it is. It reports false for any other type.
func (s *rawString) read(value []byte, pointer bool) bool {
	switch value[0] {
	case '"':
		*s = value
	case 'n':
		if pointer {
			*s = nil
		}
	default:
		return false
	}
	return true
}

// unquote sets *v to the string s and *present to true, unless s is nil.
// It reports false if the string does not unquote, which for the valid
// JSON string that ScanObject reported it cannot do.
func (s rawString) unquote(v *string, present *bool) bool {
	if s == nil {
		return true
	}
	if present != nil {
		*present = true
	}
	if bytes.IndexByte(s, '\\') < 0 {
		*v = string(s[1 : len(s)-1]) // valid UTF-8 without escapes: the string is its bytes
		return true
	}
	var t string // not v: json.Unmarshal would move *v's owner to the heap
	if json.Unmarshal(s, &t) != nil {
		return false
	}
	*v = t
	return true
}

// structVariant returns the tag of a variant whose object payload the
// decoder reads into a struct, as a constant string.
func structVariant(t []byte) (string, bool) {
	switch string(t) {
	case "NodeRegistration":
		return "NodeRegistration", true
	case "NodeStatusUpdate":
		return "NodeStatusUpdate", true
	case "PotStatusUpdate":
		return "PotStatusUpdate", true
	case "PotEvent":
		return "PotEvent", true
	case "RegistrationAck":
		return "RegistrationAck", true
	case "NodeCommand":
		return "NodeCommand", true
	}
	return "", false
}

// singleKey reads {"Tag": value}, the object form of a variant, when the
// tag has no escapes and value is valid JSON. value shares memory with data.
func singleKey(data []byte) (string, []byte, bool) {
	key, next, ok := plainString(data, skipSpace(data, 1))
	if !ok {
		return "", nil, false
	}
	i := skipSpace(data, next)
	if i >= len(data) || data[i] != ':' {
		return "", nil, false
	}
	start := skipSpace(data, i+1)
	end, _, ok := skipValue(data, start)
	if !ok {
		return "", nil, false
	}
	i = skipSpace(data, end)
	if i != len(data)-1 || data[i] != '}' || !json.Valid(data[start:end]) {
		return "", nil, false
	}
	return string(key), data[start:end], true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString reads a JSON string at data[i] that has no escapes and no
// control characters; it returns its contents and the index after it.
func plainString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt reads a JSON integer literal at data[i] (no fraction or
// exponent, at most 18 digits, so it fits an int) and returns it and the
// index after it.
func plainInt(data []byte, i int) (int, int, bool) {
	neg := i < len(data) && data[i] == '-'
	if neg {
		i++
	}
	start, n := i, 0
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		n = n*10 + int(data[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (data[start] == '0' && digits > 1) {
		return 0, 0, false
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// skipValue returns the index just after the JSON value that starts at
// data[i], following strings, escapes and nesting, and the deepest nesting
// inside it (1 for {} or [], 0 for a string or literal). It does not
// validate: on invalid input the end it finds is only a guess, which the
// caller's validation then rejects.
func skipValue(data []byte, i int) (end, maxDepth int, ok bool) {
	if i >= len(data) {
		return 0, 0, false
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1, 0, true
			}
		}
		return 0, 0, false
	case '{', '[':
		depth, inStr := 0, false
		for j := i; j < len(data); j++ {
			c := data[j]
			if inStr {
				switch c {
				case '\\':
					j++
				case '"':
					inStr = false
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
				maxDepth = max(maxDepth, depth)
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, maxDepth, true
				}
			}
		}
		return 0, 0, false
	}
	// A literal: up to the next delimiter.
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j, 0, j > i
		}
		j++
	}
	return j, 0, j > i
}
