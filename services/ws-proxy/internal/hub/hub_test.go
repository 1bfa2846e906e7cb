package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConn records writes; a stalled fakeConn blocks writes until closed.
type fakeConn struct {
	mu      sync.Mutex
	written [][]byte
	stall   chan struct{} // nil: never stalls
	closed  chan struct{}
	code    websocket.StatusCode
	reason  string
	once    sync.Once
}

func newFake(stall bool) *fakeConn {
	f := &fakeConn{closed: make(chan struct{})}
	if stall {
		f.stall = make(chan struct{})
	}
	return f
}

func (f *fakeConn) Write(ctx context.Context, _ websocket.MessageType, p []byte) error {
	if f.stall != nil {
		select {
		case <-f.closed:
			return context.Canceled
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.written = append(f.written, p)
	f.mu.Unlock()
	return nil
}

func (f *fakeConn) Ping(context.Context) error { return nil }

func (f *fakeConn) Close(code websocket.StatusCode, reason string) error {
	f.once.Do(func() {
		f.mu.Lock()
		f.code, f.reason = code, reason
		f.mu.Unlock()
		close(f.closed)
	})
	return nil
}

func (f *fakeConn) CloseNow() error { return f.Close(websocket.StatusAbnormalClosure, "") }

func (f *fakeConn) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.written) }

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSlowConsumerClosedOthersServed(t *testing.T) {
	slow := 0
	h := New(Options{QueueSize: 8, PingInterval: -1, OnSlow: func() { slow++ }})
	all := &Filter{Types: AllKinds}
	stalled, fast := newFake(true), newFake(false)
	cs, cf := h.Add(stalled, all, false), h.Add(fast, all, false)
	cs.Release(0)
	cf.Release(0)
	const n = 1000
	for i := 1; i <= n; i++ {
		fr, err := EventFrame(uint64(i), []byte(`{"node_id":1,"pot_id":"p","event_type":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		h.Publish(fr) // never blocks, whatever the stalled client does
		if i%8 == 0 {
			eventually(t, func() bool { return fast.count() == i })
		}
	}
	<-stalled.closed
	if stalled.code != websocket.StatusPolicyViolation || stalled.reason != SlowReason || slow != 1 {
		t.Fatalf("stalled client closed with %v %q, slow=%d", stalled.code, stalled.reason, slow)
	}
	eventually(t, func() bool { return fast.count() == n })
	h.Remove(cs)
	h.Remove(cf)
	if h.Len() != 0 {
		t.Fatal("clients left")
	}
}

func TestFilterMatch(t *testing.T) {
	ev := func(node uint64, pot, typ string) *Frame {
		return &Frame{Kind: KindEvent, NodeID: node, PotID: pot, EventType: typ}
	}
	tests := []struct {
		name string
		give FilterSpec
		fr   *Frame
		want bool
	}{
		{"empty matches events", FilterSpec{}, ev(1, "p", "x"), true},
		{"empty matches nodes", FilterSpec{}, &Frame{Kind: KindNode, NodeID: 9}, true},
		{"node", FilterSpec{NodeIDs: []string{"1"}}, ev(2, "p", "x"), false},
		{"node list", FilterSpec{NodeIDs: []string{"1", "2"}}, ev(2, "p", "x"), true},
		{"max u64", FilterSpec{NodeIDs: []string{"18446744073709551615"}}, ev(18446744073709551615, "p", "x"), true},
		{"pot", FilterSpec{PotIDs: []string{"a.b"}}, ev(1, "a.b", "x"), true},
		{"pot no", FilterSpec{PotIDs: []string{"a"}}, ev(1, "a.b", "x"), false},
		{"pot filter lets node frames pass", FilterSpec{PotIDs: []string{"a"}}, &Frame{Kind: KindNode, NodeID: 1}, true},
		{"pot filter applies to pots", FilterSpec{PotIDs: []string{"a"}}, &Frame{Kind: KindPot, NodeID: 1, PotID: "b"}, false},
		{"prefix", FilterSpec{EventTypes: []string{"cowrie.login."}}, ev(1, "p", "cowrie.login.failed"), true},
		{"prefix no", FilterSpec{EventTypes: []string{"cowrie.login."}}, ev(1, "p", "cowrie.session.connect"), false},
		{"prefix ignores pots", FilterSpec{EventTypes: []string{"cowrie."}}, &Frame{Kind: KindPot, PotID: "p"}, true},
		{"types", FilterSpec{Types: []string{"node"}}, ev(1, "p", "x"), false},
		{"types pot", FilterSpec{Types: []string{"pot", "event"}}, &Frame{Kind: KindPot}, true},
	}
	for _, tt := range tests {
		f, err := tt.give.Build()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := f.Match(tt.fr); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEventFrame(t *testing.T) {
	fr, err := EventFrame(42, []byte(`{"node_id":7,"pot_id":"p","event_type":"cowrie.x","data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(fr.Data) != `{"type":"event","seq":42,"data":{"node_id":7,"pot_id":"p","event_type":"cowrie.x","data":{}}}` || fr.NodeID != 7 {
		t.Fatalf("got %s", fr.Data)
	}
	for _, bad := range []string{``, `[]`, `{"node_id":"x"}`, `{"a":1} trailing`, `"s"`} {
		if _, err := EventFrame(1, []byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
