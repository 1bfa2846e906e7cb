package proto

import "encoding/json"

// This file holds the decoder's fast path: a byte scanner that picks the
// parts of the common envelope shape out of the input without building
// intermediate values. Anything it does not fully understand makes it
// report false, and the caller takes the general path through
// encoding/json, which gives the same result for those inputs.

// fastEnvelope reads {"version": <int>, "message": {"Tag": {...}}} (keys in
// either order, any JSON whitespace) where Tag is a variant whose payload
// is decoded by json.Unmarshal into a struct. It checks every byte outside
// the payload; the payload itself is checked by the json.Unmarshal that
// decodes it, so the whole input is valid JSON exactly when the decode
// succeeds. data has no surrounding whitespace.
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

// structVariant returns the tag of a variant whose object payload the
// decoder reads with json.Unmarshal into a struct, as a constant string.
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
