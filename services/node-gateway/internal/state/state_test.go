package state

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func bucket(t *testing.T) (*nats.Conn, jetstream.KeyValue) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nodes"})
	if err != nil {
		t.Fatal(err)
	}
	return nc, kv
}

func get(t *testing.T, kv jetstream.KeyValue, id uint64) bus.NodeRecord {
	t.Helper()
	e, err := kv.Get(context.Background(), bus.NodeKey(id))
	if err != nil {
		t.Fatal(err)
	}
	var r bus.NodeRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestNodeOwnership: a session's record is taken over by a newer session;
// the older one then never writes again. A foreign write that keeps the
// gateway and connected_since (a sweeper's) is overwritten by the owner.
func TestNodeOwnership(t *testing.T) {
	_, kv := bucket(t)
	ctx := context.Background()
	t0 := time.Now().UTC()
	old := NewNode(kv, bus.NodeRecord{NodeID: 1, GatewayID: "a", Connected: true, ConnectedSince: t0}, zerolog.Nop())
	if err := old.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// A sweeper marks it lost (CAS, same gateway and since): the owner
	// takes it back at its next write.
	rec := get(t, kv, 1)
	rec.Connected, rec.DisconnectReason = false, bus.ReasonGatewayLost
	b, _ := json.Marshal(rec)
	e, _ := kv.Get(ctx, bus.NodeKey(1))
	if _, err := kv.Update(ctx, bus.NodeKey(1), b, e.Revision()); err != nil {
		t.Fatal(err)
	}
	old.Update(func(r *bus.NodeRecord) { r.Status = "Running" })
	if err := old.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := get(t, kv, 1); !r.Connected || r.Status != "Running" || old.Lost() {
		t.Errorf("owner did not take its record back: %+v lost=%v", r, old.Lost())
	}

	// A newer session (another gateway) takes the node.
	newer := NewNode(kv, bus.NodeRecord{NodeID: 1, GatewayID: "b", Connected: true, ConnectedSince: t0.Add(time.Second)}, zerolog.Nop())
	if err := newer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	old.Update(func(r *bus.NodeRecord) { r.Connected, r.DisconnectReason = false, bus.ReasonTimeout })
	if err := old.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !old.Lost() {
		t.Error("old session still believes it owns the record")
	}
	if r := get(t, kv, 1); !r.Connected || r.GatewayID != "b" {
		t.Errorf("stale session overwrote the record: %+v", r)
	}
}

// TestWriterCoalescesAndRetries: marked records are written by Run, the
// newest value wins, and Flush waits for them.
func TestWriterCoalescesAndRetries(t *testing.T) {
	nc, kv := bucket(t)
	w := NewWriter(nc, 2, zerolog.Nop(), metrics.New())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	n := NewNode(kv, bus.NodeRecord{NodeID: 2, GatewayID: "a", Connected: true, ConnectedSince: time.Now()}, zerolog.Nop())
	for i := range 100 {
		n.Update(func(r *bus.NodeRecord) { r.Port = uint16(i) })
		w.Mark(n)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if r := get(t, kv, 2); r.Port != 99 {
		t.Errorf("port %d, want the newest value 99", r.Port)
	}
	e, _ := kv.Get(context.Background(), bus.NodeKey(2))
	if e.Revision() > 50 {
		t.Errorf("%d writes for 100 marks: not coalesced", e.Revision())
	}
}
