package session

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/honeybee/core/proto/bus"
)

// appendAttackEvent appends ev as JSON, with the fields and omissions of
// json.Marshal(ev). It exists because encoding/json re-validates and
// compacts the raw data object of every event, which is most of the
// gateway's per-event cost; ev.Data comes from the decoder and is valid
// JSON already (an empty Data is written as {}).
func appendAttackEvent(b []byte, ev *bus.AttackEvent) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"node_id":`...)
	b = strconv.AppendUint(b, ev.NodeID, 10)
	b = append(b, `,"node_id_str":`...)
	b = appendString(b, ev.NodeIDStr)
	b = append(b, `,"node_name":`...)
	b = appendString(b, ev.NodeName)
	b = append(b, `,"pot_id":`...)
	b = appendString(b, ev.PotID)
	b = append(b, `,"pot_type":`...)
	b = appendString(b, ev.PotType)
	b = append(b, `,"event_type":`...)
	b = appendString(b, ev.EventType)
	b = append(b, `,"timestamp":`...)
	b = appendTime(b, ev.Timestamp)
	b = append(b, `,"received_at":`...)
	b = appendTime(b, ev.ReceivedAt)
	if ev.SrcIP != "" {
		b = append(b, `,"src_ip":`...)
		b = appendString(b, ev.SrcIP)
	}
	if ev.Message != nil {
		b = append(b, `,"message":`...)
		b = appendString(b, *ev.Message)
	}
	b = append(b, `,"data":`...)
	if len(ev.Data) == 0 {
		b = append(b, `{}`...)
	} else {
		b = append(b, ev.Data...)
	}
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string, escaping as encoding/json does
// (HTML characters, U+2028 and U+2029 included); invalid UTF-8 becomes
// U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
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
