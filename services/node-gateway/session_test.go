package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

// TestHandshakeRefusals: each bad first message gets exactly one
// RegistrationAck with accepted false and a reason, then the connection
// closes.
func TestHandshakeRefusals(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	tests := []struct {
		name       string
		give       string
		wantNodeID uint64
		wantReason string
		wantMetric string
	}{
		{"wrong version", `{"version":1,"message":{"NodeRegistration":{"node_id":9,"node_name":"n","address":"a","port":1,"node_type":"Full"}}}`, 9, "unsupported protocol version 1", "refused_version"},
		{"node id 0", `{"version":2,"message":{"NodeRegistration":{"node_id":0,"node_name":"n","address":"a","port":1,"node_type":"Full"}}}`, 0, "node_id must not be 0", "refused_node_id"},
		{"empty node name", `{"version":2,"message":{"NodeRegistration":{"node_id":9,"node_name":"","address":"a","port":1,"node_type":"Full"}}}`, 9, "node_name must not be empty", "refused_node_name"},
		{"node name too long", `{"version":2,"message":{"NodeRegistration":{"node_id":9,"node_name":"` + strings.Repeat("x", 300) + `","address":"a","port":1,"node_type":"Full"}}}`, 9, "node_name longer than", "refused_node_name"},
		{"unknown node type", `{"version":2,"message":{"NodeRegistration":{"node_id":9,"node_name":"n","address":"a","port":1,"node_type":"Huge"}}}`, 9, `unknown node_type "Huge"`, "refused_node_type"},
		{"status before registration", `{"version":2,"message":{"NodeStatusUpdate":{"node_id":9,"status":"Running"}}}`, 0, "first message must be NodeRegistration, got NodeStatusUpdate", "refused_not_registration"},
		{"drop before registration", `{"version":2,"message":"NodeDrop"}`, 0, "first message must be NodeRegistration, got NodeDrop", "refused_not_registration"},
		{"garbage first", `hello there`, 0, "first message must be a valid NodeRegistration", "refused_not_registration"},
		{"registration missing name", `{"version":2,"message":{"NodeRegistration":{"node_id":9,"address":"a","port":1,"node_type":"Full"}}}`, 0, "missing required field", "refused_not_registration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metric := `honeybee_gateway_registrations_total{outcome="` + tt.wantMetric + `"}`
			before := tg.metric(t, metric)
			n := dialNode(t, tg.Addr().String())
			if err := n.raw([]byte(tt.give + "\n")); err != nil {
				t.Fatal(err)
			}
			ack := n.ack()
			if ack.Accepted || ack.NodeID != tt.wantNodeID || !strings.Contains(ack.Message, tt.wantReason) {
				t.Errorf("ack = %+v, want refused for %d with %q", ack, tt.wantNodeID, tt.wantReason)
			}
			if !n.closed() {
				t.Error("connection not closed after the refusal")
			}
			if got := tg.metric(t, metric); got != before+1 {
				t.Errorf("%s = %v, want %v", metric, got, before+1)
			}
		})
	}
	if _, ok := tg.nodeRecord(t, 9); ok {
		t.Error("a refused node got a record")
	}
}

// TestRegistrationTimeout: a connection that sends nothing, or half a
// registration, is refused and closed after the registration timeout.
func TestRegistrationTimeout(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.RegistrationTimeout = 300 * time.Millisecond })
	tests := []struct {
		name string
		give string
	}{
		{"nothing", ""},
		{"half a registration", `{"version":2,"message":{"NodeRegistration":{"node_id":1,"node_na`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := dialNode(t, tg.Addr().String())
			if err := n.raw([]byte(tt.give)); err != nil {
				t.Fatal(err)
			}
			ack := n.ack()
			if ack.Accepted || ack.Message != "registration timeout" {
				t.Errorf("ack = %+v, want refused: registration timeout", ack)
			}
			if !n.closed() {
				t.Error("not closed")
			}
		})
	}
	if got := tg.metric(t, `honeybee_gateway_registrations_total{outcome="timeout"}`); got != 2 {
		t.Errorf("timeouts counted: %v, want 2", got)
	}
}

// TestIdleTimeout: a registered node that sends nothing (or half a
// message) is recorded disconnected with reason timeout and closed; one
// that keeps talking stays.
func TestIdleTimeout(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.IdleTimeout = 1500 * time.Millisecond })
	lc := tg.watchLifecycle(t)

	silent := dialNode(t, tg.Addr().String())
	silent.register(1, "silent")
	stall := dialNode(t, tg.Addr().String())
	stall.register(2, "stall")
	if err := stall.raw([]byte(`{"version":2,"message":{"PotEvent":{"node_id":2,`)); err != nil {
		t.Fatal(err)
	}
	chatty := dialNode(t, tg.Addr().String())
	chatty.register(3, "chatty")
	// The chatty node sends a heartbeat every 100 ms throughout.
	stopChat := make(chan struct{})
	chatDone := make(chan error, 1)
	go func() {
		b, _ := proto.Marshal(&proto.NodeStatusUpdate{NodeID: 3, Status: proto.NodeRunning})
		b = append(b, '\n')
		for {
			select {
			case <-stopChat:
				chatDone <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := chatty.raw(b); err != nil {
				chatDone <- err
				return
			}
		}
	}()

	for _, id := range []uint64{1, 2} {
		rec := tg.waitNode(t, id, "disconnected", func(r bus.NodeRecord) bool { return !r.Connected })
		if rec.DisconnectReason != bus.ReasonTimeout || rec.DisconnectedAt.IsZero() {
			t.Errorf("node %d: record %+v, want reason timeout", id, rec)
		}
		eventually(t, "disconnected lifecycle", func() bool {
			m := lc.of(id, bus.LifecycleDisconnected)
			return len(m) == 1 && m[0].Reason == bus.ReasonTimeout
		})
	}
	if !silent.closed() || !stall.closed() {
		t.Error("timed out connections not closed")
	}
	close(stopChat)
	if err := <-chatDone; err != nil {
		t.Fatalf("chatty node's heartbeat failed: %v", err)
	}
	if rec, _ := tg.nodeRecord(t, 3); !rec.Connected {
		t.Errorf("a node heard every 100 ms was disconnected: %+v", rec)
	}
}

// TestIdentity: a message that speaks for another node_id is dropped and
// counted; the other node's state is untouched and the session continues.
func TestIdentity(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	victim := dialNode(t, tg.Addr().String())
	victim.register(100, "victim")
	victim.status(proto.NodeRunning)
	tg.waitNode(t, 100, "running", func(r bus.NodeRecord) bool { return r.Status == proto.NodeRunning })

	liar := dialNode(t, tg.Addr().String())
	liar.register(200, "liar")
	liar.send(&proto.NodeStatusUpdate{NodeID: 100, Status: proto.NodeFailed})
	liar.send(&proto.PotEvent{NodeID: 100, PotID: "p", EventType: "forged"})
	liar.send(&proto.PotStatusUpdate{NodeID: 100, PotID: "p", PotType: "x", Status: proto.PotFailed})
	// The liar's own messages still work afterwards.
	liar.status(proto.NodeStopped)
	tg.waitNode(t, 200, "liar stopped", func(r bus.NodeRecord) bool { return r.Status == proto.NodeStopped })

	if got := tg.metric(t, `honeybee_gateway_dropped_total{reason="identity_mismatch"}`); got != 3 {
		t.Errorf("identity drops = %v, want 3", got)
	}
	if rec, _ := tg.nodeRecord(t, 100); rec.Status != proto.NodeRunning {
		t.Errorf("victim's status changed to %s", rec.Status)
	}
	if ev := tg.nodeEvents(t, 100); len(ev) != 0 {
		t.Errorf("forged events stored for the victim: %+v", ev)
	}
	if _, ok := tg.potRecord(t, 100, "p"); ok {
		t.Error("forged pot record for the victim")
	}
}

// TestReplacement: a second connection registering the same node_id
// replaces the first; the old socket is closed and the node stays
// recorded connected, through the new connection.
func TestReplacement(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	lc := tg.watchLifecycle(t)
	first := dialNode(t, tg.Addr().String())
	first.register(42, "twin")
	tg.waitNode(t, 42, "connected", func(r bus.NodeRecord) bool { return r.Connected })

	second := dialNode(t, tg.Addr().String())
	second.register(42, "twin")
	if !first.closed() {
		t.Fatal("old connection not closed")
	}
	eventually(t, "old session ended", func() bool {
		return tg.metric(t, `honeybee_gateway_disconnects_total{reason="replaced"}`) == 1
	})
	// A barrier: the new session's status change is recorded after
	// anything the old session could have written.
	second.status(proto.NodeDeploying)
	rec := tg.waitNode(t, 42, "deploying", func(r bus.NodeRecord) bool { return r.Status == proto.NodeDeploying })
	if !rec.Connected || rec.RemoteAddr != second.conn.LocalAddr().String() {
		t.Errorf("record %+v, want connected through %s", rec, second.conn.LocalAddr())
	}
	eventually(t, "status lifecycle", func() bool { return len(lc.of(42, bus.LifecycleStatus)) == 1 })
	if d := lc.of(42, bus.LifecycleDisconnected); len(d) != 0 {
		t.Errorf("replacement published disconnected: %+v", d)
	}
	if got := tg.metric(t, "honeybee_gateway_nodes"); got != 1 {
		t.Errorf("nodes gauge = %v, want 1", got)
	}
	// Commands reach the new connection.
	reply, err := tg.request(42, bus.CommandRequest{CommandID: "after-replace", Command: json.RawMessage(`{"Restart":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	var r bus.CommandReply
	if err := json.Unmarshal(reply.Data, &r); err != nil || !r.Delivered {
		t.Fatalf("reply %s: %v", reply.Data, err)
	}
	if c := second.command(); c.Command.Kind != proto.CmdRestart {
		t.Errorf("command %+v", c)
	}
	second.send(&proto.NodeDrop{})
	rec = tg.waitNode(t, 42, "dropped", func(r bus.NodeRecord) bool { return !r.Connected })
	if rec.DisconnectReason != bus.ReasonDrop {
		t.Errorf("reason %q, want drop", rec.DisconnectReason)
	}
}

// TestReregistrationIgnored: a second NodeRegistration on a registered
// session gets no second ack and changes nothing.
func TestReregistrationIgnored(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(8, "once")
	n.send(registration(9, "other"))
	n.status(proto.NodeRunning)
	tg.waitNode(t, 8, "running", func(r bus.NodeRecord) bool { return r.Status == proto.NodeRunning })
	if got := tg.metric(t, `honeybee_gateway_dropped_total{reason="reregistration"}`); got != 1 {
		t.Errorf("reregistration drops = %v", got)
	}
	if _, ok := tg.nodeRecord(t, 9); ok {
		t.Error("second registration created a node")
	}
	_ = n.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if frame, err := n.r.Next(); err == nil {
		t.Errorf("unexpected second frame %s", frame)
	}
}

// TestMaxConnections: connections beyond the cap are closed at once and
// counted; the held ones keep working.
func TestMaxConnections(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.MaxConnections = 2 })
	a := dialNode(t, tg.Addr().String())
	a.register(1, "a")
	b := dialNode(t, tg.Addr().String())
	b.register(2, "b")
	extra := dialNode(t, tg.Addr().String())
	if !extra.closed() {
		t.Fatal("connection over the cap left open")
	}
	if got := tg.metric(t, `honeybee_gateway_dropped_total{reason="connection_capacity"}`); got != 1 {
		t.Errorf("capacity drops = %v, want 1", got)
	}
	a.status(proto.NodeRunning)
	tg.waitNode(t, 1, "running", func(r bus.NodeRecord) bool { return r.Status == proto.NodeRunning })
}
