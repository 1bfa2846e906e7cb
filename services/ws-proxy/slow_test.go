package wsproxy_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

// TestSlowClientIsolation: a client that stops reading is cut as a slow
// consumer while a fast client on the same replica receives every event.
func TestSlowClientIsolation(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(func(cfg *wsproxy.Config) { cfg.QueueSize = 64 })

	fast := p.dial(t, "/stream?types=event", nil)
	mustRead(t, fast)
	stalled := p.dial(t, "/stream?types=event", nil)
	mustRead(t, stalled) // then it reads nothing more until it is cut

	var mu sync.Mutex
	var fastGot []uint64
	fastErr := make(chan error, 1)
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, b, err := fast.Read(ctx)
			cancel()
			if err != nil {
				fastErr <- err
				return
			}
			var f frame
			if err := jsonUnmarshal(b, &f); err != nil {
				fastErr <- err
				return
			}
			mu.Lock()
			fastGot = append(fastGot, f.Seq)
			mu.Unlock()
		}
	}()
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(fastGot) }

	// Big events fill the stalled client's socket buffers, then its queue.
	// Publish in batches the fast client keeps up with, until the stalled
	// one is cut.
	pad := strings.Repeat("x", 16<<10)
	var sent []uint64
	for p.metric(t, "honeybee_wsproxy_slow_consumers_total") == 0 {
		if len(sent) >= 8000 {
			t.Fatal("the stalled client was never cut")
		}
		for i := 0; i < 20; i++ {
			sent = append(sent, e.event(1, "p", "cowrie.x", pad))
		}
		want := len(sent)
		eventually(t, "the fast client keeps up", func() bool {
			select {
			case err := <-fastErr:
				t.Fatalf("fast client: %v", err)
			default:
			}
			return received() == want
		})
	}
	// More events after the cut: the fast client still gets them all.
	for i := 0; i < 100; i++ {
		sent = append(sent, e.event(1, "p", "cowrie.after", pad))
	}
	eventually(t, "the fast client got everything", func() bool { return received() == len(sent) })
	mu.Lock()
	for i := range sent {
		if fastGot[i] != sent[i] {
			t.Fatalf("fast client: at %d got seq %d, want %d", i, fastGot[i], sent[i])
		}
	}
	mu.Unlock()

	// The stalled client, reading again, finds its connection closed: with
	// the policy-violation close when the close frame got through before
	// the write timeout, else by the dropped socket.
	for {
		_, err := read(t, stalled, 20*time.Second)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if asCloseError(err, &ce) && (ce.Code != websocket.StatusPolicyViolation || ce.Reason != "slow consumer") {
			t.Fatalf("stalled client closed with %v %q, want policy violation \"slow consumer\"", ce.Code, ce.Reason)
		}
		t.Logf("stalled client: %v after %d events published", err, len(sent))
		break
	}
	if n := p.metric(t, "honeybee_wsproxy_slow_consumers_total"); n != 1 {
		t.Fatalf("slow consumers %v, want 1", n)
	}
}

// TestTwoReplicas: two proxies on one NATS each deliver every event to
// their own clients.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t)
	replicas := []*proxy{e.startProxy(nil), e.startProxy(nil)}
	var conns []*websocket.Conn
	for _, p := range replicas {
		for i := 0; i < 3; i++ {
			conn := p.dial(t, "/stream?types=event", nil)
			mustRead(t, conn)
			conns = append(conns, conn)
		}
	}
	var sent []uint64
	for i := 0; i < 300; i++ {
		sent = append(sent, e.event(uint64(i%5), "p", "cowrie.x"))
	}
	for i, conn := range conns {
		for j, want := range sent {
			f := mustRead(t, conn)
			if f.Seq != want {
				t.Fatalf("client %d (replica %d): event %d has seq %d, want %d", i, i/3, j, f.Seq, want)
			}
		}
	}
	for i, p := range replicas {
		if n := p.metric(t, `honeybee_wsproxy_frames_sent_total{kind="event"}`); n != 900 {
			t.Errorf("replica %d sent %v events, want 900", i, n)
		}
	}
}
