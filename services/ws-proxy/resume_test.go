package wsproxy_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

// TestStreamResume disconnects and resumes with since= several times
// while events keep flowing, and counts: every matching event after the
// first one seen arrives exactly once, in order, across all sessions.
func TestStreamResume(t *testing.T) {
	tests := []struct {
		name  string
		give  string // query filter
		match func(node uint64, typ string) bool
	}{
		{"all", "", func(uint64, string) bool { return true }},
		{"node by subject", "node_id=2", func(n uint64, _ string) bool { return n == 2 }},
		{"event type in process", "event_type=cowrie.login.", func(_ uint64, typ string) bool { return strings.HasPrefix(typ, "cowrie.login.") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.startProxy(nil)
			types := []string{"cowrie.login.failed", "cowrie.session.connect", "cowrie.login.success"}

			// The publisher runs through every session and reconnect.
			const total = 50000
			var published atomic.Int64
			var mu sync.Mutex
			var wanted []uint64 // sequences matching the filter, in order
			stop := make(chan struct{})
			pubDone := make(chan struct{})
			go func() {
				defer close(pubDone)
				for i := 0; i < total; i++ {
					select {
					case <-stop:
						return
					default:
					}
					node, typ := uint64(i%3+1), types[i%len(types)]
					seq := e.event(node, fmt.Sprintf("pot-%d", i%2), typ)
					if tt.match(node, typ) {
						mu.Lock()
						wanted = append(wanted, seq)
						mu.Unlock()
					}
					published.Add(1)
				}
			}()
			defer func() { close(stop); <-pubDone }()

			var got []uint64
			var last uint64
			// Session 1 is live; then four resumes, each after a gap in
			// which events keep being published.
			for session := 0; session < 5; session++ {
				q := "/stream?" + tt.give
				if session > 0 {
					q += fmt.Sprintf("&since=%d", last)
				}
				conn := p.dial(t, q, nil)
				if f := mustRead(t, conn); f.Type != "ack" {
					t.Fatalf("first frame %s", f.Type)
				}
				// Read a few hundred events, then drop the connection.
				for n := 0; n < 150; n++ {
					f := mustRead(t, conn)
					if f.Type != "event" {
						t.Fatalf("got %s", f.Type)
					}
					got = append(got, f.Seq)
					last = f.Seq
				}
				_ = conn.Close(websocket.StatusNormalClosure, "")
				// Let events pile up while the client is away.
				at := published.Load()
				eventually(t, "events published while away", func() bool { return published.Load() >= at+100 || published.Load() == total })
			}
			if published.Load() == total {
				t.Fatal("the publisher finished before the last resume: nothing flowed across it")
			}
			close(stop)
			<-pubDone
			stop = make(chan struct{}) // for the deferred close

			// Check: got is exactly the wanted sequences from the first one
			// received up to the last one received.
			mu.Lock()
			defer mu.Unlock()
			start := -1
			for i, s := range wanted {
				if s == got[0] {
					start = i
					break
				}
			}
			if start < 0 {
				t.Fatalf("first event %d is not one that matches", got[0])
			}
			want := wanted[start : start+len(got)]
			missing, dup := 0, 0
			seen := map[uint64]int{}
			for _, s := range got {
				seen[s]++
				if seen[s] == 2 {
					dup++
				}
			}
			for _, s := range want {
				if seen[s] == 0 {
					missing++
				}
			}
			for i := range got {
				if got[i] != want[i] {
					lo := max(0, i-5)
					t.Logf("got[%d:] = %v, want %v", lo, got[lo:min(len(got), i+5)], want[lo:min(len(want), i+5)])
					t.Fatalf("at %d: got seq %d, want %d (missing %d, duplicated %d)", i, got[i], want[i], missing, dup)
				}
			}
			t.Logf("%d events over 5 sessions: none missing, none twice", len(got))
		})
	}
}
