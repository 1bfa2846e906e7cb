package proto_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/honeybee/core/proto"
)

// member is one top-level member as ScanObject reports it, its name
// unescaped.
type member struct {
	Name  string
	Value string
}

// refMembers returns the top-level members of payload as encoding/json
// reads them, or ok false unless payload is exactly one JSON object of
// valid UTF-8, which ScanObject must then reject.
func refMembers(payload []byte) (members []member, ok bool) {
	s := strings.TrimLeft(string(payload), " \t\r\n")
	if !json.Valid(payload) || !utf8.Valid(payload) || s == "" || s[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if _, err := dec.Token(); err != nil { // {
		panic(err)
	}
	for dec.More() {
		name, err := dec.Token()
		if err != nil {
			panic(err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			panic(err)
		}
		members = append(members, member{name.(string), string(value)})
	}
	return members, true
}

// checkScanObject fails t if ScanObject accepts payload and encoding/json
// rejects it or reads other members, or the other way round, or an error
// does not wrap the sentinel it should.
func checkScanObject(t *testing.T, payload []byte) {
	t.Helper()
	var got []member
	err := proto.ScanObject(payload, func(name, value []byte) error {
		var s string
		if err := json.Unmarshal([]byte(`"`+string(name)+`"`), &s); err != nil {
			t.Fatalf("ScanObject(%q) gave the name %q: %v", payload, name, err)
		}
		got = append(got, member{s, string(value)})
		return nil
	})
	want, ok := refMembers(payload)
	if (err == nil) != ok {
		t.Fatalf("ScanObject(%q) = %v, want valid %v", payload, err, ok)
	}
	if err == nil {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ScanObject(%q) members\n%q\nwant\n%q", payload, got, want)
		}
		return
	}
	n := 0
	for _, s := range []error{proto.ErrNotJSON, proto.ErrInvalidUTF8, proto.ErrTooDeep} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("ScanObject(%q) = %v, want exactly one of ErrNotJSON, ErrInvalidUTF8, ErrTooDeep", payload, err)
	}
	// encoding/json does not check UTF-8, so for the payloads it
	// accepts invalid UTF-8 is the only reason.
	if json.Valid(payload) && strings.HasPrefix(strings.TrimLeft(string(payload), " \t\r\n"), "{") && !errors.Is(err, proto.ErrInvalidUTF8) {
		t.Errorf("ScanObject(%q) = %v, want ErrInvalidUTF8", payload, err)
	}
}

type scanTest struct {
	name string
	give string
}

// scanTests are the payloads checked by TestScanObject and the seeds of
// FuzzScanObject.
var scanTests = append([]scanTest{
	{"empty", ``},
	{"spaces only", " \t\r\n"},
	{"empty object", `{}`},
	{"surrounding whitespace", " \t\r\n{ \t\r\n} \t\r\n"},
	{"whitespace around members", " { \"a\" : 1 , \"b\"\t:\n[ 1 , 2 ]\r} "},
	{"members", `{"node_id":7,"pot_id":"p","event_type":"cowrie.x","data":{}}`},
	{"duplicate names", `{"a":1,"a":"x","A":null}`},
	{"escaped names", `{"node\u005fid":5,"\u0070ot_id":"p","\"":1,"\\":2,"\/":3}`},
	{"non-ASCII names", `{"é":1,"\u017fpot_id":2,"€😀":3}`},
	{"escaped values", `{"pot_id":"a\"b\\c\/d\be\ff\ng\rh\ti\u0000j\u00e9k\u20acl","event_type":"\ud83d\ude00"}`},
	{"lone surrogates", `{"pot_id":"\ud83d","event_type":"\ude00\ud83dx\ud83d\u0041"}`},
	{"non-ASCII values", `{"pot_id":"héllo wörld €","event_type":"😀"}`},
	{"U+FFFD itself", "{\"pot_id\":\"\xef\xbf\xbd\"}"},
	{"nested values", `{"a":{"b":[1,-2.5e+3,0.1E-2,true,false,null,"s",{},[]],"c":{"d":{"e":[[[]]]}}},"f":[{"g":1},{"h":[2]}]}`},
	{"nested names are not members", `{"a":{"b":1,"c":{"d":2}},"e":[{"f":3}]}`},
	{"numbers", `{"a":[0,-0,1,-1,10,0.5,-0.5,1e5,1E+5,1e-5,123456789012345678901234567890]}`},
	{"top-level literals", `{"a":true,"b":false,"c":null,"d":-0.0e-0}`},
	{"array", `[]`},
	{"string", `"s"`},
	{"number", `1`},
	{"null", `null`},
	{"trailing data", `{"a":1} trailing`},
	{"two objects", `{}{}`},
	{"trailing comma", `{"a":1,}`},
	{"trailing comma in array", `{"a":[1,]}`},
	{"trailing comma in a nested object", `{"a":{"b":1,}}`},
	{"leading comma", `{,"a":1}`},
	{"missing comma", `{"a":1 "b":2}`},
	{"missing colon", `{"a" 1}`},
	{"missing value", `{"a":}`},
	{"missing nested value", `{"a":{"b":}}`},
	{"colon in an array", `{"a":[1:2]}`},
	{"name not a string", `{1:1}`},
	{"nested name not a string", `{"a":{1:1}}`},
	{"unquoted name", `{a:1}`},
	{"single quotes", `{'a':1}`},
	{"unclosed object", `{"a":1`},
	{"unclosed after a name", `{"a"`},
	{"unclosed after a colon", `{"a":`},
	{"unclosed nested object", `{"a":{"b":1}`},
	{"unclosed array", `{"a":[1,2}`},
	{"mismatched closer", `{"a":[1}]`},
	{"unclosed string", `{"a":"b}`},
	{"leading zero", `{"a":01}`},
	{"negative leading zero", `{"a":-01}`},
	{"plus sign", `{"a":+1}`},
	{"bare minus", `{"a":-}`},
	{"dot without digits", `{"a":1.}`},
	{"leading dot", `{"a":.5}`},
	{"exponent without digits", `{"a":1e}`},
	{"exponent sign without digits", `{"a":1e+}`},
	{"number at the end", `{"a":1`},
	{"hex number", `{"a":0x10}`},
	{"NaN", `{"a":NaN}`},
	{"truncated literal", `{"a":tru}`},
	{"literal at the end", `{"a":nul`},
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
	{"truncated UTF-8 in value", "{\"pot_id\":\"\xc3\"}"},
	{"invalid UTF-8 in name", "{\"\xe2\x82\":1}"},
	{"invalid UTF-8 in a nested name", "{\"a\":{\"\xe2\x82\":1}}"},
	{"UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}"},
	{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}"},
	{"invalid UTF-8 outside strings", "{\"a\":1\xff}"},
	{"byte order mark", "\xef\xbb\xbf{}"},
	{"vertical tab is not whitespace", "{\v}"},
	{"non-breaking space is not whitespace", "{\u00a0}"},
	{"depth limit", `{"a":` + strings.Repeat("[", proto.MaxObjectDepth-1) + strings.Repeat("]", proto.MaxObjectDepth-1) + `}`},
	{"depth limit with objects", `{"a":` + strings.Repeat(`{"a":`, proto.MaxObjectDepth-2) + `{}` + strings.Repeat("}", proto.MaxObjectDepth-2) + `}`},
	{"beyond the depth limit", `{"a":` + strings.Repeat("[", proto.MaxObjectDepth) + strings.Repeat("]", proto.MaxObjectDepth) + `}`},
	{"beyond the depth limit with objects", `{"a":` + strings.Repeat(`{"a":`, proto.MaxObjectDepth-1) + `{}` + strings.Repeat("}", proto.MaxObjectDepth-1) + `}`},
}, wordTests()...)

// wordTests put each kind of byte that the string scan must notice at each
// offset of the eight-byte words it reads, in a member name and in a value.
func wordTests() []scanTest {
	var tests []scanTest
	for _, special := range []string{`"`, `\"`, `\\`, `\n`, `\u00e9`, `\q`, "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "\xe2\x82", "€", "😀"} {
		for off := range 10 {
			s := strings.Repeat("x", off) + special + strings.Repeat("y", 20)
			tests = append(tests,
				scanTest{fmt.Sprintf("%q at %d in a name", special, off), `{"` + s + `":1,"pot_id":"p"}`},
				scanTest{fmt.Sprintf("%q at %d in a value", special, off), `{"pot_id":"` + s + `","node_id":1}`})
		}
	}
	return tests
}

func TestScanObject(t *testing.T) {
	for _, tt := range scanTests {
		t.Run(tt.name, func(t *testing.T) {
			checkScanObject(t, []byte(tt.give))
		})
	}
	t.Run("documented pot event", func(t *testing.T) {
		checkScanObject(t, potEventDocumented)
	})
}

// TestScanObjectErrors checks which sentinel each kind of problem gives.
func TestScanObjectErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want error
	}{
		{"not an object", `[1]`, proto.ErrNotJSON},
		{"syntax", `{"a":1,}`, proto.ErrNotJSON},
		{"data after the object", `{} {}`, proto.ErrNotJSON},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", proto.ErrInvalidUTF8},
		{"too deep", `{"a":` + strings.Repeat("[", proto.MaxObjectDepth) + strings.Repeat("]", proto.MaxObjectDepth) + `}`, proto.ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := proto.ScanObject([]byte(tt.give), nil); !errors.Is(err, tt.want) {
				t.Fatalf("ScanObject = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestScanObjectMemberError checks that an error of the callback stops the
// scan and comes back as it is.
func TestScanObjectMemberError(t *testing.T) {
	stop := errors.New("stop")
	var names []string
	err := proto.ScanObject([]byte(`{"a":1,"b":2,"c":3,`), func(name, _ []byte) error {
		names = append(names, string(name))
		if string(name) == "b" {
			return stop
		}
		return nil
	})
	if err != stop || !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Fatalf("ScanObject = %v after %q, want the callback's error after a and b", err, names)
	}
}

// FuzzScanObject: ScanObject accepts exactly what encoding/json and
// utf8.Valid accept as one object, and reports the members encoding/json
// reads.
func FuzzScanObject(f *testing.F) {
	for _, tt := range scanTests {
		if len(tt.give) < 1000 { // the deep ones slow the fuzzer down
			f.Add([]byte(tt.give))
		}
	}
	f.Add(potEventDocumented)
	f.Add(potEventCompact)
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkScanObject(t, payload)
	})
}
