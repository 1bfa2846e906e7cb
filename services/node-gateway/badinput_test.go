package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// wellBehaved is a node that keeps connecting, registering, reporting and
// taking a command, cycle after cycle, while a test throws bad input at
// the same gateway.
type wellBehaved struct {
	tg     *testGateway
	id     uint64
	stop   chan struct{}
	done   chan struct{}
	cycles atomic.Int64
	events atomic.Int64
	err    error
}

func startWellBehaved(t *testing.T, tg *testGateway, id uint64) *wellBehaved {
	t.Helper()
	w := &wellBehaved{tg: tg, id: id, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if err := w.cycle(); err != nil {
				w.err = fmt.Errorf("cycle %d: %w", w.cycles.Load()+1, err)
				return
			}
			w.cycles.Add(1)
		}
	}()
	return w
}

// cycle is one session of the well-behaved node, from dial to NodeDrop.
func (w *wellBehaved) cycle() error {
	conn, err := net.DialTimeout("tcp", w.tg.Addr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := proto.NewReader(conn, 1<<20)
	send := func(m proto.Message) error { return proto.Encode(conn, m) }
	next := func() (proto.Message, error) {
		frame, err := r.Next()
		if err != nil {
			return nil, err
		}
		env, err := proto.Decode(frame)
		return env.Message, err
	}
	if err := send(registration(w.id, "well-behaved")); err != nil {
		return err
	}
	m, err := next()
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	if ack, ok := m.(*proto.RegistrationAck); !ok || !ack.Accepted {
		return fmt.Errorf("registration not accepted: %+v", m)
	}
	if err := send(&proto.NodeStatusUpdate{NodeID: w.id, Status: proto.NodeRunning}); err != nil {
		return err
	}
	for i := range 3 {
		ev := &proto.PotEvent{NodeID: w.id, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed",
			Timestamp: time.Now().UTC(), Data: json.RawMessage(fmt.Sprintf(`{"src_ip":"198.51.100.1","n":%d}`, i))}
		if err := send(ev); err != nil {
			return err
		}
		w.events.Add(1)
	}
	// A command through NATS reaches this connection.
	cmdID := fmt.Sprintf("wb-%d", w.cycles.Load())
	reply, err := w.tg.request(w.id, bus.CommandRequest{CommandID: cmdID, Command: json.RawMessage(`{"GetPotStatus":"cowrie-01"}`)})
	if err != nil {
		return fmt.Errorf("command request: %w", err)
	}
	var cr bus.CommandReply
	if err := json.Unmarshal(reply.Data, &cr); err != nil || !cr.Delivered || cr.CommandID != cmdID {
		return fmt.Errorf("command reply %q (%s): %v", reply.Data, reply.Header, err)
	}
	m, err = next()
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if c, ok := m.(*proto.NodeCommand); !ok || c.Command.Kind != proto.CmdGetPotStatus || c.Command.PotID != "cowrie-01" {
		return fmt.Errorf("unexpected command %+v", m)
	}
	if err := send(&proto.NodeDrop{}); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
		return fmt.Errorf("waiting for close: %w", err)
	}
	return nil
}

// finish stops the node and checks it never failed and that all its
// events were stored.
func (w *wellBehaved) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatalf("well-behaved node failed: %v", w.err)
	}
	if w.cycles.Load() < 1 {
		t.Fatal("well-behaved node completed no cycle")
	}
	eventually(t, "every event of the well-behaved node stored", func() bool {
		return int64(len(w.tg.nodeEvents(t, w.id))) == w.events.Load()
	})
	t.Logf("well-behaved node: %d cycles, %d events", w.cycles.Load(), w.events.Load())
}

const wellBehavedID = 424242

// TestBadInput throws every kind of bad input of the issue at one gateway
// while a well-behaved node keeps working on it.
func TestBadInput(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) {
		c.BadMessageLimit = 3
		c.BadMessageWindow = time.Minute
		c.MaxMessageSize = 4096
		c.MaxUnackedBytes = 1 << 20
		// Short enough to test, long enough that the well-behaved node
		// never hits them on a loaded machine.
		c.RegistrationTimeout = 2 * time.Second
		c.IdleTimeout = 3 * time.Second
	})
	wb := startWellBehaved(t, tg, wellBehavedID)
	nextID := uint64(1000)
	register := func(t *testing.T) *testNode {
		t.Helper()
		nextID++
		n := dialNode(t, tg.Addr().String())
		n.register(nextID, fmt.Sprintf("bad-%d", nextID))
		return n
	}

	t.Run("bad messages are counted and the connection kept", func(t *testing.T) {
		tests := []struct {
			name     string
			give     string
			wantKind string
		}{
			{"not JSON", "this is not json", "not_json"},
			{"broken JSON", `{"version":2,"message":{"NodeStatusUpdate":}}`, "not_json"},
			{"invalid UTF-8", "{\"version\":2,\"message\":{\"NodeEvent\":{\"Alarm\":{\"description\":\"\xff\xfe\"}}}}", "invalid_utf8"},
			{"array, not an envelope", `[1,2,3]`, "not_envelope"},
			{"object, not an envelope", `{"hello":"world"}`, "not_envelope"},
			{"unknown variant", `{"version":2,"message":{"NodeTakeover":{"node_id":1}}}`, "unknown_variant"},
			{"missing field", `{"version":2,"message":{"PotEvent":{"pot_id":"p","event":"x"}}}`, "missing_field"},
			{"number beyond u64", `{"version":2,"message":{"NodeStatusUpdate":{"node_id":18446744073709551616,"status":"Running"}}}`, "invalid_field"},
			{"too deep", `{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event":"x","metadata":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}}`, "too_deep"},
			{"core variant from a node", `{"version":2,"message":{"RegistrationAck":{"node_id":1,"accepted":true}}}`, "unexpected_variant"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				metric := `honeybee_gateway_decode_errors_total{kind="` + tt.wantKind + `"}`
				before := tg.metric(t, metric)
				n := register(t)
				if err := n.raw([]byte(tt.give + "\n")); err != nil {
					t.Fatal(err)
				}
				// Still connected: the next good message is processed.
				n.status(proto.NodeStopped)
				rec := tg.waitNode(t, n.id, "status after the bad message", func(r bus.NodeRecord) bool { return r.Status == proto.NodeStopped })
				if !rec.Connected {
					t.Errorf("disconnected after one bad message: %+v", rec)
				}
				if got := tg.metric(t, metric); got != before+1 {
					t.Errorf("%s = %v, want %v", metric, got, before+1)
				}
			})
		}
	})

	t.Run("more bad messages than the limit disconnect", func(t *testing.T) {
		n := register(t)
		for range 4 {
			if err := n.raw([]byte("garbage\n")); err != nil {
				t.Fatal(err)
			}
		}
		rec := tg.waitNode(t, n.id, "disconnected", func(r bus.NodeRecord) bool { return !r.Connected })
		if rec.DisconnectReason != bus.ReasonProtocol {
			t.Errorf("reason %q, want protocol", rec.DisconnectReason)
		}
		if !n.closed() {
			t.Error("not closed")
		}
	})

	oversize := []struct {
		name string
		give func() []byte
	}{
		{"over the size limit with a newline", func() []byte {
			return []byte(`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"` + strings.Repeat("a", 5000) + "\"}}}\n")
		}},
		{"over the size limit without a newline", func() []byte {
			return []byte(`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"` + strings.Repeat("a", 5000))
		}},
		{"100,000 nested brackets", func() []byte { return []byte(strings.Repeat("[", 100_000)) }},
		{"garbage line over the size limit", func() []byte { return []byte(strings.Repeat("x", 10_000)) }},
	}
	for _, tt := range oversize {
		t.Run(tt.name, func(t *testing.T) {
			n := register(t)
			_ = n.raw(tt.give()) // the gateway may close while we write
			rec := tg.waitNode(t, n.id, "disconnected", func(r bus.NodeRecord) bool { return !r.Connected })
			if rec.DisconnectReason != bus.ReasonProtocol {
				t.Errorf("reason %q, want protocol", rec.DisconnectReason)
			}
			if !n.closed() {
				t.Error("not closed")
			}
		})
	}

	t.Run("a 10 MiB string is never buffered", func(t *testing.T) {
		n := register(t)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		chunk := []byte(strings.Repeat("A", 64<<10))
		if err := n.raw([]byte(`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","event":"x","message":"`)); err != nil {
			t.Fatal(err)
		}
		sent := 0
		for sent < 10<<20 {
			if err := n.raw(chunk); err != nil {
				break // closed by the gateway: expected
			}
			sent += len(chunk)
		}
		rec := tg.waitNode(t, n.id, "disconnected", func(r bus.NodeRecord) bool { return !r.Connected })
		runtime.ReadMemStats(&after)
		if rec.DisconnectReason != bus.ReasonProtocol {
			t.Errorf("reason %q, want protocol", rec.DisconnectReason)
		}
		// Everything this process allocated meanwhile (gateway, NATS
		// server, the well-behaved node) stays far below the 10 MiB sent.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
			t.Errorf("allocated %d bytes while a node sent %d bytes of one string", grew, sent)
		}
		t.Logf("sent %d bytes before the close; allocated %d bytes meanwhile", sent, after.TotalAlloc-before.TotalAlloc)
	})

	t.Run("a connection that sends nothing is closed", func(t *testing.T) {
		n := dialNode(t, tg.Addr().String())
		if ack := n.ack(); ack.Accepted || ack.Message != "registration timeout" {
			t.Errorf("ack %+v", ack)
		}
		if !n.closed() {
			t.Error("not closed")
		}
	})

	t.Run("half a message then a stall is closed", func(t *testing.T) {
		n := register(t)
		if err := n.raw([]byte(`{"version":2,"message":{"PotEv`)); err != nil {
			t.Fatal(err)
		}
		rec := tg.waitNode(t, n.id, "disconnected", func(r bus.NodeRecord) bool { return !r.Connected })
		if rec.DisconnectReason != bus.ReasonTimeout {
			t.Errorf("reason %q, want timeout", rec.DisconnectReason)
		}
		if !n.closed() {
			t.Error("not closed")
		}
	})

	t.Run("hostile names and pot ids", func(t *testing.T) {
		testHostileNames(t, tg)
	})

	wb.finish(t)
}

// testHostileNames: node names and pot ids with '.', '*', '>', spaces,
// non-ASCII or nothing at all are stored verbatim and routed to the
// node's own subjects only.
func testHostileNames(t *testing.T, tg *testGateway) {
	// Anything reaching the well-behaved node's subjects must be its own.
	var mu sync.Mutex
	var foreign []string
	for _, subj := range []string{
		tg.c.Prefix() + ".events." + proto.FormatNodeID(wellBehavedID) + ".>",
		tg.c.Prefix() + ".pots." + proto.FormatNodeID(wellBehavedID) + ".>",
		tg.c.Prefix() + ".nodes." + proto.FormatNodeID(wellBehavedID) + ".>",
	} {
		sub, err := tg.nc.Subscribe(subj, func(m *nats.Msg) {
			var v struct {
				NodeID uint64 `json:"node_id"`
			}
			if json.Unmarshal(m.Data, &v) != nil || v.NodeID != wellBehavedID {
				mu.Lock()
				foreign = append(foreign, m.Subject+" "+string(m.Data))
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	_ = tg.nc.Flush()

	const id = 7777
	name := "edge.*.> fra ü 🐝"
	pots := []string{"a.b", "*", ">", "with space", "ünïcödé", "", "424242", "x.424242.>", "=2E"}
	n := dialNode(t, tg.Addr().String())
	n.register(id, name)
	for _, pot := range pots {
		n.send(&proto.PotStatusUpdate{NodeID: id, PotID: pot, PotType: "t " + pot, Status: proto.PotRunning})
		n.send(&proto.PotEvent{NodeID: id, PotID: pot, PotType: "t " + pot, EventType: "probe",
			Data: json.RawMessage(`{"src_ip":"203.0.113.1"}`)})
	}
	n.status(proto.NodeRunning)
	rec := tg.waitNode(t, id, "running", func(r bus.NodeRecord) bool { return r.Status == proto.NodeRunning })
	if rec.NodeName != name {
		t.Errorf("node name stored as %q, want %q", rec.NodeName, name)
	}
	for _, pot := range pots {
		eventually(t, fmt.Sprintf("pot %q recorded", pot), func() bool {
			p, ok := tg.potRecord(t, id, pot)
			return ok && p.PotID == pot && p.PotType == "t "+pot && p.NodeID == id
		})
	}
	var events []storedEvent
	eventually(t, "hostile events stored", func() bool { events = tg.nodeEvents(t, id); return len(events) == len(pots) })
	seen := map[string]bool{}
	for _, e := range events {
		if e.Subject != tg.c.Event(id, e.Event.PotID) || e.Event.NodeName != name {
			t.Errorf("event for pot %q on %q (node name %q)", e.Event.PotID, e.Subject, e.Event.NodeName)
		}
		if seen[e.Subject] {
			t.Errorf("two pots share subject %q", e.Subject)
		}
		seen[e.Subject] = true
	}
	if ev := tg.events(t, tg.c.EventsOf(wellBehavedID, nil)); len(ev) > 0 {
		for _, e := range ev {
			if e.Event.NodeID != wellBehavedID {
				t.Errorf("foreign event in the well-behaved node's subjects: %+v", e)
			}
		}
	}
	_ = tg.nc.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(foreign) > 0 {
		t.Errorf("messages reached another node's subjects: %q", foreign)
	}
}

// TestManyConnections opens and closes 5,000 connections as fast as it
// can (some register, most do not) while a well-behaved node keeps
// working; afterwards goroutines and file descriptors return to their
// baseline.
func TestManyConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 connections: not in -short")
	}
	ns := startNATS(t)
	cfg := testConfig(ns.ClientURL())
	tg := startGatewayConfig(t, cfg, zerolog.WarnLevel) // warnings only: 5,000 sessions log a lot at info
	wb := startWellBehaved(t, tg, wellBehavedID)
	// Let the well-behaved node and the gateway settle before the baseline.
	eventually(t, "first well-behaved cycle", func() bool { return wb.cycles.Load() >= 1 })
	baseG, baseFD := runtime.NumGoroutine(), fdCount(t)

	const total, workers = 5000, 50
	var next, registered, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				conn, err := net.DialTimeout("tcp", tg.Addr().String(), 10*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				if i%4 == 0 {
					// Register, then vanish without NodeDrop.
					_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
					if proto.Encode(conn, registration(uint64(100000+i), "burst")) == nil {
						r := proto.NewReader(conn, 1<<16)
						if f, err := r.Next(); err == nil {
							if env, err := proto.Decode(f); err == nil {
								if a, ok := env.Message.(*proto.RegistrationAck); ok && a.Accepted {
									registered.Add(1)
								}
							}
						}
					}
				}
				_ = conn.Close()
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d dials failed", failed.Load(), total)
	}
	if registered.Load() != total/4 {
		t.Errorf("%d registrations accepted, want %d", registered.Load(), total/4)
	}
	wb.finish(t)

	eventually(t, "connections gauge back to 0", func() bool { return tg.metric(t, "honeybee_gateway_connections") == 0 })
	eventually(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseG+5 })
	eventually(t, "file descriptors back to baseline", func() bool { return fdCount(t) <= baseFD+5 })
	if got := tg.metric(t, "honeybee_gateway_nodes"); got != 0 {
		t.Errorf("nodes gauge %v, want 0", got)
	}
	// Still serving.
	n := dialNode(t, tg.Addr().String())
	n.register(1, "after-the-storm")
	t.Logf("goroutines %d (baseline %d), fds %d (baseline %d)", runtime.NumGoroutine(), baseG, fdCount(t), baseFD)
}
