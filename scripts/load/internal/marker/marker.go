// Package marker writes and finds the load tool's mark inside an attack
// event: the simulated node's index, a per-node sequence number and the
// send time in Unix nanoseconds, as one JSON-safe token
// "hbl1:<node>:<seq>:<unixnano>". The same token is carried in the
// documented form's data, the compact form's metadata and the quirk
// form's message, so it survives normalization by the gateway and can be
// found in any frame with a byte scan instead of a JSON decode.
//
// Everything here is a pure function, safe for concurrent use.
package marker

import (
	"bytes"
	"math"
	"strconv"
)

// Prefix starts every mark.
const Prefix = "hbl1:"

var prefix = []byte(Prefix)

// Mark is what one event carries.
type Mark struct {
	Node   uint32
	Seq    uint64
	SentNS int64
}

// Append appends the mark's token to dst.
func Append(dst []byte, m Mark) []byte {
	dst = append(dst, Prefix...)
	dst = strconv.AppendUint(dst, uint64(m.Node), 10)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, m.SentNS, 10)
}

// String returns the mark's token.
func (m Mark) String() string { return string(Append(nil, m)) }

// Find returns the first well-formed mark in b.
func Find(b []byte) (Mark, bool) {
	for {
		i := bytes.Index(b, prefix)
		if i < 0 {
			return Mark{}, false
		}
		b = b[i+len(prefix):]
		if m, ok := parse(b); ok {
			return m, true
		}
	}
}

func parse(b []byte) (Mark, bool) {
	node, b, ok := digits(b)
	if !ok || len(b) == 0 || b[0] != ':' || node > math.MaxUint32 {
		return Mark{}, false
	}
	seq, b, ok := digits(b[1:])
	if !ok || len(b) == 0 || b[0] != ':' {
		return Mark{}, false
	}
	ts, _, ok := digits(b[1:])
	if !ok || ts > math.MaxInt64 {
		return Mark{}, false
	}
	return Mark{Node: uint32(node), Seq: seq, SentNS: int64(ts)}, true
}

// digits parses a run of decimal digits that fits in a uint64.
func digits(b []byte) (uint64, []byte, bool) {
	var v uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, b, false
		}
		v = v*10 + d
	}
	if i == 0 {
		return 0, b, false
	}
	return v, b[i:], true
}
