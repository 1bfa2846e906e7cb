package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
	gateway "github.com/honeybee/core/services/node-gateway"
)

const apiAdminToken = "api-e2e-admin-token"

// apiCore is an embedded NATS, the real gateway and the api.
type apiCore struct {
	gw   *gateway.Gateway
	base string // http://host:port of the api
}

func startAPICore(t *testing.T) *apiCore {
	t.Helper()
	ns, gw := startNATSAndGateway(t, "gw-api")
	acfg := api.DefaultConfig()
	acfg.Addr, acfg.NATSURL, acfg.Tokens = "127.0.0.1:0", ns.ClientURL(), "admin:"+apiAdminToken
	a, err := api.New(acfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Stop order: the api, then the gateway, then NATS.
	runUntilCleanup(t, gw.Run, a.Run)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	c := &apiCore{gw: gw, base: "http://" + a.Addr().String()}
	wsEventually(t, "api ready", func() bool {
		status, _ := c.call(t, "GET", "/ready", "")
		return status == http.StatusOK
	})
	return c
}

func (c *apiCore) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiAdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

func (c *apiCore) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	status, b := c.call(t, "GET", path, "")
	if status == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %s: %v", path, b, err)
		}
	}
	return status
}

// rawNode is a node over TCP that keeps every line the gateway writes as
// raw bytes, to compare them with what the encoder writes.
type rawNode struct {
	id    uint64
	conn  net.Conn
	lines chan []byte
	done  chan struct{}
}

func dialRawNode(t *testing.T, addr string, id uint64, name string) *rawNode {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &rawNode{id: id, conn: conn, lines: make(chan []byte, 64), done: make(chan struct{})}
	t.Cleanup(func() { conn.Close(); <-n.done })
	go func() {
		defer close(n.done)
		defer close(n.lines)
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				n.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	n.send(t, &proto.NodeRegistration{NodeID: id, NodeName: name, Address: "10.0.0.9", Port: 9000, NodeType: proto.NodeTypeFull})
	env, err := proto.Decode(bytes.TrimSpace(n.line(t)))
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := env.Message.(*proto.RegistrationAck); !ok || !ack.Accepted {
		t.Fatalf("registration: %+v", env.Message)
	}
	return n
}

func (n *rawNode) send(t *testing.T, m proto.Message) {
	t.Helper()
	if err := proto.Encode(n.conn, m); err != nil {
		t.Fatal(err)
	}
}

// line returns the next line the gateway wrote, with its newline.
func (n *rawNode) line(t *testing.T) []byte {
	t.Helper()
	select {
	case l, ok := <-n.lines:
		if !ok {
			t.Fatal("node: connection closed")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("node: nothing received")
	}
	panic("unreachable")
}

type apiCommand struct {
	CommandID string `json:"command_id"`
	NodeID    uint64 `json:"node_id"`
	Kind      string `json:"kind"`
	PotID     string `json:"pot_id"`
	Delivered bool   `json:"delivered"`
	State     string `json:"state"`
	Progress  []struct {
		Source, Status, Message string
	} `json:"progress"`
}

// TestAPICommandRoundTrip: a command posted to the api reaches the node
// through the real gateway as exactly the bytes proto.Marshal writes, and
// the node's progress reports show up in GET /api/v1/commands/{id}.
func TestAPICommandRoundTrip(t *testing.T) {
	c := startAPICore(t)
	const id = uint64(18446744073709551615)
	node := dialRawNode(t, c.gw.Addr().String(), id, "e2e-api-node")
	wsEventually(t, "node shown connected", func() bool {
		var n struct {
			Connected bool   `json:"connected"`
			NodeName  string `json:"node_name"`
		}
		return c.getJSON(t, "/api/v1/nodes/18446744073709551615", &n) == http.StatusOK && n.Connected && n.NodeName == "e2e-api-node"
	})

	body := `{"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","config":{"ssh_port":"2222"},"auto_start":true}}`
	status, b := c.call(t, "POST", "/api/v1/nodes/18446744073709551615/commands", body)
	if status != http.StatusAccepted {
		t.Fatalf("POST command: %d %s", status, b)
	}
	var accepted apiCommand
	if err := json.Unmarshal(b, &accepted); err != nil || accepted.CommandID == "" || !accepted.Delivered {
		t.Fatalf("accepted = %s (%v)", b, err)
	}

	// The node receives exactly the NodeCommand the encoder writes.
	cmd, err := proto.ParseCommand([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(&proto.NodeCommand{NodeID: id, Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if got := node.line(t); !bytes.Equal(got, append(want, '\n')) {
		t.Fatalf("node got  %q\nwant      %q", got, append(want, '\n'))
	}

	// Progress: nothing yet, then Installing, then Running.
	var rec apiCommand
	path := "/api/v1/commands/" + accepted.CommandID
	if status := c.getJSON(t, path, &rec); status != http.StatusOK {
		t.Fatalf("GET command: %d", status)
	}
	if rec.State != bus.CommandPending || !rec.Delivered || rec.Kind != "InstallPot" || rec.PotID != "cowrie-01" || rec.NodeID != id {
		t.Errorf("fresh command = %+v", rec)
	}
	msg := "cloning"
	node.send(t, &proto.PotStatusUpdate{NodeID: id, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotInstalling, Message: &msg})
	wsEventually(t, "command in progress", func() bool {
		return c.getJSON(t, path, &rec) == http.StatusOK && rec.State == bus.CommandInProgress
	})
	node.send(t, &proto.PotStatusUpdate{NodeID: id, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotRunning})
	wsEventually(t, "command succeeded", func() bool {
		return c.getJSON(t, path, &rec) == http.StatusOK && rec.State == bus.CommandSucceeded
	})
	if len(rec.Progress) != 2 || rec.Progress[0].Status != "Installing" || rec.Progress[0].Message != "cloning" || rec.Progress[1].Status != "Running" {
		t.Errorf("progress = %+v", rec.Progress)
	}

	// The pot and an attack event are visible through the api as well.
	var pots struct {
		Honeypots []struct{ PotID, Status string } `json:"honeypots"`
	}
	wsEventually(t, "pot listed", func() bool {
		return c.getJSON(t, "/api/v1/honeypots?node_id=18446744073709551615", &pots) == http.StatusOK &&
			len(pots.Honeypots) == 1 && pots.Honeypots[0].Status == "Running"
	})
	node.send(t, &proto.PotEvent{NodeID: id, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed",
		Timestamp: time.Now().UTC(), Data: json.RawMessage(`{"src_ip":"198.51.100.7"}`), Form: proto.PotEventDocumented})
	var evs struct {
		Events []struct {
			Seq       uint64 `json:"seq"`
			EventType string `json:"event_type"`
			SrcIP     string `json:"src_ip"`
		} `json:"events"`
	}
	wsEventually(t, "event queryable", func() bool {
		return c.getJSON(t, "/api/v1/events?node_id=18446744073709551615&src_ip=198.51.100.7", &evs) == http.StatusOK && len(evs.Events) == 1
	})
	if evs.Events[0].EventType != "cowrie.login.failed" || evs.Events[0].Seq == 0 {
		t.Errorf("event = %+v", evs.Events[0])
	}

	// A command for a node nobody holds fails at once: 404, not the 504 a
	// wait for the command timeout would give.
	status, b = c.call(t, "POST", "/api/v1/nodes/7/commands", `{"Restart":{}}`)
	if status != http.StatusNotFound || !strings.Contains(string(b), "NODE_NOT_CONNECTED") {
		t.Errorf("command to an unknown node: %d %s", status, b)
	}
}

// TestAPIDeleteConnectedNode: DELETE closes the node's session through the
// gateway and forgets the node for good.
func TestAPIDeleteConnectedNode(t *testing.T) {
	c := startAPICore(t)
	node := dialRawNode(t, c.gw.Addr().String(), 42, "doomed")
	node.send(t, &proto.PotStatusUpdate{NodeID: 42, PotID: "p1", PotType: "cowrie", Status: proto.PotRunning})
	wsEventually(t, "node and pot listed", func() bool {
		var n struct {
			Connected bool `json:"connected"`
			Honeypots []struct {
				PotID string `json:"pot_id"`
			} `json:"honeypots"`
		}
		return c.getJSON(t, "/api/v1/nodes/42", &n) == http.StatusOK && n.Connected && len(n.Honeypots) == 1
	})
	status, b := c.call(t, "DELETE", "/api/v1/nodes/42", "")
	if status != http.StatusOK || !strings.Contains(string(b), `"disconnected":true`) {
		t.Fatalf("DELETE: %d %s", status, b)
	}
	// The gateway closed the socket.
	select {
	case <-node.done:
	case <-time.After(10 * time.Second):
		t.Fatal("node connection still open")
	}
	// Gone, and it stays gone (the gateway's disconnect record does not
	// bring it back).
	wsEventually(t, "node forgotten", func() bool {
		status, _ := c.call(t, "GET", "/api/v1/nodes/42", "")
		return status == http.StatusNotFound
	})
	var list struct {
		Nodes []struct {
			NodeID uint64 `json:"node_id"`
		} `json:"nodes"`
	}
	for range 20 {
		if c.getJSON(t, "/api/v1/nodes", &list) != http.StatusOK || len(list.Nodes) != 0 {
			t.Fatalf("nodes after delete: %+v", list.Nodes)
		}
		time.Sleep(25 * time.Millisecond) // watch for a late record write, not synchronization
	}
}
