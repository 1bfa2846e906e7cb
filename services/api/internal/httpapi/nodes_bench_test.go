package httpapi

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

// BenchmarkEncode10kNodes is the JSON half of listing 10,000 nodes.
//
//	go test -run '^$' -bench Encode10kNodes ./internal/httpapi/
func BenchmarkEncode10kNodes(b *testing.B) {
	now := time.Now()
	recs := make([]bus.NodeRecord, 10000)
	for i := range recs {
		recs[i] = bus.NodeRecord{NodeID: uint64(i), NodeName: "sensor", NodeType: proto.NodeTypeFull, Status: proto.NodeRunning,
			Connected: true, GatewayID: "gw-1", RemoteAddr: "192.0.2.1:40000", ConnectedSince: now, LastSeen: now}
	}
	alive := func(string) bool { return true }
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			out := struct {
				Nodes []Node `json:"nodes"`
			}{Nodes: make([]Node, len(recs))}
			for i := range recs {
				out.Nodes[i] = nodeOut(&recs[i], alive)
			}
			if err := json.NewEncoder(io.Discard).Encode(out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = buf[:0]
			for i := range recs {
				n := nodeOut(&recs[i], alive)
				buf = n.appendJSON(buf)
			}
		}
	})
}
