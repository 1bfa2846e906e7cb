package session

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAppendAttackEvent: the hand-written encoder produces exactly what
// encoding/json produces, for ordinary and hostile strings.
func TestAppendAttackEvent(t *testing.T) {
	msg := "login attempt [root/123456] failed"
	odd := "quote\" back\\slash \n\r\t \x00\x1f <script>&amp; \u2028\u2029 é 🐝 \xff end"
	tests := []struct {
		name string
		give bus.AttackEvent
	}{
		{"documented", bus.AttackEvent{EventID: "gw-1-2-3", NodeID: 12345, NodeIDStr: "12345", NodeName: "my-node",
			PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.session.connect",
			Timestamp: time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC), ReceivedAt: time.Date(2026, 11, 28, 10, 30, 0, 123456789, time.UTC),
			SrcIP: "192.0.2.77", Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122}`)}},
		{"quirk with message, no data", bus.AttackEvent{EventID: "e", NodeID: 1<<63 + 1, NodeIDStr: "9223372036854775809",
			EventType: bus.UnknownEventType, Message: &msg, Timestamp: time.Unix(0, 0).UTC(), ReceivedAt: time.Unix(1, 5).UTC()}},
		{"hostile strings", bus.AttackEvent{EventID: odd, NodeName: odd, PotID: odd, PotType: odd, EventType: odd, SrcIP: odd,
			Message: &odd, Data: json.RawMessage(`{"k":"v"}`)}},
		{"empty message", bus.AttackEvent{Message: new(string), Data: json.RawMessage(`{}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.give
			got := appendAttackEvent(nil, &ev)
			if ev.Data == nil {
				ev.Data = json.RawMessage(`{}`)
			}
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func BenchmarkEncodeAttackEvent(b *testing.B) {
	ev := bus.AttackEvent{EventID: "gw-1-2-3", NodeID: 12345, NodeIDStr: "12345", NodeName: "my-node",
		PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed", Timestamp: time.Now(), ReceivedAt: time.Now(),
		SrcIP: "192.0.2.77", Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122,"dst_ip":"10.0.0.5","dst_port":2222,"session":"a1b2c3d4e5f6","username":"root","password":"hunter2","sensor":"edge-fra-01","protocol":"ssh"}`)}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendAttackEvent(buf[:0], &ev)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}
