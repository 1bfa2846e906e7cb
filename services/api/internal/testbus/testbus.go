// Package testbus starts an embedded NATS server and creates the events
// stream and key-value buckets the way the node gateway does at start, so
// the api's tests and load harness need no gateway. Not for production use.
package testbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NewServer starts an embedded NATS server with JetStream storing under dir,
// listening on a random loopback port.
func NewServer(dir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server not ready")
	}
	return s, nil
}

// Server starts an embedded NATS server for one test and stops it at the
// end of the test.
func Server(t testing.TB) *server.Server {
	t.Helper()
	s, err := NewServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s for one test and closes the connection at the end.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name("testbus"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Bus is the stream and buckets of one contract.
type Bus struct {
	C        bus.Contract
	JS       jetstream.JetStream
	Stream   jetstream.Stream
	Nodes    jetstream.KeyValue
	Pots     jetstream.KeyValue
	Gateways jetstream.KeyValue
	Commands jetstream.KeyValue
	TOTP     jetstream.KeyValue
}

// Create creates the events stream and every bucket as the gateway does.
func Create(ctx context.Context, nc *nats.Conn, c bus.Contract) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	b := &Bus{C: c, JS: js}
	b.Stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        c.EventsStream(),
		Subjects:    []string{c.Events()},
		Storage:     jetstream.FileStorage,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
		MaxAge:      30 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	kv := func(name string, ttl time.Duration) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, TTL: ttl, Storage: jetstream.FileStorage})
	}
	for _, x := range []struct {
		dst  *jetstream.KeyValue
		name string
		ttl  time.Duration
	}{
		{&b.Nodes, c.NodesBucket(), 0},
		{&b.Pots, c.PotsBucket(), 0},
		{&b.Gateways, c.GatewaysBucket(), bus.GatewayTTL},
		{&b.Commands, c.CommandsBucket(), bus.CommandTTL},
		{&b.TOTP, c.TOTPBucket(), 0},
	} {
		if *x.dst, err = kv(x.name, x.ttl); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", x.name, err)
		}
	}
	return b, nil
}

// MustCreate is Create for tests.
func MustCreate(t testing.TB, nc *nats.Conn, c bus.Contract) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Create(ctx, nc, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Put stores v as JSON under key in kv.
func Put(t testing.TB, kv jetstream.KeyValue, key string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), key, data); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// PutNode stores a node record.
func (b *Bus) PutNode(t testing.TB, r bus.NodeRecord) {
	t.Helper()
	Put(t, b.Nodes, bus.NodeKey(r.NodeID), r)
}

// PutPot stores a pot record.
func (b *Bus) PutPot(t testing.TB, r bus.PotRecord) {
	t.Helper()
	Put(t, b.Pots, bus.PotKey(r.NodeID, r.PotID), r)
}

// PutGateway stores a gateway heartbeat.
func (b *Bus) PutGateway(t testing.TB, id string) {
	t.Helper()
	Put(t, b.Gateways, id, bus.GatewayRecord{GatewayID: id, StartedAt: time.Now(), Heartbeat: time.Now()})
}

// PublishEvent stores an attack event in the stream, with its event id as
// the de-duplication id, and returns its stream sequence.
func (b *Bus) PublishEvent(ctx context.Context, ev bus.AttackEvent) (uint64, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	msg := nats.NewMsg(b.C.Event(ev.NodeID, ev.PotID))
	msg.Data = data
	msg.Header.Set(bus.HeaderMsgID, ev.EventID)
	ack, err := b.JS.PublishMsg(ctx, msg)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// MustPublishEvent is PublishEvent for tests.
func (b *Bus) MustPublishEvent(t testing.TB, ev bus.AttackEvent) uint64 {
	t.Helper()
	seq, err := b.PublishEvent(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// Eventually polls cond every 10 ms until it holds or 10 s pass.
func Eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
