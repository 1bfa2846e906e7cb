package bus_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
)

// marshalNoEscapeHTML is what a json.Encoder with SetEscapeHTML(false)
// writes for v, without the trailing newline.
func marshalNoEscapeHTML(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// checkAppendJSON fails t unless ev.AppendJSON writes json.Marshal(ev)
// after whatever the buffer held.
func checkAppendJSON(t *testing.T, ev bus.AttackEvent) {
	t.Helper()
	want, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	prefix := []byte("prefix:")
	got := ev.AppendJSON(append([]byte{}, prefix...))
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("the buffer's contents were not kept: %q", got)
	}
	if got := got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("event %+v\n got %s\nwant %s", ev, got, want)
	}
}

// TestAttackEventAppendJSON: the hand-written encoder produces exactly what
// encoding/json produces, for ordinary and hostile strings, times and data.
func TestAttackEventAppendJSON(t *testing.T) {
	msg := "login attempt [root/123456] failed"
	odd := "quote\" back\\slash \n\r\t \x00\x1f \b\f\x7f <script>&amp; \u2028\u2029 é 🐝 \xff \xe2\x80 end\xc3"
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		give bus.AttackEvent
	}{
		{"documented", bus.AttackEvent{EventID: "gw-1-2-3", NodeID: 12345, NodeIDStr: "12345", NodeName: "my-node",
			PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.session.connect",
			Timestamp: time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC), ReceivedAt: time.Date(2026, 11, 28, 10, 30, 0, 123456789, time.UTC),
			SrcIP: "192.0.2.77", Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122}`)}},
		{"quirk with message", bus.AttackEvent{EventID: "e", NodeID: 1<<63 + 1, NodeIDStr: "9223372036854775809",
			EventType: bus.UnknownEventType, Message: &msg, Timestamp: time.Unix(0, 0).UTC(), ReceivedAt: time.Unix(1, 5).UTC(),
			Data: json.RawMessage(`{}`)}},
		{"hostile strings", bus.AttackEvent{EventID: odd, NodeIDStr: odd, NodeName: odd, PotID: odd, PotType: odd, EventType: odd,
			SrcIP: odd, Message: &odd, Data: json.RawMessage(`{"k":"v"}`)}},
		{"empty message", bus.AttackEvent{Message: new(string), Data: json.RawMessage(`{}`)}},
		{"nil data", bus.AttackEvent{EventID: "e"}},
		{"largest node id", bus.AttackEvent{NodeID: 1<<64 - 1, Data: json.RawMessage(`{}`)}},
		{"zoned and fractional times", bus.AttackEvent{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 120000000, cet),
			ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 1, time.FixedZone("", -(9*3600+30*60))), Data: json.RawMessage(`{}`)}},
		{"years 0 and 9999", bus.AttackEvent{Timestamp: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
			ReceivedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Data: json.RawMessage(`{}`)}},
		{"data with white space", bus.AttackEvent{Data: json.RawMessage(" {\n\t\"a\" : [ 1 , 2 ],\r\n \"msg\": \"two  spaces\\t\" } ")}},
		{"data with HTML", bus.AttackEvent{Data: json.RawMessage(`{"html":"<b>&amp;</b>","esc":"\"<\\\\>\""}`)}},
		{"data with line separators", bus.AttackEvent{Data: json.RawMessage("{\"ls\":\"a\u2028b\u2029c\",\"escaped\":\"\\u2028\"}")}},
		{"data with escapes only", bus.AttackEvent{Data: json.RawMessage(`{"q":"a\"b\\","u":"\u00e9\n","sp":"a b c"}`)}},
		{"data not an object", bus.AttackEvent{Data: json.RawMessage(`[1,"<",null]`)}},
		{"data with non-ASCII", bus.AttackEvent{Data: json.RawMessage(`{"é":"日本 🐝","x":"\u2027\u202a"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkAppendJSON(t, tt.give) })
	}
}

// TestAttackEventAppendJSONRefused: where json.Marshal fails, AppendJSON
// still writes valid JSON, with null in place of what it refuses.
func TestAttackEventAppendJSONRefused(t *testing.T) {
	tests := []struct {
		name string
		give bus.AttackEvent
		want string // a part of the output
	}{
		{"year 10000", bus.AttackEvent{Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Data: json.RawMessage(`{}`)},
			`"timestamp":null,`},
		{"negative year", bus.AttackEvent{ReceivedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), Data: json.RawMessage(`{}`)},
			`"received_at":null,`},
		{"zone offset of 24 hours", bus.AttackEvent{Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
			Data: json.RawMessage(`{}`)}, `"timestamp":null,`},
		{"empty data", bus.AttackEvent{Data: json.RawMessage{}}, `"data":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := json.Marshal(tt.give); err == nil {
				t.Fatal("json.Marshal succeeded: the case tests nothing")
			}
			got := tt.give.AppendJSON(nil)
			if !json.Valid(got) || !bytes.Contains(got, []byte(tt.want)) {
				t.Errorf("got %s, want valid JSON containing %s", got, tt.want)
			}
		})
	}
	t.Run("invalid data is written as it is", func(t *testing.T) {
		ev := bus.AttackEvent{Data: json.RawMessage(`{"a": <`)}
		if got := ev.AppendJSON(nil); !bytes.HasSuffix(got, []byte(`"data":{"a": <}`)) {
			t.Errorf("got %s", got)
		}
	})
}

// jsonPieces are fragments random strings are made of: the characters
// encoding/json escapes, the ones near them, and broken UTF-8.
var jsonPieces = []string{"a", "Z", "0", " ", "  ", "/", "\"", "\\", "<", ">", "&", "\x00", "\x01", "\b", "\t", "\n",
	"\f", "\r", "\x1f", "\x7f", "é", "日", "🐝", "\u2027", "\u2028", "\u2029", "\u202a", "\ufffd", "\xff", "\xc3", "\xe2",
	"\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80"}

func randString(rng *rand.Rand) string {
	var sb strings.Builder
	for range rng.IntN(8) {
		if rng.IntN(4) == 0 {
			sb.WriteByte(byte(rng.IntN(256)))
		} else {
			sb.WriteString(jsonPieces[rng.IntN(len(jsonPieces))])
		}
	}
	return sb.String()
}

// literalPieces are valid contents of a JSON string literal, escaped and
// raw, with characters encoding/json re-escapes in raw data.
var literalPieces = []string{"a", " ", "  ", `\"`, `\\`, `\/`, `\n`, `\t`, `\u0041`, `\u003c`, `\u2028`, `\ud83d\udc1d`,
	"<", ">", "&", "é", "日", "🐝", "\u2028", "\u2029", "\u2027", "x<y&z>w"}

// randData writes a random valid JSON value, with random white space
// around its tokens, at most depth levels deep.
func randData(rng *rand.Rand, sb *strings.Builder, depth int) {
	ws := func() {
		if rng.IntN(4) == 0 {
			sb.WriteString([]string{" ", "\n", "\t", "\r\n", "  "}[rng.IntN(5)])
		}
	}
	str := func() {
		sb.WriteByte('"')
		for range rng.IntN(5) {
			sb.WriteString(literalPieces[rng.IntN(len(literalPieces))])
		}
		sb.WriteByte('"')
	}
	kind := rng.IntN(8)
	if depth == 0 && kind < 2 {
		kind = 2 + rng.IntN(6)
	}
	ws()
	switch kind {
	case 0, 1:
		open, closing := "{", "}"
		if kind == 1 {
			open, closing = "[", "]"
		}
		sb.WriteString(open)
		for i := range rng.IntN(4) {
			if i > 0 {
				ws()
				sb.WriteByte(',')
			}
			if kind == 0 {
				ws()
				str()
				ws()
				sb.WriteByte(':')
			}
			randData(rng, sb, depth-1)
		}
		ws()
		sb.WriteString(closing)
	case 2, 3:
		str()
	case 4:
		sb.WriteString([]string{"0", "-1", "12.5e3", "51122", "1E-7"}[rng.IntN(5)])
	default:
		sb.WriteString([]string{"true", "false", "null"}[rng.IntN(3)])
	}
	ws()
}

// TestAttackEventAppendJSONRandom compares AppendJSON with json.Marshal on
// random events: hostile strings, any zone, data with white space and
// characters to escape.
func TestAttackEventAppendJSONRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("", -(3*3600 + 30*60)),
		time.FixedZone("", 23*3600+59*60), time.FixedZone("odd", 5*3600+7)}
	randTime := func() time.Time {
		// Years 0 to 9999: the times encoding/json writes.
		sec := rng.Int64N(253402300800+62167219200) - 62167219200
		var nsec int64
		switch rng.IntN(3) {
		case 1:
			nsec = rng.Int64N(1e9)
		case 2:
			nsec = rng.Int64N(1000) * 1e6
		}
		return time.Unix(sec, nsec).In(zones[rng.IntN(len(zones))])
	}
	for range 5000 {
		ev := bus.AttackEvent{EventID: randString(rng), NodeID: rng.Uint64(), NodeIDStr: randString(rng),
			NodeName: randString(rng), PotID: randString(rng), PotType: randString(rng), EventType: randString(rng),
			Timestamp: randTime(), ReceivedAt: randTime()}
		if rng.IntN(2) == 0 {
			ev.SrcIP = randString(rng)
		}
		if rng.IntN(2) == 0 {
			m := randString(rng)
			ev.Message = &m
		}
		if rng.IntN(10) > 0 {
			var sb strings.Builder
			randData(rng, &sb, 1+rng.IntN(3))
			ev.Data = json.RawMessage(sb.String())
			if !json.Valid(ev.Data) {
				t.Fatalf("the generator wrote invalid JSON %q", ev.Data)
			}
		}
		checkAppendJSON(t, ev)
	}
}

// FuzzAttackEventAppendJSON: for any strings, time and valid data,
// AppendJSON writes what json.Marshal writes.
func FuzzAttackEventAppendJSON(f *testing.F) {
	f.Add("gw-1-2-3", "cowrie-01", "login <root> & \u2028", []byte(`{"src_ip":"192.0.2.77","src_port":51122}`), int64(1764325800), int64(123456789), 0)
	f.Add("\b\f\x00\x7f", "\xff\xe2\x80", "", []byte(" { \"a\" : \"<\\\"&\" } "), int64(0), int64(0), 3600)
	f.Add("", "", "é🐝", []byte("[\"\u2029\",1e3,null]"), int64(-62167219200), int64(1), -34200)
	f.Add("x", "y", "z", []byte(nil), int64(253402300799), int64(999999999), 86399)
	f.Fuzz(func(t *testing.T, id, pot, msg string, data []byte, sec, nsec int64, offset int) {
		if data != nil && !json.Valid(data) {
			return // AppendJSON does not validate data; json.Marshal fails on it
		}
		ts := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		ev := bus.AttackEvent{EventID: id, NodeIDStr: id, NodeName: msg, PotID: pot, PotType: pot, EventType: msg,
			Timestamp: ts, ReceivedAt: ts.UTC(), SrcIP: pot, Message: &msg, Data: data}
		want, err := json.Marshal(ev)
		got := ev.AppendJSON(nil)
		if err != nil {
			if !json.Valid(got) {
				t.Fatalf("json.Marshal: %v; AppendJSON wrote invalid JSON %s", err, got)
			}
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// TestAppendJSONString: every byte alone, every rune of the first plane,
// and random strings are written as json.Marshal writes them (and, without
// HTML escaping, as an Encoder with SetEscapeHTML(false) does).
func TestAppendJSONString(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := bus.AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
		want = marshalNoEscapeHTML(t, s)
		if got := bus.AppendJSONStringNoEscapeHTML([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendJSONStringNoEscapeHTML(%q) = %s, want %s", s, got[1:], want)
		}
	}
	for c := range 256 {
		check(string([]byte{byte(c)}))
		check("ab" + string([]byte{byte(c)}) + "cd")
	}
	for r := rune(0); r < 0x10000; r++ {
		check(string(r))
	}
	for _, s := range append(append([]string{}, hostile...), jsonPieces...) {
		check(s)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		check(randString(rng))
	}
}

// TestAppendJSONTime: times are written as json.Marshal writes them, and
// those it refuses as null.
func TestAppendJSONTime(t *testing.T) {
	tests := []struct {
		name string
		give time.Time
	}{
		{"zero", time.Time{}},
		{"UTC", time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)},
		{"nanoseconds", time.Date(2026, 11, 28, 10, 30, 0, 123456789, time.UTC)},
		{"trailing zeros dropped", time.Date(2026, 11, 28, 10, 30, 0, 120000000, time.UTC)},
		{"local zone", time.Date(2026, 11, 28, 10, 30, 0, 0, time.FixedZone("CET", 3600))},
		{"negative offset", time.Date(2026, 6, 1, 0, 0, 0, 5, time.FixedZone("", -(9*3600+30*60)))},
		{"offset with seconds", time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("LMT", 5*3600+7))},
		{"offset 23:59", time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", 23*3600+59*60))},
		{"monotonic clock reading", time.Now()},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year -1", time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"offset 24:00", time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		{"offset -100:00", time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", -100*3600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.give)
			if err != nil {
				want = []byte("null")
			}
			if got := bus.AppendJSONTime([]byte("x"), tt.give); string(got) != "x"+string(want) {
				t.Errorf("got %s, want %s (json.Marshal error: %v)", got[1:], want, err)
			}
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := bus.AttackEvent{EventID: "gw-1-2-3", NodeID: 12345, NodeIDStr: "12345", NodeName: "my-node",
		PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed", Timestamp: time.Now(), ReceivedAt: time.Now(),
		SrcIP: "192.0.2.77", Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122,"dst_ip":"10.0.0.5","dst_port":2222,"session":"a1b2c3d4e5f6","username":"root","password":"hunter2","sensor":"edge-fra-01","protocol":"ssh"}`)}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = ev.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
	// Data as a node may send it, with white space: re-encoded.
	spaced := ev
	spaced.Data = json.RawMessage(`{"src_ip": "192.0.2.77", "src_port": 51122, "dst_ip": "10.0.0.5", "dst_port": 2222, "session": "a1b2c3d4e5f6", "username": "root", "password": "hunter2", "sensor": "edge-fra-01", "protocol": "ssh"}`)
	b.Run("append, spaced data", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = spaced.AppendJSON(buf[:0])
		}
	})
}
