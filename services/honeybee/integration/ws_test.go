package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	gateway "github.com/honeybee/core/services/node-gateway"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

// wsCore is an embedded NATS, the real gateway and a ws-proxy.
type wsCore struct {
	gw   *gateway.Gateway
	ws   *wsproxy.Proxy
	base string // ws://host:port
}

func wsEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startWSCore(t *testing.T) *wsCore {
	t.Helper()
	ns, gw := startNATSAndGateway(t, "gw-ws")
	wcfg := wsproxy.DefaultConfig()
	wcfg.Addr, wcfg.NATSURL = "127.0.0.1:0", ns.ClientURL()
	wcfg.Tokens = "read:reader,admin:operator"
	ws, err := wsproxy.New(wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Stop order: the proxy, then the gateway, then NATS.
	runUntilCleanup(t, gw.Run, ws.Run)
	c := &wsCore{gw: gw, ws: ws, base: "ws://" + ws.Addr().String()}
	wsEventually(t, "ws-proxy ready", func() bool {
		resp, err := http.Get("http://" + ws.Addr().String() + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

func (c *wsCore) dial(t *testing.T, path, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, c.base+path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

// tcpNode is a Protocol v2 node over TCP.
type tcpNode struct {
	id   uint64
	conn net.Conn
	mu   sync.Mutex
	got  chan proto.Envelope
	done chan struct{}
}

func dialNode(t *testing.T, addr string, id uint64, name string) *tcpNode {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &tcpNode{id: id, conn: conn, got: make(chan proto.Envelope, 64), done: make(chan struct{})}
	t.Cleanup(func() { conn.Close(); <-n.done })
	go func() {
		defer close(n.done)
		r := proto.NewReader(conn, 0)
		for {
			b, err := r.Next()
			if err != nil {
				return
			}
			env, err := proto.Decode(b)
			if err == nil {
				n.got <- env
			}
		}
	}()
	n.send(t, &proto.NodeRegistration{NodeID: id, NodeName: name, Address: "10.0.0.9", Port: 9000, NodeType: proto.NodeTypeFull})
	env := n.next(t)
	if ack, ok := env.Message.(*proto.RegistrationAck); !ok || !ack.Accepted {
		t.Fatalf("registration: %+v", env.Message)
	}
	return n
}

func (n *tcpNode) send(t *testing.T, m proto.Message) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := proto.Encode(n.conn, m); err != nil {
		t.Fatal(err)
	}
}

func (n *tcpNode) next(t *testing.T) proto.Envelope {
	t.Helper()
	select {
	case env := <-n.got:
		return env
	case <-time.After(10 * time.Second):
		t.Fatal("node: nothing received")
	}
	panic("unreachable")
}

func (n *tcpNode) event(t *testing.T, i int) {
	n.send(t, &proto.PotEvent{NodeID: n.id, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed",
		Timestamp: time.Now().UTC(), Data: json.RawMessage(fmt.Sprintf(`{"src_ip":"198.51.100.7","n":%d}`, i)), Form: proto.PotEventDocumented})
}

type wsFrame struct {
	Type string          `json:"type"`
	Seq  uint64          `json:"seq"`
	Data json.RawMessage `json:"data"`
}

func readFrame(t *testing.T, conn *websocket.Conn) wsFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f wsFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

func backend(t *testing.T, conn *websocket.Conn, msg string) *proto.BackendResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	env, err := proto.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return env.Message.(*proto.BackendResponse)
}

// TestWSEndToEnd: a node over TCP, the real gateway and the proxy: the
// stream shows the node's lifecycle, pot status and attack events; the
// backend protocol lists and commands the node; RemoveNode disconnects
// and forgets it.
func TestWSEndToEnd(t *testing.T) {
	core := startWSCore(t)
	stream := core.dial(t, "/stream?node_id=4242", "reader")
	if f := readFrame(t, stream); f.Type != "ack" {
		t.Fatalf("first frame %s", f.Type)
	}
	node := dialNode(t, core.gw.Addr().String(), 4242, "it-node")
	node.send(t, &proto.NodeStatusUpdate{NodeID: 4242, Status: proto.NodeRunning})
	node.send(t, &proto.PotStatusUpdate{NodeID: 4242, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotRunning})
	for i := 0; i < 5; i++ {
		node.event(t, i)
	}

	// The stream: registered and status (node), Running (pot), five events
	// in order; node and events travel separate paths, so sort by kind.
	var kinds []string
	var events []bus.AttackEvent
	var lastSeq uint64
	for len(events) < 5 || len(kinds) < 3 {
		f := readFrame(t, stream)
		switch f.Type {
		case "event":
			var ev bus.AttackEvent
			if err := json.Unmarshal(f.Data, &ev); err != nil || f.Seq <= lastSeq {
				t.Fatalf("event %s seq %d after %d: %v", f.Data, f.Seq, lastSeq, err)
			}
			lastSeq = f.Seq
			events = append(events, ev)
		case "node":
			var l bus.NodeLifecycle
			_ = json.Unmarshal(f.Data, &l)
			kinds = append(kinds, "node:"+l.Kind)
		case "pot":
			var r bus.PotRecord
			_ = json.Unmarshal(f.Data, &r)
			kinds = append(kinds, "pot:"+string(r.Status))
		}
	}
	for i, ev := range events {
		if ev.NodeID != 4242 || ev.NodeIDStr != "4242" || ev.PotID != "cowrie-01" || ev.EventType != "cowrie.login.failed" ||
			!strings.Contains(string(ev.Data), fmt.Sprintf(`"n":%d`, i)) {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "node:registered") || !strings.Contains(got, "pot:Running") {
		t.Errorf("state frames %s", got)
	}

	// The backend protocol against the real gateway.
	be := core.dial(t, "/ws", "operator")
	if r := backend(t, be, `{"version":2,"message":{"BackendRegistration":{"backend_name":"it","backend_type":"Cli"}}}`); !r.Success {
		t.Fatalf("registration: %+v", r)
	}
	if r := backend(t, be, `{"version":2,"message":{"BackendCommand":"GetNodes"}}`); !r.Success || !strings.Contains(string(r.Data), `"nodes":[4242]`) {
		t.Fatalf("GetNodes: %+v %s", r, r.Data)
	}
	if r := backend(t, be, `{"version":2,"message":{"BackendCommand":"GetActiveConnections"}}`); string(r.Data) != `{"count":1}` {
		t.Fatalf("GetActiveConnections: %s", r.Data)
	}
	r := backend(t, be, `{"version":2,"message":{"BackendCommand":{"GetNode":{"node_id":4242}}}}`)
	var rec bus.NodeRecord
	if json.Unmarshal(r.Data, &rec) != nil || !rec.Connected || rec.NodeName != "it-node" || rec.Status != proto.NodeRunning || rec.GatewayID != "gw-ws" {
		t.Fatalf("GetNode: %s", r.Data)
	}
	// NodeCommand: the node receives exactly the encoder's NodeCommand.
	if r := backend(t, be, `{"version":2,"message":{"BackendCommand":{"NodeCommand":{"node_id":4242,"command":{"StopPot":"cowrie-01"}}}}}`); !r.Success {
		t.Fatalf("NodeCommand: %+v", r)
	}
	env := node.next(t)
	if nc, ok := env.Message.(*proto.NodeCommand); !ok || nc.NodeID != 4242 || nc.Command.Kind != proto.CmdStopPot || nc.Command.PotID != "cowrie-01" {
		t.Fatalf("node got %+v", env.Message)
	}
	if r := backend(t, be, `{"version":2,"message":{"BackendCommand":{"BroadcastCommand":{"command":"GetInstalledPots"}}}}`); !r.Success ||
		!strings.Contains(string(r.Data), `"delivered":1`) {
		t.Fatalf("BroadcastCommand: %+v %s", r, r.Data)
	}
	env = node.next(t)
	if nc, ok := env.Message.(*proto.NodeCommand); !ok || nc.Command.Kind != proto.CmdGetInstalledPots {
		t.Fatalf("node got %+v", env.Message)
	}
	// RemoveNode: the node is disconnected and forgotten.
	if r := backend(t, be, `{"version":2,"message":{"BackendCommand":{"RemoveNode":{"node_id":4242}}}}`); !r.Success {
		t.Fatalf("RemoveNode: %+v", r)
	}
	select {
	case <-node.done:
	case <-time.After(10 * time.Second):
		t.Fatal("node still connected after RemoveNode")
	}
	if r := backend(t, be, `{"version":2,"message":{"BackendCommand":"GetNodeCount"}}`); string(r.Data) != `{"count":0}` {
		t.Fatalf("GetNodeCount after removal: %s", r.Data)
	}
	var after []string
	for !strings.Contains(strings.Join(after, ","), "removed") {
		f := readFrame(t, stream)
		var l bus.NodeLifecycle
		_ = json.Unmarshal(f.Data, &l)
		after = append(after, f.Type+":"+l.Kind)
	}
	if got := strings.Join(after, ","); !strings.Contains(got, "node:disconnected") {
		t.Errorf("after removal the stream showed %s", got)
	}
}

// TestWSResumeEndToEnd: events from a node over TCP, a stream client that
// disconnects and resumes with since= while the node keeps sending:
// nothing missing, nothing twice.
func TestWSResumeEndToEnd(t *testing.T) {
	core := startWSCore(t)
	node := dialNode(t, core.gw.Addr().String(), 77, "resume-node")
	const total = 20000
	var sentMu sync.Mutex
	sent := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	first := core.dial(t, "/stream?types=event", "reader")
	readFrame(t, first) // ack: subscribed before the first event
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			select {
			case <-stop:
				return
			default:
			}
			node.event(t, i)
			sentMu.Lock()
			sent++
			sentMu.Unlock()
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond) // pace: keep events flowing across the reconnects
			}
		}
	}()
	defer func() { close(stop); <-done }()

	var ns []int
	var last uint64
	conn := first
	for session := 0; session < 4; session++ {
		if session > 0 {
			conn = core.dial(t, fmt.Sprintf("/stream?types=event&since=%d", last), "reader")
			readFrame(t, conn)
		}
		for k := 0; k < 200; k++ {
			f := readFrame(t, conn)
			var ev struct {
				Data struct{ N int } `json:"data"`
			}
			if err := json.Unmarshal(f.Data, &ev); err != nil {
				t.Fatal(err)
			}
			ns = append(ns, ev.Data.N)
			last = f.Seq
		}
		_ = conn.Close(websocket.StatusNormalClosure, "")
		sentMu.Lock()
		at := sent
		t.Logf("session %d done at %v, %d sent", session, time.Now().Format("05.000"), sent)
		sentMu.Unlock()
		wsEventually(t, "events sent while away", func() bool {
			sentMu.Lock()
			defer sentMu.Unlock()
			return sent >= at+50 || sent == total
		})
	}
	for i, n := range ns {
		if n != i {
			t.Fatalf("event %d carries n=%d: something missing or twice (%v...)", i, n, ns[max(0, i-3):min(len(ns), i+3)])
		}
	}
	sentMu.Lock()
	defer sentMu.Unlock()
	if sent == total {
		t.Error("the node finished before the last resume")
	}
}
