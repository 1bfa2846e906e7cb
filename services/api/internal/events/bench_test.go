package events

import (
	"context"
	"testing"

	"github.com/honeybee/core/services/api/internal/testbus"
)

func fill(b *testing.B, bs *testbus.Bus, n int) {
	b.Helper()
	for i := range n {
		ev := attack(i, uint64(i%100+1), "cowrie-01", "cowrie.login.failed", "198.51.100.1")
		if _, err := bs.PublishEvent(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQuery measures event queries over 20,000 stored events.
//
//	go test -run '^$' -bench Query -benchtime 20x ./internal/events/
func BenchmarkQuery(b *testing.B) {
	s, bs := newStoreB(b)
	fill(b, bs, 20000)
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"newest-100", Query{Newest: true, Limit: 100}},
		{"newest-1000", Query{Newest: true, Limit: 1000}},
		{"oldest-1000", Query{Limit: 1000}},
		{"node-newest-100", Query{Newest: true, Limit: 100, NodeID: ptr(uint64(7))}},
		{"rare-type-scan-all", Query{Newest: true, Limit: 100, EventType: "nothing", MaxScan: 100000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Query(context.Background(), bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
