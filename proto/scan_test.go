package proto_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/honeybee/core/proto"
)

// potEventTests are PotEvent payloads that reach the corners of the fast
// path; fast says whether it decodes them itself (true) or leaves them to
// the general path. They are the seeds of FuzzDecodePotEvent too.
var potEventTests = []struct {
	name string
	give string
	fast bool
}{
	{"documented", `{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.session.connect","timestamp":"2024-01-15T10:30:00Z","data":{"src_ip":"192.0.2.77","src_port":51122}}`, true},
	{"compact", `{"node_id":42,"pot_id":"h-1","event":"h.login.failed","message":"wp-login brute force","metadata":{"ip":"203.0.113.9"},"timestamp":1764302400}`, true},
	{"whitespace everywhere", " {\n\t\"node_id\" : 1 ,\r\n \"pot_id\" : \"p\" , \"event\" : \"e\" , \"metadata\" : { \"a\" : [ 1 , 2 ] } } ", true},
	{"empty object", `{}`, true},
	{"unknown members", `{"node_id":1,"pot_id":"p","event":"e","x":[1,{"y":null}],"y":true,"z":-1.5e3,"w":"\u00e9"}`, true},

	// node_id
	{"node_id max uint64", `{"node_id":18446744073709551615,"pot_id":"p","event":"e"}`, true},
	{"node_id zero", `{"node_id":0,"pot_id":"p","event":"e"}`, true},
	{"node_id null", `{"node_id":null,"pot_id":"p","event":"e"}`, true},
	{"node_id null after a value", `{"node_id":1,"pot_id":"p","event":"e","node_id":null}`, true},
	{"node_id value after null", `{"node_id":null,"pot_id":"p","event":"e","node_id":7}`, true},
	{"node_id last duplicate wins", `{"node_id":1,"pot_id":"p","event":"e","node_id":2}`, true},
	{"node_id missing", `{"pot_id":"p","event":"e"}`, true},
	{"node_id overflow", `{"node_id":18446744073709551616,"pot_id":"p","event":"e"}`, false},
	{"node_id far too large", `{"node_id":99999999999999999999999,"pot_id":"p","event":"e"}`, false},
	{"node_id negative", `{"node_id":-1,"pot_id":"p","event":"e"}`, false},
	{"node_id minus zero", `{"node_id":-0,"pot_id":"p","event":"e"}`, false},
	{"node_id fraction", `{"node_id":1.0,"pot_id":"p","event":"e"}`, false},
	{"node_id exponent", `{"node_id":1e3,"pot_id":"p","event":"e"}`, false},
	{"node_id string", `{"node_id":"7","pot_id":"p","event":"e"}`, false},
	{"node_id true", `{"node_id":true,"pot_id":"p","event":"e"}`, false},
	{"node_id object", `{"node_id":{},"pot_id":"p","event":"e"}`, false},
	{"node_id array", `{"node_id":[1],"pot_id":"p","event":"e"}`, false},
	{"node_id bad then good", `{"node_id":"x","node_id":2,"pot_id":"p","event":"e"}`, false},
	{"node_id good then bad", `{"node_id":2,"node_id":-2,"pot_id":"p","event":"e"}`, false},

	// strings
	{"pot_id null after a value", `{"node_id":1,"pot_id":"p","event":"e","pot_id":null}`, true},
	{"pot_id missing", `{"node_id":1,"event_type":"e"}`, true},
	{"pot_id empty", `{"node_id":1,"pot_id":"","event":""}`, true},
	{"pot_id number", `{"node_id":1,"pot_id":5,"event":"e"}`, false},
	{"pot_id object", `{"node_id":1,"pot_id":{"a":"b"},"event":"e"}`, false},
	{"pot_type null keeps the earlier value", `{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","pot_type":null}`, true},
	{"pot_type null alone", `{"node_id":1,"pot_id":"p","pot_type":null,"event_type":"e"}`, true},
	{"pot_type false", `{"node_id":1,"pot_id":"p","pot_type":false,"event_type":"e"}`, false},
	{"event_type and event", `{"node_id":1,"pot_id":"p","event":"c","event_type":"d","metadata":{"m":1},"data":{"d":1}}`, true},
	{"event_type null with event", `{"node_id":1,"pot_id":"p","event_type":"d","event":"c","event_type":null}`, true},
	{"event null after a value", `{"node_id":1,"pot_id":"p","event":"c","event":null}`, true},
	{"event_type array", `{"node_id":1,"pot_id":"p","event_type":["x"]}`, false},
	{"event number", `{"node_id":1,"pot_id":"p","event":1}`, false},
	{"message", `{"node_id":1,"pot_id":"p","event":"e","message":"m"}`, true},
	{"message null", `{"node_id":1,"pot_id":"p","event":"e","message":null}`, true},
	{"message null after a value", `{"node_id":1,"pot_id":"p","event":"e","message":"m","message":null}`, true},
	{"message duplicate", `{"node_id":1,"pot_id":"p","event":"e","message":"a","message":"b"}`, true},
	{"message number", `{"node_id":1,"pot_id":"p","event":"e","message":1}`, false},
	{"escaped strings", `{"node_id":1,"pot_id":"a\"b\\c\/d\u00e9\ud83d\ude00","pot_type":"\u003cx\u003e","event":"\t","message":"\u003cscript\u003e \ud83d lone"}`, true},
	{"non-ASCII strings", `{"node_id":1,"pot_id":"héllo","pot_type":"wörld","event":"€","message":"😀"}`, true},

	// names
	{"names ignore case", `{"NODE_ID":1,"Pot_Id":"p","POT_TYPE":"t","Event_Type":"e","MESSAGE":"m","TimeStamp":5,"DATA":{"a":1}}`, true},
	{"names ignore case compact", `{"Node_id":1,"POT_ID":"p","EVENT":"e","MetaData":{"a":1}}`, true},
	{"names close to fields", `{"node_id ":1,"node_i":2,"pot_id":"p","event":"e","events":1,"datas":2}`, true},
	{"escaped name", `{"node\u005fid":1,"pot_id":"p","event":"e"}`, false},
	{"escaped name that is not a field", `{"node_id":1,"pot_id":"p","event":"e","\u0078":1}`, false},
	{"long s folds into timestamp", `{"node_id":1,"pot_id":"p","event":"e","timeſtamp":5}`, false},
	{"Kelvin sign does not make a field here", `{"node_id":1,"pot_id":"p","event":"e","\u212a":5,"K":6}`, false},
	{"non-ASCII name", `{"node_id":1,"pot_id":"p","event":"e","é":1}`, false},

	// timestamp
	{"timestamp RFC 3339 with offset", `{"node_id":1,"pot_id":"p","event_type":"e","timestamp":"2024-01-15T12:30:00.5+02:00"}`, true},
	{"timestamp escaped", `{"node_id":1,"pot_id":"p","event_type":"e","timestamp":"2024-01-15T10:30:00\u005a"}`, true},
	{"timestamp fraction", `{"node_id":1,"pot_id":"p","event":"e","timestamp":1764302460.25}`, true},
	{"timestamp exponent", `{"node_id":1,"pot_id":"p","event":"e","timestamp":1.76e9}`, true},
	{"timestamp negative", `{"node_id":1,"pot_id":"p","event":"e","timestamp":-5}`, true},
	{"timestamp huge", `{"node_id":1,"pot_id":"p","event":"e","timestamp":1e300}`, true},
	{"timestamp null after a value", `{"node_id":1,"pot_id":"p","event":"e","timestamp":5,"timestamp":null}`, true},
	{"timestamp duplicate", `{"node_id":1,"pot_id":"p","event":"e","timestamp":5,"timestamp":"2024-01-15T10:30:00Z"}`, true},
	{"timestamp garbage", `{"node_id":1,"pot_id":"p","event":"e","timestamp":"yesterday"}`, true},
	{"timestamp of other types", `{"node_id":1,"pot_id":"p","event":"e","timestamp":true,"timestamp":{"a":1},"timestamp":[1]}`, true},

	// data and metadata
	{"data null", `{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","data":null}`, true},
	{"data null does not take metadata", `{"node_id":1,"pot_id":"p","event_type":"e","data":null,"metadata":{"m":1}}`, true},
	{"documented form takes metadata without data", `{"node_id":1,"pot_id":"p","event_type":"e","metadata":{"m":1}}`, true},
	{"compact form ignores data", `{"node_id":1,"pot_id":"p","event":"e","data":{"d":1}}`, true},
	{"data last duplicate wins", `{"node_id":1,"pot_id":"p","event_type":"e","data":{"a":1},"data":{"b":[2,3]}}`, true},
	{"data object then null", `{"node_id":1,"pot_id":"p","event_type":"e","data":{"a":1},"data":null}`, true},
	{"data array", `{"node_id":1,"pot_id":"p","event_type":"e","data":[1,2]}`, true},
	{"data string", `{"node_id":1,"pot_id":"p","event_type":"e","data":"x"}`, true},
	{"metadata number", `{"node_id":1,"pot_id":"p","event":"e","metadata":5}`, true},
	{"data with whitespace inside", "{\"node_id\":1,\"pot_id\":\"p\",\"event_type\":\"e\",\"data\": { \"a\" : [ 1 ,\n2 ] } }", true},
	{"data deep", `{"node_id":1,"pot_id":"p","event_type":"e","data":{"x":` + strings.Repeat("[", 25) + strings.Repeat("]", 25) + `}}`, true},

	// invalid JSON inside the payload
	{"trailing comma", `{"node_id":1,"pot_id":"p","event":"e",}`, false},
	{"trailing comma in data", `{"node_id":1,"pot_id":"p","event_type":"e","data":{"a":[1,]}}`, false},
	{"bad literal in an unknown member", `{"node_id":1,"pot_id":"p","event":"e","x":nul}`, false},
	{"bad number", `{"node_id":01,"pot_id":"p","event":"e"}`, false},
	{"bad escape", `{"node_id":1,"pot_id":"\x","event":"e"}`, false},
	{"raw control character", "{\"node_id\":1,\"pot_id\":\"a\x01\",\"event\":\"e\"}", false},
	{"missing colon", `{"node_id":1,"pot_id" "p","event":"e"}`, false},
	{"single quotes in data", `{"node_id":1,"pot_id":"p","event_type":"e","data":{'a':1}}`, false},
}

// TestDecodePotEventFastPath decodes each payload with Decode and checks
// that the general path gives the same message or the same error, and
// that the fast path took the payloads it should.
func TestDecodePotEventFastPath(t *testing.T) {
	for _, tt := range potEventTests {
		t.Run(tt.name, func(t *testing.T) {
			decodeBoth(t, []byte(env(`{"PotEvent":`+tt.give+`}`)))
			if got := proto.ScanPotEvent([]byte(tt.give)); got != tt.fast {
				t.Errorf("fast path taken: %v, want %v", got, tt.fast)
			}
		})
	}
	t.Run("conformance transcripts", func(t *testing.T) {
		for _, p := range conformancePotEvents(t) {
			decodeBoth(t, []byte(env(`{"PotEvent":`+string(p)+`}`)))
			if !proto.ScanPotEvent(p) {
				t.Errorf("fast path not taken for %s", p)
			}
		}
	})
}

// conformancePotEvents returns the payloads of the PotEvents in the
// conformance transcripts.
func conformancePotEvents(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, tr := range readTranscripts(tb) {
		for _, line := range tr.lines {
			var env struct {
				Message map[string]json.RawMessage `json:"message"`
			}
			if json.Unmarshal(line, &env) == nil && env.Message["PotEvent"] != nil {
				out = append(out, env.Message["PotEvent"])
			}
		}
	}
	if len(out) == 0 {
		tb.Fatal("no PotEvent in the conformance transcripts")
	}
	return out
}

// potStatusTests are PotStatusUpdate payloads for the fast path, as
// potEventTests are for PotEvent; the Go node's empty status is the usual
// one on the ingest path.
var potStatusTests = []struct {
	name string
	give string
	fast bool
}{
	{"status", `{"node_id":7,"pot_id":"cowrie-01","pot_type":"cowrie","status":"Running","message":null}`, true},
	{"Go node's empty status", `{"node_id":7,"pot_id":"cowrie-01","pot_type":"cowrie","status":"","message":"cowrie.login.failed root/123456"}`, true},
	{"no status", `{"node_id":7,"pot_id":"p"}`, true},
	{"unknown status", `{"node_id":7,"pot_id":"p","status":"Exploded"}`, true},
	{"status null keeps the earlier value", `{"node_id":7,"pot_id":"p","status":"Stopped","status":null}`, true},
	{"message null after a value", `{"node_id":7,"pot_id":"p","message":"m","message":null}`, true},
	{"escaped strings", `{"node_id":7,"pot_id":"a\u00e9","status":"\u0052unning","message":"\ud83d\ude00 \t"}`, true},
	{"names ignore case", `{"NODE_ID":7,"Pot_Id":"p","POT_TYPE":"t","Status":"Failed","MESSAGE":"m"}`, true},
	{"unknown members", `{"node_id":7,"pot_id":"p","x":{"status":"Running"},"y":[1,2]}`, true},
	{"node_id missing", `{"pot_id":"p","status":"Running"}`, true},
	{"pot_id missing", `{"node_id":7,"status":"Running"}`, true},
	{"pot_id null", `{"node_id":7,"pot_id":null}`, true},
	{"empty object", `{}`, true},
	{"node_id negative", `{"node_id":-7,"pot_id":"p"}`, false},
	{"node_id string", `{"node_id":"7","pot_id":"p"}`, false},
	{"status number", `{"node_id":7,"pot_id":"p","status":1}`, false},
	{"pot_type object", `{"node_id":7,"pot_id":"p","pot_type":{}}`, false},
	{"message true", `{"node_id":7,"pot_id":"p","message":true}`, false},
	{"escaped name", `{"node_id":7,"pot_id":"p","st\u0061tus":"Running"}`, false},
	{"long s folds into status", `{"node_id":7,"pot_id":"p","ſtatus":"Running"}`, false},
	{"trailing comma", `{"node_id":7,"pot_id":"p",}`, false},
	{"invalid UTF-8", "{\"node_id\":7,\"pot_id\":\"\xff\"}", false},
}

// TestDecodePotStatusUpdateFastPath: Decode's fast path gives the general
// path's message or error, and takes the payloads it should.
func TestDecodePotStatusUpdateFastPath(t *testing.T) {
	for _, tt := range potStatusTests {
		t.Run(tt.name, func(t *testing.T) {
			decodeBoth(t, []byte(env(`{"PotStatusUpdate":`+tt.give+`}`)))
			if got := proto.ScanPotStatusUpdate([]byte(tt.give)); got != tt.fast {
				t.Errorf("fast path taken: %v, want %v", got, tt.fast)
			}
		})
	}
}
