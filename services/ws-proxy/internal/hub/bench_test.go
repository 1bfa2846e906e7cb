package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
)

// benchEvent is an attack event as the gateway publishes it: a Cowrie login
// attempt with the usual session data, 600-odd bytes.
func benchEvent(tb testing.TB) []byte {
	tb.Helper()
	msg := "login attempt [root/123456] failed"
	ev := bus.AttackEvent{
		EventID: "gw1-0000000000001234", NodeID: 42, NodeIDStr: "42", NodeName: "sensor-eu-1",
		PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed",
		Timestamp:  time.Date(2026, 11, 28, 7, 0, 0, 123456000, time.UTC),
		ReceivedAt: time.Date(2026, 11, 28, 7, 0, 0, 124456000, time.UTC),
		SrcIP:      "203.0.113.7", Message: &msg,
		Data: json.RawMessage(`{"session":"a1b2c3d4e5f6","src_port":52144,"dst_ip":"10.0.0.5","dst_port":22,"protocol":"ssh","username":"root","password":"123456","client_version":"SSH-2.0-libssh2_1.10.0","hassh":"ec7378c1a92f5a8dde7e8b7a1ddf33d1","geo":{"country":"NL","asn":64500,"as_org":"Example Transit"},"tags":["bruteforce","mirai-like"],"attempt":3}`),
	}
	return ev.AppendJSON(nil)
}

func BenchmarkEventFrame(b *testing.B) {
	payload := benchEvent(b)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		fr, err := EventFrame(uint64(i), payload)
		if err != nil || fr.NodeID != 42 {
			b.Fatal(fr, err)
		}
	}
}

func BenchmarkJSONValid(b *testing.B) {
	payload := benchEvent(b)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if !json.Valid(payload) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkEventFrameRef is the encoding/json implementation EventFrame
// replaced, for comparison.
func BenchmarkEventFrameRef(b *testing.B) {
	payload := benchEvent(b)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		fr, err := refEventFrame(uint64(i), payload)
		if err != nil || fr.NodeID != 42 {
			b.Fatal(fr, err)
		}
	}
}
