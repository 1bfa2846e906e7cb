package bus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

func BenchmarkNewAttackEvent(b *testing.B) {
	ev := &proto.PotEvent{NodeID: 12345, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed",
		Timestamp: time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC),
		Data:      json.RawMessage(`{"eventid":"cowrie.login.failed","username":"root","password":"123456","session":"a1b2c3d4","src_ip":"192.0.2.77","src_port":51122,"dst_port":2222,"sensor":"edge-fra-01","message":"login attempt [root/123456] failed"}`)}
	who := bus.Identity{NodeID: 12345, NodeName: "edge-fra-01"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		a := bus.NewAttackEvent("0123456789abcdef", who, ev, now)
		if a.SrcIP != "192.0.2.77" {
			b.Fatal(a.SrcIP)
		}
	}
}

func BenchmarkEscapeToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = bus.EscapeToken("cowrie-01")
		_ = bus.EscapeToken("pot with.dots*")
	}
}
