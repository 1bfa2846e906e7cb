package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The frame builders are checked against encoding/json, which they
// replaced: the ref* functions below are the old implementation.

// refDecode is the old decodeObject: json.Unmarshal into v, after checking
// that the payload starts with an object.
func refDecode(payload []byte, v any) error {
	i := 0
	for i < len(payload) && (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r') {
		i++
	}
	if i == len(payload) || payload[i] != '{' {
		return ErrBadPayload
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return errors.Join(ErrBadPayload, err)
	}
	return nil
}

func refEventFrame(seq uint64, payload []byte) (*Frame, error) {
	var ev struct {
		NodeID    uint64 `json:"node_id"`
		PotID     string `json:"pot_id"`
		EventType string `json:"event_type"`
	}
	if err := refDecode(payload, &ev); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(payload)+48)
	b = append(b, `{"type":"event","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"data":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return &Frame{Kind: KindEvent, Seq: seq, NodeID: ev.NodeID, PotID: ev.PotID, EventType: ev.EventType, Data: b}, nil
}

func refNodeFrame(payload []byte) (*Frame, error) {
	var n struct {
		NodeID uint64 `json:"node_id"`
	}
	if err := refDecode(payload, &n); err != nil {
		return nil, err
	}
	return &Frame{Kind: KindNode, NodeID: n.NodeID, Data: wrap("node", payload)}, nil
}

func refPotFrame(payload []byte) (*Frame, error) {
	var p struct {
		NodeID uint64 `json:"node_id"`
		PotID  string `json:"pot_id"`
	}
	if err := refDecode(payload, &p); err != nil {
		return nil, err
	}
	return &Frame{Kind: KindPot, NodeID: p.NodeID, PotID: p.PotID, Data: wrap("pot", payload)}, nil
}

// isObject reports whether payload, after leading whitespace, starts with
// an object; with json.Valid that makes it exactly one object.
func isObject(payload []byte) bool {
	s := strings.TrimLeft(string(payload), " \t\r\n")
	return s != "" && s[0] == '{'
}

// checkScan fails t if scanObject accepts payload but json.Valid,
// utf8.Valid and isObject do not, or the other way round.
func checkScan(t *testing.T, payload []byte) {
	t.Helper()
	_, err := scanObject(payload, 0)
	want := json.Valid(payload) && utf8.Valid(payload) && isObject(payload)
	if (err == nil) != want {
		t.Errorf("scanObject(%q) = %v, want valid %v", payload, err, want)
	}
	if err != nil && !errors.Is(err, ErrBadPayload) {
		t.Errorf("scanObject(%q) = %v, not an ErrBadPayload", payload, err)
	}
}

// checkFrames fails t if a frame builder's frame or error differs from the
// old one's for payload. The old builders accept invalid UTF-8 in strings;
// the new ones reject it.
func checkFrames(t *testing.T, payload []byte) {
	t.Helper()
	for _, b := range []struct {
		name     string
		got, ref func([]byte) (*Frame, error)
	}{
		{"EventFrame", func(p []byte) (*Frame, error) { return EventFrame(7, p) }, func(p []byte) (*Frame, error) { return refEventFrame(7, p) }},
		{"NodeFrame", NodeFrame, refNodeFrame},
		{"PotFrame", PotFrame, refPotFrame},
	} {
		got, err := b.got(payload)
		want, wantErr := b.ref(payload)
		if wantErr == nil && !utf8.Valid(payload) {
			want, wantErr = nil, ErrBadPayload
		}
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s(%q) = %+v, %v; want %+v, %v", b.name, payload, got, err, want, wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s(%q) = %v, not an ErrBadPayload", b.name, payload, err)
		}
	}
}

type scanTest struct {
	name string
	give string
}

// scanTests are the payloads checked by TestScanObject and the seeds of
// FuzzEventFrame.
var scanTests = append([]scanTest{
	{"empty", ``},
	{"spaces only", " \t\r\n"},
	{"empty object", `{}`},
	{"surrounding whitespace", " \t\r\n{ \t\r\n} \t\r\n"},
	{"all fields", `{"node_id":7,"pot_id":"p","event_type":"cowrie.x","data":{}}`},
	{"fields in another order", `{"event_type":"e","data":[1,2],"pot_id":"p","node_id":18446744073709551615}`},
	{"missing fields", `{"other":1}`},
	{"null fields", `{"node_id":null,"pot_id":null,"event_type":null}`},
	{"null keeps an earlier value", `{"node_id":3,"pot_id":"p","node_id":null,"pot_id":null}`},
	{"duplicate keys: last wins", `{"node_id":1,"pot_id":"a","node_id":2,"pot_id":"b","event_type":"x","event_type":"y"}`},
	{"duplicate key with a bad first value", `{"node_id":"x","node_id":2}`},
	{"duplicate key with a bad last value", `{"node_id":2,"node_id":-1}`},
	{"names ignore case", `{"NODE_ID":5,"Pot_Id":"p","EVENT_type":"t"}`},
	{"escaped names", `{"node\u005fid":5,"\u0070ot_id":"p","event_typ\u0065":"t"}`},
	{"escaped name that is not a field", `{"node\u005fidx":5,"pot_\u0131d":"p"}`},
	{"Kelvin and long s do not fold into these names", `{"pot_id":"p","\u017fpot_id":"q","event_\u212Aype":"t"}`},
	{"long escaped name", `{"\u006e\u006f\u0064\u0065\u005f\u0069\u0064\u0020\u0020\u0020\u0020\u0020\u0020\u0020\u0020\u0020\u0020\u0020":1}`},
	{"escaped values", `{"pot_id":"a\"b\\c\/d\be\ff\ng\rh\ti\u0000j\u00e9k\u20acl","event_type":"\ud83d\ude00"}`},
	{"lone surrogates", `{"pot_id":"\ud83d","event_type":"\ude00\ud83dx\ud83d\u0041"}`},
	{"long escaped value", `{"pot_id":"` + strings.Repeat(`\u00e9`, 100) + `"}`},
	{"non-ASCII values", `{"pot_id":"héllo wörld €","event_type":"😀"}`},
	{"U+FFFD itself", "{\"pot_id\":\"\xef\xbf\xbd\"}"},
	{"node_id zero", `{"node_id":0}`},
	{"node_id max uint64", `{"node_id":18446744073709551615}`},
	{"node_id overflow", `{"node_id":18446744073709551616}`},
	{"node_id much too large", `{"node_id":99999999999999999999}`},
	{"node_id negative", `{"node_id":-1}`},
	{"node_id minus zero", `{"node_id":-0}`},
	{"node_id fraction", `{"node_id":1.0}`},
	{"node_id exponent", `{"node_id":1e3}`},
	{"node_id string", `{"node_id":"7"}`},
	{"node_id true", `{"node_id":true}`},
	{"node_id object", `{"node_id":{}}`},
	{"node_id array", `{"node_id":[1]}`},
	{"pot_id number", `{"pot_id":1}`},
	{"pot_id false", `{"pot_id":false}`},
	{"pot_id object", `{"pot_id":{"a":"b"}}`},
	{"event_type array", `{"event_type":["x"]}`},
	{"wrong types in other fields", `{"node":"x","pot":1,"event":{}}`},
	{"event_type wrong type (only EventFrame reads it)", `{"node_id":1,"pot_id":"p","event_type":5}`},
	{"pot_id wrong type (NodeFrame does not read it)", `{"node_id":1,"pot_id":5}`},
	{"nested values", `{"a":{"b":[1,-2.5e+3,0.1E-2,true,false,null,"s",{},[]],"c":{"d":{"e":[[[]]]}}},"f":[{"g":1},{"h":[2]}]}`},
	{"numbers", `{"a":[0,-0,1,-1,10,0.5,-0.5,1e5,1E+5,1e-5,123456789012345678901234567890]}`},
	{"array", `[]`},
	{"string", `"s"`},
	{"number", `1`},
	{"null", `null`},
	{"trailing data", `{"a":1} trailing`},
	{"two objects", `{}{}`},
	{"trailing comma", `{"a":1,}`},
	{"trailing comma in array", `{"a":[1,]}`},
	{"missing comma", `{"a":1 "b":2}`},
	{"missing colon", `{"a" 1}`},
	{"unquoted name", `{a:1}`},
	{"single quotes", `{'a':1}`},
	{"unclosed object", `{"a":1`},
	{"unclosed nested object", `{"a":{"b":1}`},
	{"unclosed array", `{"a":[1,2}`},
	{"mismatched closer", `{"a":[1}]`},
	{"unclosed string", `{"a":"b}`},
	{"leading zero", `{"a":01}`},
	{"plus sign", `{"a":+1}`},
	{"bare minus", `{"a":-}`},
	{"dot without digits", `{"a":1.}`},
	{"leading dot", `{"a":.5}`},
	{"exponent without digits", `{"a":1e}`},
	{"exponent sign without digits", `{"a":1e+}`},
	{"hex number", `{"a":0x10}`},
	{"NaN", `{"a":NaN}`},
	{"truncated literal", `{"a":tru}`},
	{"literal with suffix", `{"a":nullx}`},
	{"capitalised literal", `{"a":True}`},
	{"bad escape", `{"a":"\x"}`},
	{"escaped single quote", `{"a":"\'"}`},
	{"short unicode escape", `{"a":"\u12"}`},
	{"non-hex unicode escape", `{"a":"\u12g4"}`},
	{"backslash at the end", `{"a":"\`},
	{"raw tab in string", "{\"a\":\"\t\"}"},
	{"raw newline in string", "{\"a\":\"\n\"}"},
	{"raw NUL in string", "{\"a\":\"\x00\"}"},
	{"DEL in string", "{\"a\":\"\x7f\"}"},
	{"invalid UTF-8 in value", "{\"a\":\"\xff\"}"},
	{"invalid UTF-8 in pot_id", "{\"pot_id\":\"\xc3\"}"},
	{"invalid UTF-8 in name", "{\"\xe2\x82\":1}"},
	{"UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}"},
	{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}"},
	{"invalid UTF-8 outside strings", "{\"a\":1\xff}"},
	{"byte order mark", "\xef\xbb\xbf{}"},
	{"vertical tab is not whitespace", "{\v}"},
	{"non-breaking space is not whitespace", "{\u00a0}"},
	{"depth limit", `{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`},
	{"depth limit with objects", `{"a":` + strings.Repeat(`{"a":`, maxDepth-2) + `{}` + strings.Repeat("}", maxDepth-2) + `}`},
	{"beyond the depth limit", `{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`},
	{"beyond the depth limit in a field", `{"node_id":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`},
}, wordTests()...)

// wordTests put each kind of byte that scanString must notice at each
// offset of the eight-byte words it reads, in a member name and in pot_id.
func wordTests() []scanTest {
	var tests []scanTest
	for _, special := range []string{`"`, `\"`, `\\`, `\n`, `\u00e9`, `\q`, "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "\xe2\x82", "€", "😀"} {
		for off := range 10 {
			s := strings.Repeat("x", off) + special + strings.Repeat("y", 20)
			tests = append(tests,
				scanTest{fmt.Sprintf("%q at %d in a name", special, off), `{"` + s + `":1,"pot_id":"p"}`},
				scanTest{fmt.Sprintf("%q at %d in pot_id", special, off), `{"pot_id":"` + s + `","node_id":1}`})
		}
	}
	return tests
}

func TestScanObject(t *testing.T) {
	for _, tt := range scanTests {
		t.Run(tt.name, func(t *testing.T) {
			checkScan(t, []byte(tt.give))
			checkFrames(t, []byte(tt.give))
		})
	}
	t.Run("bench event", func(t *testing.T) {
		checkScan(t, benchEvent(t))
		checkFrames(t, benchEvent(t))
	})
}

// TestScanObjectFields spells out what encoding/json does with the
// unusual cases, so that a change of the reference shows here.
func TestScanObjectFields(t *testing.T) {
	tests := []struct {
		give string
		want fields
	}{
		{`{}`, fields{}},
		{`{"node_id":1,"pot_id":"a","node_id":2,"pot_id":"b","event_type":"x","event_type":"y"}`, fields{2, "b", "y"}},
		{`{"node_id":3,"pot_id":"p","node_id":null,"pot_id":null}`, fields{3, "p", ""}},
		{`{"NODE_ID":5,"Pot_Id":"p","EVENT_type":"t"}`, fields{5, "p", "t"}},
		{`{"node\u005fid":5,"pot_id":"a\"b\u00e9\ud83d\ude00\ud83d"}`, fields{5, "a\"bé😀\uFFFD", ""}},
		{`{"node_id":18446744073709551615}`, fields{NodeID: 1<<64 - 1}},
	}
	for _, tt := range tests {
		got, err := scanObject([]byte(tt.give), fieldNodeID|fieldPotID|fieldEventType)
		if err != nil || got != tt.want {
			t.Errorf("scanObject(%s) = %+v, %v; want %+v", tt.give, got, err, tt.want)
		}
	}
}

func FuzzEventFrame(f *testing.F) {
	for _, tt := range scanTests {
		if len(tt.give) < 1000 { // the deep ones slow the fuzzer down
			f.Add([]byte(tt.give))
		}
	}
	f.Add(benchEvent(f))
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkScan(t, payload)
		checkFrames(t, payload)
	})
}
