package wsproxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

// backendEnv has three nodes: 1 connected through live gateway gw-1, 2
// "connected" through gw-dead (no heartbeat: not live), 3 disconnected.
func backendEnv(t *testing.T) (*env, *proxy) {
	e := newEnv(t)
	now := time.Now().UTC()
	e.put(e.kv.gateways, "gw-1", bus.GatewayRecord{GatewayID: "gw-1", StartedAt: now, Nodes: 1, Heartbeat: now})
	for _, r := range []bus.NodeRecord{
		{NodeID: 1, NodeIDStr: "1", NodeName: "alpha", NodeType: proto.NodeTypeFull, Status: proto.NodeRunning, Connected: true, GatewayID: "gw-1"},
		{NodeID: 2, NodeIDStr: "2", NodeName: "beta", NodeType: proto.NodeTypeAgent, Status: proto.NodeRunning, Connected: true, GatewayID: "gw-dead"},
		{NodeID: 3, NodeIDStr: "3", NodeName: "gamma", NodeType: proto.NodeTypeFull, Status: proto.NodeStopped, DisconnectReason: bus.ReasonDrop},
	} {
		e.put(e.kv.nodes, bus.NodeKey(r.NodeID), r)
	}
	for _, pot := range []string{"cowrie-01", "a.b"} {
		e.put(e.kv.pots, bus.PotKey(1, pot), bus.PotRecord{NodeID: 1, NodeIDStr: "1", PotID: pot, Status: proto.PotRunning})
	}
	e.put(e.kv.pots, bus.PotKey(3, "cowrie-01"), bus.PotRecord{NodeID: 3, NodeIDStr: "3", PotID: "cowrie-01", Status: proto.PotStopped})
	p := e.startProxy(func(cfg *wsproxy.Config) {
		cfg.Tokens = "read:r-token,admin:a-token"
		cfg.CommandTimeout = 2 * time.Second
	})
	return e, p
}

// response is a decoded BackendResponse.
type response struct {
	ok      bool
	message string
	data    json.RawMessage
	failure string
}

func roundTrip(t *testing.T, conn *websocket.Conn, msg string) response {
	t.Helper()
	send(t, conn, msg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("%s: read: %v", msg, err)
	}
	if typ != websocket.MessageText {
		t.Fatal("binary answer")
	}
	env, err := proto.Decode(b)
	if err != nil {
		t.Fatalf("%s: answer %s does not decode: %v", msg, b, err)
	}
	r, ok := env.Message.(*proto.BackendResponse)
	if !ok || env.Version != 2 {
		t.Fatalf("%s: answer %s is not a v2 BackendResponse", msg, b)
	}
	// Exactly the proto encoder's bytes.
	want, _ := proto.Marshal(r)
	if string(want) != string(b) {
		t.Errorf("answer %s\nis not the encoder's form %s", b, want)
	}
	return response{ok: r.Success, message: r.Message, data: r.Data, failure: r.Failure}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func cmd(c string) string { return `{"version":2,"message":{"BackendCommand":` + c + `}}` }

func TestBackendQueries(t *testing.T) {
	_, p := backendEnv(t)
	for _, path := range []string{"/", "/ws"} {
		t.Run(path, func(t *testing.T) {
			conn := p.dial(t, path+"?token=r-token", nil)
			r := roundTrip(t, conn, `{"version":2,"message":{"BackendRegistration":{"backend_name":"web-ui","backend_type":{"Custom":"grafana"}}}}`)
			var reg struct {
				BackendID *uint64 `json:"backend_id"`
			}
			if !r.ok || json.Unmarshal(r.data, &reg) != nil || reg.BackendID == nil || *reg.BackendID == 0 || *reg.BackendID >= 1<<53 {
				t.Fatalf("registration: %+v", r)
			}
			tests := []struct {
				name string
				give string
				want string // data, compared as JSON
			}{
				{"GetNodes string", cmd(`"GetNodes"`), `{"nodes":[1,2,3],"node_ids_str":["1","2","3"]}`},
				{"GetNodes object", cmd(`{"GetNodes":{}}`), `{"nodes":[1,2,3],"node_ids_str":["1","2","3"]}`},
				{"GetNodes null", cmd(`{"GetNodes":null}`), `{"nodes":[1,2,3],"node_ids_str":["1","2","3"]}`},
				{"GetNodeCount string", cmd(`"GetNodeCount"`), `{"count":3}`},
				{"GetNodeCount object", cmd(`{"GetNodeCount":{}}`), `{"count":3}`},
				{"GetActiveConnections string", cmd(`"GetActiveConnections"`), `{"count":1}`},
				{"GetActiveConnections object", cmd(`{"GetActiveConnections":{}}`), `{"count":1}`},
				{"GetNodesByStatus Running", cmd(`{"GetNodesByStatus":{"status":"Running"}}`), `{"nodes":[1,2],"node_ids_str":["1","2"]}`},
				{"GetNodesByStatus Failed", cmd(`{"GetNodesByStatus":{"status":"Failed"}}`), `{"nodes":[],"node_ids_str":[]}`},
			}
			for _, tt := range tests {
				r := roundTrip(t, conn, tt.give)
				if !r.ok || !jsonEqual(r.data, tt.want) {
					t.Errorf("%s: got %+v %s, want %s", tt.name, r, r.data, tt.want)
				}
			}
			// GetNode answers the record; connected only when live.
			for _, tt := range []struct {
				give          uint64
				wantConnected bool
				wantName      string
			}{{1, true, "alpha"}, {2, false, "beta"}, {3, false, "gamma"}} {
				r := roundTrip(t, conn, cmd(`{"GetNode":{"node_id":`+proto.FormatNodeID(tt.give)+`}}`))
				var rec bus.NodeRecord
				if !r.ok || json.Unmarshal(r.data, &rec) != nil || rec.NodeID != tt.give || rec.Connected != tt.wantConnected || rec.NodeName != tt.wantName {
					t.Errorf("GetNode %d: %+v %s", tt.give, r, r.data)
				}
			}
			if r := roundTrip(t, conn, cmd(`{"GetNode":{"node_id":99}}`)); r.ok || r.failure != "node 99 not found" {
				t.Errorf("GetNode 99: %+v", r)
			}
			// A read token may not act.
			for _, give := range []string{
				cmd(`{"NodeCommand":{"node_id":1,"command":{"StopPot":"cowrie-01"}}}`),
				cmd(`{"BroadcastCommand":{"command":{"Restart":{}}}}`),
				cmd(`{"RemoveNode":{"node_id":3}}`),
			} {
				if r := roundTrip(t, conn, give); r.ok || !strings.HasPrefix(r.failure, "forbidden:") {
					t.Errorf("%s with a read token: %+v", give, r)
				}
			}
			// BackendDrop closes normally.
			send(t, conn, `{"version":2,"message":"BackendDrop"}`)
			_, err := read(t, conn, 5*time.Second)
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("after BackendDrop: %v", err)
			}
		})
	}
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// gateway plays the gateway on command subjects with plain subscriptions.
type gateway struct {
	reqs chan *nats.Msg
}

func (e *env) gateway(t *testing.T, node uint64, reply func(req bus.CommandRequest) (*nats.Msg, error)) *gateway {
	g := &gateway{reqs: make(chan *nats.Msg, 16)}
	sub, err := e.nc.Subscribe(c.Command(node), func(m *nats.Msg) {
		g.reqs <- m
		var req bus.CommandRequest
		_ = json.Unmarshal(m.Data, &req)
		out, _ := reply(req)
		_ = m.RespondMsg(out)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = e.nc.Flush()
	return g
}

func delivered(node uint64) func(bus.CommandRequest) (*nats.Msg, error) {
	return func(req bus.CommandRequest) (*nats.Msg, error) {
		b, _ := json.Marshal(bus.CommandReply{CommandID: req.CommandID, NodeID: node, NodeIDStr: proto.FormatNodeID(node), Delivered: true})
		return &nats.Msg{Data: b}, nil
	}
}

func TestBackendCommands(t *testing.T) {
	e, p := backendEnv(t)
	conn := p.dial(t, "/ws", bearer("a-token"))

	t.Run("NodeCommand", func(t *testing.T) {
		g := e.gateway(t, 1, delivered(1))
		r := roundTrip(t, conn, cmd(`{"NodeCommand":{"node_id":1,"command":{"StopPot":"cowrie-01"}}}`))
		var reply bus.CommandReply
		if !r.ok || json.Unmarshal(r.data, &reply) != nil || !reply.Delivered || reply.NodeID != 1 || reply.CommandID == "" {
			t.Fatalf("got %+v %s", r, r.data)
		}
		var req bus.CommandRequest
		if err := json.Unmarshal((<-g.reqs).Data, &req); err != nil || string(req.Command) != `{"StopPot":"cowrie-01"}` || req.CommandID != reply.CommandID || req.Disconnect {
			t.Fatalf("gateway got %+v", req)
		}
		// Unit commands in string form go out in object form.
		r = roundTrip(t, conn, cmd(`{"NodeCommand":{"node_id":1,"command":"Restart"}}`))
		if err := json.Unmarshal((<-g.reqs).Data, &req); err != nil || !r.ok || string(req.Command) != `{"Restart":{}}` {
			t.Fatalf("Restart: %+v, gateway got %s", r, req.Command)
		}
	})
	t.Run("NodeCommand to a node nobody holds", func(t *testing.T) {
		start := time.Now()
		r := roundTrip(t, conn, cmd(`{"NodeCommand":{"node_id":3,"command":{"Restart":{}}}}`))
		if r.ok || r.failure != "node 3 is not connected" {
			t.Fatalf("got %+v", r)
		}
		if time.Since(start) > time.Second {
			t.Logf("took %v: no responders should answer at once", time.Since(start))
		}
	})
	t.Run("NodeCommand rejected by the gateway", func(t *testing.T) {
		e.gateway(t, 7, func(bus.CommandRequest) (*nats.Msg, error) {
			m := nats.NewMsg("")
			m.Header.Set("Nats-Service-Error-Code", bus.CodeInvalidCommand)
			m.Header.Set("Nats-Service-Error", "pot id too long")
			return m, nil
		})
		r := roundTrip(t, conn, cmd(`{"NodeCommand":{"node_id":7,"command":{"DeployPot":"x"}}}`))
		if r.ok || r.failure != "invalid command: pot id too long" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("NodeCommand invalid", func(t *testing.T) {
		r := roundTrip(t, conn, cmd(`{"NodeCommand":{"node_id":1,"command":{"StopPot":""}}}`))
		if r.ok || !strings.Contains(r.failure, "invalid command") {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("BroadcastCommand", func(t *testing.T) {
		got := make(chan bus.CommandRequest, 1)
		sub, err := e.nc.Subscribe(c.Broadcast(), func(m *nats.Msg) {
			var req bus.CommandRequest
			_ = json.Unmarshal(m.Data, &req)
			got <- req
			b, _ := json.Marshal(bus.BroadcastReply{GatewayID: "gw-1", Results: []bus.BroadcastResult{
				{NodeID: 1, NodeIDStr: "1", CommandID: req.CommandID + "-1", Delivered: true}}})
			_ = m.Respond(b)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		_ = e.nc.Flush()
		r := roundTrip(t, conn, cmd(`{"BroadcastCommand":{"command":{"Restart":{}}}}`))
		var res struct {
			CommandID string                `json:"command_id"`
			Gateways  int                   `json:"gateways"`
			Answered  int                   `json:"answered"`
			Delivered int                   `json:"delivered"`
			Results   []bus.BroadcastResult `json:"results"`
		}
		if !r.ok || json.Unmarshal(r.data, &res) != nil || res.Gateways != 1 || res.Answered != 1 || res.Delivered != 1 ||
			len(res.Results) != 1 || res.Results[0].CommandID != res.CommandID+"-1" {
			t.Fatalf("got %+v %s", r, r.data)
		}
		if req := <-got; string(req.Command) != `{"Restart":{}}` || req.CommandID != res.CommandID {
			t.Fatalf("gateway got %+v", req)
		}
	})
	t.Run("RemoveNode", func(t *testing.T) {
		// Like the gateway, record the node disconnected as the session
		// closes, possibly after the reply.
		closing := make(chan struct{})
		g := e.gateway(t, 1, func(req bus.CommandRequest) (*nats.Msg, error) {
			go func() {
				defer close(closing)
				b, _ := json.Marshal(bus.NodeRecord{NodeID: 1, NodeIDStr: "1", NodeName: "alpha", DisconnectReason: bus.ReasonRemoved})
				_, _ = e.kv.nodes.Put(context.Background(), bus.NodeKey(1), b)
			}()
			return delivered(1)(req)
		})
		defer func() { <-closing }()
		removed, err := e.nc.SubscribeSync(c.Node(1, bus.LifecycleRemoved))
		if err != nil {
			t.Fatal(err)
		}
		defer removed.Unsubscribe()
		_ = e.nc.Flush()
		r := roundTrip(t, conn, cmd(`{"RemoveNode":{"node_id":1}}`))
		if !r.ok || !jsonEqual(r.data, `{"node_id":1,"node_id_str":"1","removed":true,"was_connected":true}`) {
			t.Fatalf("got %+v %s", r, r.data)
		}
		var req bus.CommandRequest
		if err := json.Unmarshal((<-g.reqs).Data, &req); err != nil || !req.Disconnect {
			t.Fatalf("gateway got %+v, want a disconnect", req)
		}
		ctx := context.Background()
		if _, err := e.kv.nodes.Get(ctx, bus.NodeKey(1)); err != jetstream.ErrKeyNotFound {
			t.Errorf("node key: %v", err)
		}
		for _, pot := range []string{"cowrie-01", "a.b"} {
			if _, err := e.kv.pots.Get(ctx, bus.PotKey(1, pot)); err != jetstream.ErrKeyNotFound {
				t.Errorf("pot %s: %v", pot, err)
			}
		}
		if _, err := e.kv.pots.Get(ctx, bus.PotKey(3, "cowrie-01")); err != nil {
			t.Errorf("another node's pot went too: %v", err)
		}
		m, err := removed.NextMsg(5 * time.Second)
		var l bus.NodeLifecycle
		if err != nil || json.Unmarshal(m.Data, &l) != nil || l.Kind != bus.LifecycleRemoved || l.NodeID != 1 {
			t.Fatalf("removed lifecycle: %v %+v", err, l)
		}
		// A disconnected node is forgotten without asking a gateway.
		if r := roundTrip(t, conn, cmd(`{"RemoveNode":{"node_id":3}}`)); !r.ok {
			t.Fatalf("remove 3: %+v", r)
		}
		if r := roundTrip(t, conn, cmd(`"GetNodes"`)); !jsonEqual(r.data, `{"nodes":[2],"node_ids_str":["2"]}`) {
			t.Fatalf("after removal: %s", r.data)
		}
		if r := roundTrip(t, conn, cmd(`{"RemoveNode":{"node_id":1}}`)); r.ok || r.failure != "node 1 not found" {
			t.Fatalf("remove again: %+v", r)
		}
	})
}

// TestBackendBadInput: bad input gets a Failure or a close with a reason;
// another client is unaffected.
func TestBackendBadInput(t *testing.T) {
	_, p := backendEnv(t)
	bystander := p.dial(t, "/ws", bearer("r-token"))
	conn := p.dial(t, "/", bearer("r-token"))
	failures := []struct {
		name string
		give string
		want string
	}{
		{"not JSON", `hello`, "message is not JSON"},
		{"not an envelope", `{"hello":1}`, "invalid message"},
		{"unknown command string", cmd(`"GetEverything"`), "unknown message or command"},
		{"unknown command object", cmd(`{"Explode":{"node_id":1}}`), "unknown message or command"},
		{"unknown variant", `{"version":2,"message":{"Hello":{}}}`, "unknown message or command"},
		{"missing field", cmd(`{"GetNode":{}}`), "missing required field"},
		{"bad node id", cmd(`{"GetNode":{"node_id":-1}}`), "invalid"},
		{"bad status", cmd(`{"GetNodesByStatus":{"status":"Sleeping"}}`), "unknown node status"},
		{"wrong version", `{"version":1,"message":"BackendDrop"}`, "unsupported protocol version 1"},
		{"node message", `{"version":2,"message":{"NodeStatusUpdate":{"node_id":1,"status":"Running"}}}`, "unexpected NodeStatusUpdate"},
	}
	for _, tt := range failures {
		r := roundTrip(t, conn, tt.give)
		if r.ok || !strings.Contains(r.failure, tt.want) {
			t.Errorf("%s: got %+v, want a failure containing %q", tt.name, r, tt.want)
		}
	}
	closes := []struct {
		name   string
		typ    websocket.MessageType
		give   []byte
		status websocket.StatusCode
	}{
		{"binary", websocket.MessageBinary, []byte(cmd(`"GetNodes"`)), websocket.StatusUnsupportedData},
		{"enormous", websocket.MessageText, []byte(`{"version":2,"message":{"BackendRegistration":{"backend_name":"` + strings.Repeat("a", 70<<10) + `"}}}`), websocket.StatusMessageTooBig},
	}
	for _, tt := range closes {
		conn := p.dial(t, "/ws", bearer("r-token"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Write(ctx, tt.typ, tt.give)
		cancel()
		_, err := read(t, conn, 5*time.Second)
		if got := websocket.CloseStatus(err); got != tt.status {
			t.Errorf("%s: closed with %v (%v), want %v", tt.name, got, err, tt.status)
		}
	}
	if r := roundTrip(t, bystander, cmd(`"GetNodeCount"`)); !r.ok || !jsonEqual(r.data, `{"count":3}`) {
		t.Fatalf("bystander: %+v", r)
	}
	if n := p.metric(t, `honeybee_wsproxy_bad_input_total{endpoint="backend",reason="binary"}`); n != 1 {
		t.Errorf("bad input metric %v", n)
	}
}
