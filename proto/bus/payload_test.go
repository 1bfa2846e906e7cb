package bus_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

func strp(s string) *string { return &s }

func TestNewAttackEvent(t *testing.T) {
	received := time.Date(2026, 11, 28, 10, 31, 0, 0, time.FixedZone("CET", 3600))
	nodeTime := time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)
	who := bus.Identity{NodeID: 9223372036854775809, NodeName: "edge-fra-01"}
	tests := []struct {
		name string
		give proto.PotEvent
		want bus.AttackEvent
	}{
		{"documented with src_ip",
			proto.PotEvent{NodeID: 1, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.session.connect", Timestamp: nodeTime,
				Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122}`)},
			bus.AttackEvent{PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.session.connect", Timestamp: nodeTime,
				SrcIP: "192.0.2.77", Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122}`)}},
		{"compact with ip in metadata",
			proto.PotEvent{NodeID: 42, PotID: "honnypotter-1", EventType: "honnypotter.login.failed", Message: strp("wp-login brute force"),
				Timestamp: time.Unix(1764302400, 0), Data: json.RawMessage(`{"ip":"203.0.113.9","username":"admin"}`), Form: proto.PotEventCompact},
			bus.AttackEvent{PotID: "honnypotter-1", EventType: "honnypotter.login.failed", Message: strp("wp-login brute force"),
				Timestamp: time.Unix(1764302400, 0).UTC(), SrcIP: "203.0.113.9", Data: json.RawMessage(`{"ip":"203.0.113.9","username":"admin"}`)}},
		{"src_ip preferred over ip",
			proto.PotEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, Data: json.RawMessage(`{"ip":"198.51.100.1","src_ip":"192.0.2.1"}`)},
			bus.AttackEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, SrcIP: "192.0.2.1", Data: json.RawMessage(`{"ip":"198.51.100.1","src_ip":"192.0.2.1"}`)}},
		{"src_ip not a string falls back to ip",
			proto.PotEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, Data: json.RawMessage(`{"src_ip":12,"ip":"198.51.100.1"}`)},
			bus.AttackEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, SrcIP: "198.51.100.1", Data: json.RawMessage(`{"src_ip":12,"ip":"198.51.100.1"}`)}},
		{"empty src_ip falls back to ip",
			proto.PotEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, Data: json.RawMessage(`{"src_ip":"","ip":"198.51.100.1"}`)},
			bus.AttackEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, SrcIP: "198.51.100.1", Data: json.RawMessage(`{"src_ip":"","ip":"198.51.100.1"}`)}},
		{"no address",
			proto.PotEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, Data: json.RawMessage(`{"ip":["x"]}`)},
			bus.AttackEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, Data: json.RawMessage(`{"ip":["x"]}`)}},
		{"no data and no timestamp",
			proto.PotEvent{PotID: "p", PotType: "t", EventType: "e"},
			bus.AttackEvent{PotID: "p", PotType: "t", EventType: "e", Timestamp: received.UTC(), Data: json.RawMessage(`{}`)}},
		{"node timestamp in another zone becomes UTC",
			proto.PotEvent{PotID: "p", EventType: "e", Timestamp: nodeTime.In(time.FixedZone("X", -5*3600))},
			bus.AttackEvent{PotID: "p", EventType: "e", Timestamp: nodeTime, Data: json.RawMessage(`{}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bus.NewAttackEvent("ev-1", who, &tt.give, received)
			want := tt.want
			want.EventID, want.NodeID, want.NodeIDStr, want.NodeName, want.ReceivedAt = "ev-1", who.NodeID, "9223372036854775809", who.NodeName, received.UTC()
			if got.Timestamp.Location() != time.UTC || got.ReceivedAt.Location() != time.UTC {
				t.Errorf("times not in UTC: %v %v", got.Timestamp, got.ReceivedAt)
			}
			if !got.Timestamp.Equal(want.Timestamp) || !got.ReceivedAt.Equal(want.ReceivedAt) {
				t.Errorf("times %v %v, want %v %v", got.Timestamp, got.ReceivedAt, want.Timestamp, want.ReceivedAt)
			}
			got.Timestamp, got.ReceivedAt, want.Timestamp, want.ReceivedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestAttackEventJSON checks the wire shape of the normalized event.
func TestAttackEventJSON(t *testing.T) {
	ev := bus.NewAttackEvent("ev-1", bus.Identity{NodeID: 18446744073709551615, NodeName: "n"},
		&proto.PotEvent{PotID: "p", PotType: "t", EventType: "e", Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))},
		time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC))
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event_id":"ev-1","node_id":18446744073709551615,"node_id_str":"18446744073709551615","node_name":"n","pot_id":"p","pot_type":"t","event_type":"e","timestamp":"2026-01-02T02:04:05Z","received_at":"2026-01-02T03:04:06Z","data":{}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestNewQuirkEvent(t *testing.T) {
	received := time.Date(2026, 11, 28, 10, 31, 0, 5, time.FixedZone("CET", 3600))
	who := bus.Identity{NodeID: 5, NodeName: "go-node"}
	tests := []struct {
		name     string
		give     proto.PotStatusUpdate
		wantData string
	}{
		{"empty status", proto.PotStatusUpdate{NodeID: 5, PotID: "cowrie-01", Message: strp("login attempt [root/123456] failed")}, `{}`},
		{"unknown status kept in data", proto.PotStatusUpdate{NodeID: 5, PotID: "cowrie-01", PotType: "cowrie", Status: "Weird \"one\""}, `{"status":"Weird \"one\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bus.NewQuirkEvent("q-1", who, &tt.give, received)
			want := bus.AttackEvent{EventID: "q-1", NodeID: 5, NodeIDStr: "5", NodeName: "go-node", PotID: tt.give.PotID, PotType: tt.give.PotType,
				EventType: bus.UnknownEventType, Message: tt.give.Message, Data: json.RawMessage(tt.wantData)}
			if !got.Timestamp.Equal(received) || !got.ReceivedAt.Equal(received) || got.Timestamp.Location() != time.UTC {
				t.Errorf("times %v %v, want receipt time %v in UTC", got.Timestamp, got.ReceivedAt, received)
			}
			got.Timestamp, got.ReceivedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestConformanceAttackEvents normalizes the attack events of each shared
// transcript and checks the source address every one of them carries.
func TestConformanceAttackEvents(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/conformance/*.jsonl")
	if len(files) == 0 {
		t.Fatal("no transcripts in ../../../shared/conformance")
	}
	received := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var n int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			e, err := proto.Decode(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var ev bus.AttackEvent
			switch m := e.Message.(type) {
			case *proto.PotEvent:
				ev = bus.NewAttackEvent("x", bus.Identity{NodeID: m.NodeID}, m, received)
				if ev.SrcIP == "" || ev.Timestamp.Equal(received) || !json.Valid(ev.Data) || ev.Data[0] != '{' {
					t.Errorf("%s: %+v", filepath.Base(f), ev)
				}
			case *proto.PotStatusUpdate:
				if m.IsState() {
					continue
				}
				ev = bus.NewQuirkEvent("x", bus.Identity{NodeID: m.NodeID}, m, received)
				if ev.EventType != bus.UnknownEventType || ev.Message == nil || !strings.Contains(*ev.Message, "login") {
					t.Errorf("%s: %+v", filepath.Base(f), ev)
				}
			default:
				continue
			}
			n++
		}
	}
	if n != 7 {
		t.Errorf("%d attack events in the transcripts, want 7 (1 + 2 + 4 in expect.json)", n)
	}
}

func TestNodeRecordLive(t *testing.T) {
	alive := func(id string) bool { return id == "gw-1" }
	tests := []struct {
		name string
		give bus.NodeRecord
		want bool
	}{
		{"connected through a live gateway", bus.NodeRecord{Connected: true, GatewayID: "gw-1"}, true},
		{"connected through a dead gateway", bus.NodeRecord{Connected: true, GatewayID: "gw-2"}, false},
		{"disconnected", bus.NodeRecord{GatewayID: "gw-1"}, false},
	}
	for _, tt := range tests {
		if got := tt.give.Live(alive); got != tt.want {
			t.Errorf("%s: Live = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNodeRecordJSON(t *testing.T) {
	r := bus.NodeRecord{NodeID: 1, NodeIDStr: "1", NodeName: "n", NodeType: proto.NodeTypeFull, Status: proto.NodeRunning, Connected: true,
		ConnectedSince: time.Unix(0, 0).UTC(), LastSeen: time.Unix(0, 0).UTC()}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("disconnected_at")) || bytes.Contains(b, []byte("gateway_id")) {
		t.Errorf("empty optional fields written: %s", b)
	}
	var back bus.NodeRecord
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

// TestSrcIP: the scanning srcIP agrees with encoding/json on every shape
// of data the decoder lets through.
func TestSrcIP(t *testing.T) {
	tests := []struct{ give, want string }{
		{`{}`, ""},
		{` { } `, ""},
		{`{"src_ip":"192.0.2.1"}`, "192.0.2.1"},
		{`{"ip":"198.51.100.1"}`, "198.51.100.1"},
		{`{"ip":"198.51.100.1","src_ip":"192.0.2.1"}`, "192.0.2.1"},
		{`{"src_ip":"","ip":"198.51.100.1"}`, "198.51.100.1"},
		{`{"src_ip":null,"ip":"198.51.100.1"}`, "198.51.100.1"},
		{`{"src_ip":42,"ip":7}`, ""},
		{`{"src_ip":"192.0.2.1","src_ip":"192.0.2.2"}`, "192.0.2.2"},
		{`{"src_ip":"192.0.2.1","src_ip":null}`, ""},
		{`{"SRC_IP":"192.0.2.3"}`, "192.0.2.3"},
		{`{"Ip":"192.0.2.4"}`, "192.0.2.4"},
		{`{"ſrc_ip":"192.0.2.5"}`, "192.0.2.5"}, // U+017F folds to s in encoding/json
		{`{"src_ip":"192.0.2.\u0036"}`, "192.0.2.6"},
		{`{"src\u005fip":"192.0.2.7"}`, "192.0.2.7"},
		{`{"nested":{"src_ip":"10.0.0.1"},"list":[{"ip":"10.0.0.2"},"]}\"{"],"ip":"192.0.2.8"}`, "192.0.2.8"},
		{`{"nested":{"src_ip":"10.0.0.1"}}`, ""},
		{"{\n\t\"src_ip\" : \"192.0.2.9\" ,\r\n\"x\":[1, 2 ,{}] }", "192.0.2.9"},
		{`{"a":true,"b":false,"c":null,"d":-1.5e3,"ip":"192.0.2.10"}`, "192.0.2.10"},
		{`[]`, ""},
		{`"src_ip"`, ""},
		{`null`, ""},
	}
	for _, tt := range tests {
		if got := bus.SrcIP([]byte(tt.give)); got != tt.want {
			t.Errorf("SrcIP(%s) = %q, want %q", tt.give, got, tt.want)
		}
		if got := bus.SrcIPSlow([]byte(tt.give)); got != tt.want {
			t.Errorf("SrcIPSlow(%s) = %q, want %q (the table is wrong)", tt.give, got, tt.want)
		}
	}
}
