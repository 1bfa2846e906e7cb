package hub

import (
	"encoding/json"
	"errors"
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

// frameTests are the payloads checked by TestFrames and the seeds of
// FuzzEventFrame: the members the frames read, and a few payloads that
// proto.ScanObject rejects (its own tests have the rest).
var frameTests = []struct {
	name string
	give string
}{
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
	{"empty strings", `{"pot_id":"","event_type":""}`},
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
	{"array", `[]`},
	{"trailing data", `{"node_id":1} trailing`},
	{"invalid JSON after the fields", `{"node_id":1,"pot_id":"p","a":[1,]}`},
	{"unclosed object", `{"node_id":1`},
	{"invalid UTF-8 in pot_id", "{\"pot_id\":\"\xc3\"}"},
	{"invalid UTF-8 in a name", "{\"\xe2\x82\":1}"},
	{"invalid UTF-8 after the fields", "{\"node_id\":1,\"a\":\"\xff\"}"},
	// encoding/json's limit, which ScanObject shares
	{"beyond the depth limit in a field", `{"node_id":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
	{"beyond the depth limit after the fields", `{"node_id":1,"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
}

func TestFrames(t *testing.T) {
	for _, tt := range frameTests {
		t.Run(tt.name, func(t *testing.T) {
			checkFrames(t, []byte(tt.give))
		})
	}
	t.Run("bench event", func(t *testing.T) {
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
	for _, tt := range frameTests {
		if len(tt.give) < 1000 { // the deep ones slow the fuzzer down
			f.Add([]byte(tt.give))
		}
	}
	f.Add(benchEvent(f))
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkFrames(t, payload)
	})
}
