package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/testbus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runView(t testing.TB, b *testbus.Bus) *View {
	t.Helper()
	v := New(zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, b.Nodes, b.Pots) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := v.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	return v
}

func all(*bus.NodeRecord) bool { return true }

func TestViewFollowsBuckets(t *testing.T) {
	srv := testbus.Server(t)
	b := testbus.MustCreate(t, testbus.Connect(t, srv), bus.Default())
	b.PutNode(t, bus.NodeRecord{NodeID: 7, NodeName: "before", Connected: true, GatewayID: "gw1"})
	b.PutPot(t, bus.PotRecord{NodeID: 7, PotID: "a.b", Status: proto.PotRunning})
	v := runView(t, b)
	// Synced: what was there before Run is there.
	if rec, pots, ok := v.Node(7); !ok || rec.NodeName != "before" || len(pots) != 1 || pots[0].PotID != "a.b" {
		t.Fatalf("Node(7) = %+v %+v %v", rec, pots, ok)
	}
	if got := v.GatewayIDs(); !slices.Equal(got, []string{"gw1"}) {
		t.Errorf("GatewayIDs = %v", got)
	}
	// Updates, deletes and purges follow.
	b.PutNode(t, bus.NodeRecord{NodeID: 3, NodeName: "three"})
	b.PutNode(t, bus.NodeRecord{NodeID: 7, NodeName: "after"})
	b.PutPot(t, bus.PotRecord{NodeID: 3, PotID: "x", Status: proto.PotStopped})
	testbus.Eventually(t, func() bool {
		rec, _, _ := v.Node(7)
		n, p := v.Counts()
		return rec.NodeName == "after" && n == 2 && p == 2
	})
	if got := v.GatewayIDs(); len(got) != 0 {
		t.Errorf("GatewayIDs after disconnect = %v", got)
	}
	recs, more := v.Nodes(0, false, 10, all)
	if len(recs) != 2 || recs[0].NodeID != 3 || recs[1].NodeID != 7 || more {
		t.Errorf("Nodes = %+v, %v", recs, more)
	}
	if err := b.Nodes.Purge(context.Background(), bus.NodeKey(7)); err != nil {
		t.Fatal(err)
	}
	if err := b.Pots.Delete(context.Background(), bus.PotKey(7, "a.b")); err != nil {
		t.Fatal(err)
	}
	testbus.Eventually(t, func() bool {
		n, p := v.Counts()
		return n == 1 && p == 1
	})
	if _, _, ok := v.Node(7); ok {
		t.Error("purged node still in the view")
	}
	pots, next := v.Pots(nil, 10, func(*bus.PotRecord) bool { return true })
	if len(pots) != 1 || pots[0].PotID != "x" || next != nil {
		t.Errorf("Pots = %+v, %v", pots, next)
	}
}

func TestViewPaging(t *testing.T) {
	srv := testbus.Server(t)
	b := testbus.MustCreate(t, testbus.Connect(t, srv), bus.Default())
	for _, id := range []uint64{5, 1, 18446744073709551615, 3, 9} {
		b.PutNode(t, bus.NodeRecord{NodeID: id})
	}
	v := runView(t, b)
	var got []uint64
	after, has := uint64(0), false
	for {
		recs, more := v.Nodes(after, has, 2, all)
		for _, r := range recs {
			got = append(got, r.NodeID)
		}
		if !more {
			break
		}
		after, has = recs[len(recs)-1].NodeID, true
	}
	if want := []uint64{1, 3, 5, 9, 18446744073709551615}; !slices.Equal(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
	// A cursor naming a node that is gone still continues after it.
	recs, _ := v.Nodes(4, true, 10, all)
	if len(recs) != 3 || recs[0].NodeID != 5 {
		t.Errorf("after 4: %+v", recs)
	}
}

// closingKV is a bucket whose watches end when their ctx is cancelled, as
// the NATS client's do (it subscribes with the ctx).
type closingKV struct{ jetstream.KeyValue }

type closedWatch struct{ ch chan jetstream.KeyValueEntry }

func (w closedWatch) Updates() <-chan jetstream.KeyValueEntry { return w.ch }
func (w closedWatch) Stop() error                             { return nil }

func (closingKV) WatchAll(ctx context.Context, _ ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	ch := make(chan jetstream.KeyValueEntry)
	if ctx.Err() != nil {
		close(ch)
	}
	return closedWatch{ch}, nil
}

// TestViewRunStopsCleanly: cancelling ctx is a clean stop even when Run
// sees the watch channels closed (by the cancellation) before ctx.Done. The
// select between the two is random, so the case is tried many times.
func TestViewRunStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if err := New(zerolog.Nop()).Run(ctx, closingKV{}, closingKV{}); err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	}
	// A watch that ends while ctx is live is still an error.
	if err := New(zerolog.Nop()).Run(context.Background(), endedKV{}, endedKV{}); err == nil {
		t.Fatal("Run with ended watches = nil, want an error")
	}
}

// endedKV is a bucket whose watches have already ended.
type endedKV struct{ jetstream.KeyValue }

func (endedKV) WatchAll(context.Context, ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	ch := make(chan jetstream.KeyValueEntry)
	close(ch)
	return closedWatch{ch}, nil
}

func TestGatewaysAlive(t *testing.T) {
	srv := testbus.Server(t)
	b := testbus.MustCreate(t, testbus.Connect(t, srv), bus.Default())
	b.PutGateway(t, "gw1")
	connected := true
	g := NewGateways(b.Gateways, time.Hour, 5*time.Second, func() bool { return connected })
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	ctx := context.Background()
	if !g.Alive(ctx, "gw1") || g.Alive(ctx, "gw2") || g.Alive(ctx, "") || g.Alive(ctx, "bad key*") {
		t.Fatal("wrong liveness")
	}
	if n, err := g.Count(ctx); err != nil || n != 1 {
		t.Errorf("Count = %d, %v", n, err)
	}
	if err := b.Gateways.Delete(ctx, "gw1"); err != nil {
		t.Fatal(err)
	}
	if !g.Alive(ctx, "gw1") {
		t.Error("cached answer not used")
	}
	now = now.Add(2 * time.Hour)
	connected = false
	if !g.Alive(ctx, "gw1") {
		t.Error("disconnected: the last answer should stand")
	}
	connected = true
	if g.Alive(ctx, "gw1") {
		t.Error("deleted gateway alive after the cache expired")
	}
	alive := g.Snapshot(ctx, []string{"gw1", "gw3"})
	if alive("gw1") || alive("gw3") || alive("other") {
		t.Error("snapshot wrong")
	}
}

// populate stores n nodes (each with two pots) for the benchmarks.
func populate(b testing.TB, bs *testbus.Bus, n int) {
	ctx := context.Background()
	for i := range n {
		id := uint64(i + 1)
		rec := bus.NodeRecord{NodeID: id, NodeIDStr: fmt.Sprint(id), NodeName: fmt.Sprint("node-", i), NodeType: proto.NodeTypeFull,
			Status: proto.NodeRunning, Connected: true, GatewayID: "gw1", RemoteAddr: "192.0.2.1:1234", ConnectedSince: time.Now(), LastSeen: time.Now()}
		data, _ := json.Marshal(rec)
		if _, err := bs.Nodes.Put(ctx, bus.NodeKey(id), data); err != nil {
			b.Fatal(err)
		}
	}
}

// naiveList is how listing worked before the view: list the keys, then
// get and decode each record. Kept here as the benchmark's baseline.
func naiveList(ctx context.Context, kv jetstream.KeyValue) ([]bus.NodeRecord, error) {
	l, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	out := make([]bus.NodeRecord, 0, len(keys))
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var r bus.NodeRecord
		if json.Unmarshal(e.Value(), &r) == nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b bus.NodeRecord) int {
		switch {
		case a.NodeID < b.NodeID:
			return -1
		case a.NodeID > b.NodeID:
			return 1
		}
		return 0
	})
	return out, nil
}

// BenchmarkList10kNodes compares listing 10,000 nodes from the bucket per
// request (the baseline) with listing them from the watched view.
//
//	go test -run '^$' -bench List10kNodes -benchtime 20x ./internal/state/
func BenchmarkList10kNodes(b *testing.B) {
	srv := testbus.Server(b)
	bs := testbus.MustCreate(b, testbus.Connect(b, srv), bus.Default())
	const n = 10000
	populate(b, bs, n)
	b.Run("kv-get-each", func(b *testing.B) {
		for b.Loop() {
			recs, err := naiveList(context.Background(), bs.Nodes)
			if err != nil || len(recs) != n {
				b.Fatalf("%d records, %v", len(recs), err)
			}
		}
	})
	b.Run("view", func(b *testing.B) {
		v := runView(b, bs)
		for b.Loop() {
			recs, _ := v.Nodes(0, false, n, all)
			if len(recs) != n {
				b.Fatalf("%d records", len(recs))
			}
		}
	})
}

// CatchUp returns only once the view shows what was written up to the
// revisions it is given, so a reader right after it sees its own write.
func TestViewCatchUp(t *testing.T) {
	srv := testbus.Server(t)
	b := testbus.MustCreate(t, testbus.Connect(t, srv), bus.Default())
	v := runView(t, b)
	ctx := context.Background()
	for i := range 50 {
		id := uint64(100 + i)
		b.PutNode(t, bus.NodeRecord{NodeID: id, NodeName: "n"})
		b.PutPot(t, bus.PotRecord{NodeID: id, PotID: "p", Status: proto.PotRunning})
		if err := b.Pots.Purge(ctx, bus.PotKey(id, "p")); err != nil {
			t.Fatal(err)
		}
		nodeRev := lastSeq(t, b.Nodes)
		potRev := lastSeq(t, b.Pots)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := v.CatchUp(cctx, nodeRev, potRev)
		cancel()
		if err != nil {
			t.Fatalf("CatchUp(%d, %d): %v", nodeRev, potRev, err)
		}
		rec, pots, ok := v.Node(id)
		if !ok || rec.NodeName != "n" || len(pots) != 0 {
			t.Fatalf("after CatchUp: Node(%d) = %+v %+v %v", id, rec, pots, ok)
		}
	}
	// A revision nobody wrote yet: CatchUp waits and gives up with ctx.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := v.CatchUp(cctx, lastSeq(t, b.Nodes)+1, 0); err == nil {
		t.Error("CatchUp to a revision not yet written returned nil")
	}
}

func lastSeq(t *testing.T, kv jetstream.KeyValue) uint64 {
	t.Helper()
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}
