package gateway

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/session"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// TestCommands: a command request is written to the node in the deployed
// Go node's form, answered with delivered:true, recorded, and its record
// follows what the node reports afterwards.
func TestCommands(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(31, "commanded")
	msg := func(s string) *string { return &s }

	tests := []struct {
		name      string
		give      string
		wantWire  string
		report    []proto.Message
		wantState string
		wantSteps []string
	}{
		{
			name:      "StopPot then Stopped",
			give:      `{"StopPot":"cowrie-01"}`,
			wantWire:  `{"StopPot":"cowrie-01"}`,
			report:    []proto.Message{&proto.PotStatusUpdate{NodeID: 31, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotStopped}},
			wantState: bus.CommandSucceeded,
			wantSteps: []string{"pot_status:Stopped"},
		},
		{
			name:     "InstallPot through Installing to Running",
			give:     `{"InstallPot":{"pot_id":"cowrie-02","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{"ssh_port":"2222"},"auto_start":true}}`,
			wantWire: `{"InstallPot":{"pot_id":"cowrie-02","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{"ssh_port":"2222"},"auto_start":true}}`,
			report: []proto.Message{
				&proto.PotStatusUpdate{NodeID: 31, PotID: "cowrie-02", PotType: "cowrie", Status: proto.PotInstalling, Message: msg("Cloning potstore")},
				&proto.PotStatusUpdate{NodeID: 31, PotID: "cowrie-02", PotType: "cowrie", Status: proto.PotRunning},
			},
			wantState: bus.CommandSucceeded,
			wantSteps: []string{"pot_status:Installing", "pot_status:Running"},
		},
		{
			name:      "DeployPot then Failed",
			give:      `{"DeployPot":"cowrie-03"}`,
			wantWire:  `{"DeployPot":"cowrie-03"}`,
			report:    []proto.Message{&proto.PotStatusUpdate{NodeID: 31, PotID: "cowrie-03", PotType: "cowrie", Status: proto.PotFailed, Message: msg("no space left")}},
			wantState: bus.CommandFailed,
			wantSteps: []string{"pot_status:Failed"},
		},
		{
			name:      "bare-string Restart then a status report",
			give:      `"Restart"`,
			wantWire:  `{"Restart":{}}`,
			report:    []proto.Message{&proto.NodeStatusUpdate{NodeID: 31, Status: proto.NodeRunning}},
			wantState: bus.CommandSucceeded,
			wantSteps: []string{"node_status:Running"},
		},
		{
			name:      "GetPotLogs answered by an Error event",
			give:      `{"GetPotLogs":"cowrie-01"}`,
			wantWire:  `{"GetPotLogs":"cowrie-01"}`,
			report:    []proto.Message{&proto.NodeEvent{Type: proto.NodeEventError, Message: "GetPotLogs not yet implemented"}},
			wantState: bus.CommandFailed,
			wantSteps: []string{"node_event:Error"},
		},
		{
			name:      "GetInstalledPots answered by pot reports",
			give:      `{"GetInstalledPots":null}`,
			wantWire:  `{"GetInstalledPots":{}}`,
			report:    []proto.Message{&proto.PotStatusUpdate{NodeID: 31, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotStopped}},
			wantState: bus.CommandSucceeded,
			wantSteps: []string{"pot_status:Stopped"},
		},
		{
			name:      "UpdateConfig stays pending",
			give:      `{"UpdateConfig":{}}`,
			wantWire:  `{"UpdateConfig":{}}`,
			wantState: bus.CommandPending,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "cmd-" + string(rune('a'+i))
			reply, err := tg.request(31, bus.CommandRequest{CommandID: id, Command: json.RawMessage(tt.give)})
			if err != nil {
				t.Fatal(err)
			}
			if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
				t.Fatalf("service error %s: %s", code, reply.Header.Get(micro.ErrorHeader))
			}
			var r bus.CommandReply
			if err := json.Unmarshal(reply.Data, &r); err != nil {
				t.Fatal(err)
			}
			if r != (bus.CommandReply{CommandID: id, NodeID: 31, NodeIDStr: "31", Delivered: true}) {
				t.Errorf("reply %+v", r)
			}
			// The record is stored before the reply: a reader can GET it at once.
			if rec, ok := tg.commandRecord(t, id); !ok || !rec.Delivered {
				t.Errorf("right after the reply the command record is %+v (found %v), want it stored and delivered", rec, ok)
			}
			// The exact bytes the node receives.
			_ = n.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			frame, err := n.r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"version":2,"message":{"NodeCommand":{"node_id":31,"command":` + tt.wantWire + `}}}`; string(frame) != want {
				t.Errorf("node received\n%s\nwant\n%s", frame, want)
			}
			for _, m := range tt.report {
				n.send(m)
			}
			var rec bus.CommandRecord
			eventually(t, "command record "+tt.wantState, func() bool {
				var ok bool
				rec, ok = tg.commandRecord(t, id)
				return ok && rec.State == tt.wantState && rec.Delivered && len(rec.Progress) == len(tt.wantSteps)
			})
			var steps []string
			for _, p := range rec.Progress {
				steps = append(steps, p.Source+":"+p.Status)
			}
			if strings.Join(steps, ",") != strings.Join(tt.wantSteps, ",") {
				t.Errorf("progress %v, want %v", steps, tt.wantSteps)
			}
			if rec.NodeID != 31 || rec.NodeName != "commanded" || string(rec.Command) != tt.wantWire || rec.SentAt.IsZero() {
				t.Errorf("record %+v", rec)
			}
		})
	}
}

// TestCommandErrors: invalid requests get a micro-style service error
// with a reason; a node nobody holds fails at once with no responders.
func TestCommandErrors(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(32, "target")

	tests := []struct {
		name       string
		give       string
		wantCode   string
		wantReason string
	}{
		{"unknown command", `{"command":{"SelfDestruct":{}}}`, bus.CodeInvalidCommand, "unknown variant"},
		{"empty pot id", `{"command":{"StopPot":""}}`, bus.CodeInvalidCommand, "non-empty pot id"},
		{"install without a type", `{"command":{"InstallPot":{"pot_id":"x"}}}`, bus.CodeInvalidCommand, "honeypot_type"},
		{"no command", `{}`, bus.CodeInvalidCommand, "invalid command"},
		{"not JSON", `stop it`, bus.CodeInvalidCommand, "not a CommandRequest"},
		{"command id with a dot", `{"command_id":"a.b","command":{"Restart":{}}}`, bus.CodeInvalidCommand, "command_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := tg.nc.Request(tg.c.Command(32), []byte(tt.give), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code := reply.Header.Get(micro.ErrorCodeHeader); code != tt.wantCode {
				t.Errorf("code %q, want %q", code, tt.wantCode)
			}
			if reason := reply.Header.Get(micro.ErrorHeader); !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", reason, tt.wantReason)
			}
		})
	}
	// Nothing reached the node.
	_ = n.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if frame, err := n.r.Next(); err == nil {
		t.Errorf("an invalid command reached the node: %s", frame)
	}

	t.Run("node held by nobody", func(t *testing.T) {
		_, err := tg.request(999, bus.CommandRequest{Command: json.RawMessage(`{"Restart":{}}`)})
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("err = %v, want no responders", err)
		}
	})
	t.Run("node gone after NodeDrop", func(t *testing.T) {
		n.send(&proto.NodeDrop{})
		tg.waitNode(t, 32, "dropped", func(r bus.NodeRecord) bool { return !r.Connected })
		_, err := tg.request(32, bus.CommandRequest{Command: json.RawMessage(`{"Restart":{}}`)})
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("err = %v, want no responders", err)
		}
	})
}

// TestDisconnectCommand: Disconnect closes the node's session and records
// it disconnected with reason removed.
func TestDisconnectCommand(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(33, "removable")
	reply, err := tg.request(33, bus.CommandRequest{CommandID: "rm-1", Disconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	var r bus.CommandReply
	if err := json.Unmarshal(reply.Data, &r); err != nil || !r.Delivered || r.CommandID != "rm-1" {
		t.Fatalf("reply %s: %v", reply.Data, err)
	}
	if !n.closed() {
		t.Error("session not closed")
	}
	rec := tg.waitNode(t, 33, "removed", func(r bus.NodeRecord) bool { return !r.Connected })
	if rec.DisconnectReason != bus.ReasonRemoved {
		t.Errorf("reason %q, want removed", rec.DisconnectReason)
	}
}

// TestBroadcast: two gateways on one NATS both answer a broadcast, each
// for the nodes it holds, and every node receives the command. Both show
// up as instances of the micro service.
func TestBroadcast(t *testing.T) {
	ns := startNATS(t)
	a := startGateway(t, ns, func(c *Config) { c.GatewayID = "gw-a" })
	b := startGateway(t, ns, func(c *Config) { c.GatewayID = "gw-b" })
	nodes := map[uint64]*testNode{}
	for id, gw := range map[uint64]*testGateway{1: a, 2: a, 3: b} {
		n := dialNode(t, gw.Addr().String())
		n.register(id, "bc")
		nodes[id] = n
	}

	replies := gather(t, a.nc, a.c.Broadcast(), []byte(`{"command_id":"bc1","command":{"Restart":{}}}`), 2)
	got := map[string][]bus.BroadcastResult{}
	for _, m := range replies {
		var r bus.BroadcastReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("broadcast reply %s: %v", m.Data, err)
		}
		sort.Slice(r.Results, func(i, j int) bool { return r.Results[i].NodeID < r.Results[j].NodeID })
		got[r.GatewayID] = r.Results
	}
	want := map[string][]bus.BroadcastResult{
		"gw-a": {{NodeID: 1, NodeIDStr: "1", CommandID: "bc1-1", Delivered: true}, {NodeID: 2, NodeIDStr: "2", CommandID: "bc1-2", Delivered: true}},
		"gw-b": {{NodeID: 3, NodeIDStr: "3", CommandID: "bc1-3", Delivered: true}},
	}
	for gw, w := range want {
		if g := got[gw]; len(g) != len(w) || (len(g) > 0 && (g[0] != w[0] || g[len(g)-1] != w[len(w)-1])) {
			t.Errorf("%s answered %+v, want %+v", gw, g, w)
		}
	}
	for id, n := range nodes {
		if c := n.command(); c.Command.Kind != proto.CmdRestart || c.NodeID != id {
			t.Errorf("node %d received %+v", id, c)
		}
	}
	eventually(t, "broadcast command records", func() bool {
		r, ok := b.commandRecord(t, "bc1-3")
		return ok && r.Delivered && r.NodeID == 3
	})

	// Invalid broadcasts are refused by every gateway.
	for _, m := range gather(t, a.nc, a.c.Broadcast(), []byte(`{"disconnect":true}`), 2) {
		if m.Header.Get(micro.ErrorCodeHeader) != bus.CodeInvalidCommand {
			t.Errorf("disconnect broadcast answered %q %q", m.Header.Get(micro.ErrorCodeHeader), m.Data)
		}
	}

	// nats micro ls: both gateways are instances of one service.
	ping, _ := micro.ControlSubject(micro.PingVerb, a.c.GatewayService(), "")
	ids := map[string]bool{}
	for _, m := range gather(t, a.nc, ping, nil, 2) {
		var p micro.Ping
		if err := json.Unmarshal(m.Data, &p); err != nil || p.Name != a.c.GatewayService() {
			t.Errorf("ping reply %s: %v", m.Data, err)
		}
		ids[p.Metadata["gateway_id"]] = true
	}
	if !ids["gw-a"] || !ids["gw-b"] {
		t.Errorf("micro service instances %v, want gw-a and gw-b", ids)
	}

	// The nodes endpoint lists what each gateway holds.
	held := map[string]int{}
	for _, m := range gather(t, a.nc, session.NodesSubject(a.c), nil, 2) {
		var r session.NodesReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		held[r.GatewayID] = len(r.Nodes)
	}
	if held["gw-a"] != 2 || held["gw-b"] != 1 {
		t.Errorf("held nodes %v", held)
	}
}

// gather sends a request and collects want replies (or fails after 10 s).
func gather(t *testing.T, nc *nats.Conn, subject string, data []byte, want int) []*nats.Msg {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, data); err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for len(out) < want {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%d of %d replies on %s: %v", len(out), want, subject, err)
		}
		out = append(out, m)
	}
	return out
}

// TestCommandsToStalledNode: a node that stops reading its socket gets at
// most WriteQueue commands queued; the next ones are refused at once with
// a reason, every request gets an answer, and when the queued writes time
// out the session ends and the node is recorded disconnected.
func TestCommandsToStalledNode(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.WriteQueue = 2; c.WriteTimeout = time.Second })
	n := dialNode(t, tg.Addr().String())
	n.register(34, "stalled") // and never reads again

	// 256 KiB per command: loopback socket buffers fill after a few.
	big := strings.Repeat("x", 256<<10)
	data, err := json.Marshal(bus.CommandRequest{Command: json.RawMessage(
		`{"InstallPot":{"pot_id":"p","honeypot_type":"cowrie","config":{"blob":"` + big + `"}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	const requests = 60
	type answer struct {
		code, reason string
		err          error
	}
	answers := make(chan answer, requests)
	for range requests {
		go func() {
			reply, err := tg.nc.Request(tg.c.Command(34), data, 20*time.Second)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			answers <- answer{code: reply.Header.Get(micro.ErrorCodeHeader), reason: reply.Header.Get(micro.ErrorHeader)}
		}()
	}
	counts := map[string]int{}
	for range requests {
		a := <-answers
		switch {
		case a.err != nil:
			// Requests that come after the session ended find no responder.
			if !errors.Is(a.err, nats.ErrNoResponders) {
				t.Errorf("request failed: %v", a.err)
			}
			counts["no responders"]++
		case a.code == "":
			counts["delivered"]++
		case strings.Contains(a.reason, "queue full"):
			counts["queue full"]++
		default:
			counts[a.code+" "+a.reason]++
		}
	}
	t.Logf("answers: %v", counts)
	if counts["queue full"] == 0 {
		t.Errorf("no request was refused with a full queue: %v", counts)
	}
	rec := tg.waitNode(t, 34, "disconnected after the write timeout", func(r bus.NodeRecord) bool { return !r.Connected })
	if rec.DisconnectReason != bus.ReasonClosed {
		t.Errorf("disconnect reason %q, want %q", rec.DisconnectReason, bus.ReasonClosed)
	}
}
