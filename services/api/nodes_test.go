package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
	"github.com/honeybee/core/services/api/internal/testbus"
	"github.com/nats-io/nats.go"
)

type nodeJSON struct {
	NodeID           uint64     `json:"node_id"`
	NodeIDStr        string     `json:"node_id_str"`
	NodeName         string     `json:"node_name"`
	NodeType         string     `json:"node_type"`
	Status           string     `json:"status"`
	Connected        bool       `json:"connected"`
	RemoteAddr       string     `json:"remote_addr"`
	ConnectedSince   *time.Time `json:"connected_since"`
	LastSeen         *time.Time `json:"last_seen"`
	DisconnectReason *string    `json:"disconnect_reason"`
	Honeypots        []potJSON  `json:"honeypots"`
}

type potJSON struct {
	NodeID    uint64     `json:"node_id"`
	NodeIDStr string     `json:"node_id_str"`
	PotID     string     `json:"pot_id"`
	PotType   string     `json:"pot_type"`
	Status    string     `json:"status"`
	Message   string     `json:"message"`
	UpdatedAt *time.Time `json:"updated_at"`
}

type nodesPage struct {
	Nodes      []nodeJSON `json:"nodes"`
	NextCursor *string    `json:"next_cursor"`
}

const maxID = uint64(18446744073709551615)

func node(id uint64, name string, status proto.NodeStatus, connected bool, gw string) bus.NodeRecord {
	now := time.Now().UTC()
	r := bus.NodeRecord{NodeID: id, NodeIDStr: proto.FormatNodeID(id), NodeName: name, NodeType: proto.NodeTypeFull,
		Status: status, Connected: connected, GatewayID: gw, Address: "10.0.0.1", Port: 2222,
		RemoteAddr: "192.0.2.1:5555", ConnectedSince: now, LastSeen: now}
	if !connected {
		r.DisconnectedAt, r.DisconnectReason = now, bus.ReasonDrop
	}
	return r
}

// fleet stores five nodes: two live, one connected through a dead
// gateway, two disconnected (one an Agent).
func fleet(t *testing.T, e *env) {
	e.bus.PutGateway(t, "gw-live")
	e.bus.PutNode(t, node(1, "alpha", proto.NodeRunning, true, "gw-live"))
	e.bus.PutNode(t, node(maxID, "max", proto.NodeRunning, true, "gw-live"))
	e.bus.PutNode(t, node(5, "orphan", proto.NodeRunning, true, "gw-dead"))
	e.bus.PutNode(t, node(3, "gone", proto.NodeStopped, false, ""))
	agent := node(4, "agent", proto.NodeFailed, false, "")
	agent.NodeType = proto.NodeTypeAgent
	e.bus.PutNode(t, agent)
	e.bus.PutPot(t, bus.PotRecord{NodeID: 1, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotRunning, UpdatedAt: time.Now()})
	e.bus.PutPot(t, bus.PotRecord{NodeID: 1, PotID: "a.b", PotType: "honnypotter", Status: proto.PotInstalling, Message: "cloning"})
	e.bus.PutPot(t, bus.PotRecord{NodeID: 3, PotID: "*", PotType: "cowrie", Status: proto.PotStopped})
	e.bus.PutPot(t, bus.PotRecord{NodeID: maxID, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotFailed})
	testbus.Eventually(t, func() bool {
		var p nodesPage
		e.get("/api/v1/nodes").decode(t, &p)
		var hp struct{ Honeypots []potJSON }
		e.get("/api/v1/honeypots").decode(t, &hp)
		return len(p.Nodes) == 5 && len(hp.Honeypots) == 4
	})
}

func ids(nodes []nodeJSON) []uint64 {
	var out []uint64
	for _, n := range nodes {
		out = append(out, n.NodeID)
	}
	return out
}

func TestListNodes(t *testing.T) {
	e := start(t)
	fleet(t, e)
	tests := []struct {
		give string
		want []uint64
	}{
		{give: "", want: []uint64{1, 3, 4, 5, maxID}},
		{give: "?connected=true", want: []uint64{1, maxID}},
		{give: "?connected=false", want: []uint64{3, 4, 5}},
		{give: "?status=Running", want: []uint64{1, 5, maxID}},
		{give: "?status=Running&connected=false", want: []uint64{5}},
		{give: "?node_type=Agent", want: []uint64{4}},
		{give: "?status=Deploying", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var p nodesPage
			e.get("/api/v1/nodes"+tt.give).wantStatus(t, http.StatusOK).decode(t, &p)
			if got := ids(p.Nodes); !slices.Equal(got, tt.want) {
				t.Errorf("nodes %v, want %v", got, tt.want)
			}
			if p.Nodes == nil {
				t.Error("nodes is null, want []")
			}
			if p.NextCursor != nil {
				t.Error("next_cursor on the only page")
			}
		})
	}

	var p nodesPage
	e.get("/api/v1/nodes").decode(t, &p)
	byID := map[uint64]nodeJSON{}
	for _, n := range p.Nodes {
		byID[n.NodeID] = n
	}
	if n := byID[maxID]; n.NodeIDStr != "18446744073709551615" || !n.Connected || n.DisconnectReason != nil || n.ConnectedSince == nil {
		t.Errorf("max node = %+v", n)
	}
	if n := byID[5]; n.Connected || n.DisconnectReason == nil || *n.DisconnectReason != bus.ReasonGatewayLost {
		t.Errorf("node of a dead gateway = %+v, want disconnected with reason gateway_lost", n)
	}
	if n := byID[3]; n.Connected || n.DisconnectReason == nil || *n.DisconnectReason != bus.ReasonDrop || n.Status != "Stopped" {
		t.Errorf("disconnected node = %+v", n)
	}
	// The exact id survives JSON for JavaScript too: check the raw text.
	var raw struct{ Nodes []map[string]json.RawMessage }
	e.get("/api/v1/nodes").decode(t, &raw)
	if got := string(raw.Nodes[4]["node_id"]); got != "18446744073709551615" {
		t.Errorf("raw node_id = %s", got)
	}
}

func TestListNodesPagination(t *testing.T) {
	e := start(t)
	fleet(t, e)
	for _, limit := range []int{1, 2, 4, 5} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var got []uint64
			path := fmt.Sprintf("/api/v1/nodes?limit=%d", limit)
			for range 10 {
				var p nodesPage
				e.get(path).wantStatus(t, http.StatusOK).decode(t, &p)
				if len(p.Nodes) > limit {
					t.Fatalf("page of %d, limit %d", len(p.Nodes), limit)
				}
				got = append(got, ids(p.Nodes)...)
				if p.NextCursor == nil {
					break
				}
				path = fmt.Sprintf("/api/v1/nodes?limit=%d&cursor=%s", limit, url.QueryEscape(*p.NextCursor))
			}
			if want := []uint64{1, 3, 4, 5, maxID}; !slices.Equal(got, want) {
				t.Errorf("paged %v, want %v", got, want)
			}
		})
	}
	// Filters apply across pages.
	var p nodesPage
	e.get("/api/v1/nodes?connected=false&limit=2").decode(t, &p)
	if !slices.Equal(ids(p.Nodes), []uint64{3, 4}) || p.NextCursor == nil {
		t.Fatalf("first filtered page %v", ids(p.Nodes))
	}
	e.get("/api/v1/nodes?connected=false&limit=2&cursor="+*p.NextCursor).decode(t, &p)
	if !slices.Equal(ids(p.Nodes), []uint64{5}) || p.NextCursor != nil {
		t.Errorf("second filtered page %v", ids(p.Nodes))
	}
}

func TestGetNode(t *testing.T) {
	e := start(t)
	fleet(t, e)
	var n nodeJSON
	e.get("/api/v1/nodes/1").wantStatus(t, http.StatusOK).decode(t, &n)
	if n.NodeName != "alpha" || !n.Connected || n.RemoteAddr != "192.0.2.1:5555" || n.LastSeen == nil {
		t.Errorf("node = %+v", n)
	}
	if len(n.Honeypots) != 2 || n.Honeypots[0].PotID != "a.b" || n.Honeypots[1].PotID != "cowrie-01" {
		t.Fatalf("honeypots = %+v", n.Honeypots)
	}
	if h := n.Honeypots[0]; h.Status != "Installing" || h.Message != "cloning" || h.PotType != "honnypotter" {
		t.Errorf("pot = %+v", h)
	}
	e.get("/api/v1/nodes/18446744073709551615").wantStatus(t, http.StatusOK).decode(t, &n)
	if n.NodeID != maxID || len(n.Honeypots) != 1 {
		t.Errorf("max node = %+v", n)
	}
	// A node without pots has an empty list, not null.
	var raw map[string]json.RawMessage
	e.get("/api/v1/nodes/4").decode(t, &raw)
	if string(raw["honeypots"]) != "[]" {
		t.Errorf("honeypots = %s, want []", raw["honeypots"])
	}
	e.get("/api/v1/nodes/2").wantError(t, http.StatusNotFound, "NODE_NOT_FOUND")
	for _, bad := range []string{"abc", "-1", "18446744073709551616", "1.5", "0x10", "%20"} {
		e.get("/api/v1/nodes/"+bad).wantError(t, http.StatusBadRequest, "INVALID_NODE_ID")
	}
}

func TestGatewayDeathDisconnects(t *testing.T) {
	e := start(t)
	fleet(t, e)
	// The gateway key goes away (expiry or clean stop): its nodes are no
	// longer shown connected, although their records still say so.
	if err := e.bus.Gateways.Delete(t.Context(), "gw-live"); err != nil {
		t.Fatal(err)
	}
	testbus.Eventually(t, func() bool {
		var p nodesPage
		e.get("/api/v1/nodes?connected=true").decode(t, &p)
		return len(p.Nodes) == 0
	})
	var n nodeJSON
	e.get("/api/v1/nodes/1").decode(t, &n)
	if n.Connected || n.DisconnectReason == nil || *n.DisconnectReason != bus.ReasonGatewayLost {
		t.Errorf("node = %+v", n)
	}
}

func TestListHoneypots(t *testing.T) {
	e := start(t)
	fleet(t, e)
	type key struct {
		node uint64
		pot  string
	}
	keys := func(ps []potJSON) []key {
		var out []key
		for _, p := range ps {
			out = append(out, key{p.NodeID, p.PotID})
		}
		return out
	}
	tests := []struct {
		give string
		want []key
	}{
		{"", []key{{1, "a.b"}, {1, "cowrie-01"}, {3, "*"}, {maxID, "cowrie-01"}}},
		{"?node_id=1", []key{{1, "a.b"}, {1, "cowrie-01"}}},
		{"?node_id=18446744073709551615", []key{{maxID, "cowrie-01"}}},
		{"?node_id=2", nil},
		{"?pot_type=cowrie", []key{{1, "cowrie-01"}, {3, "*"}, {maxID, "cowrie-01"}}},
		{"?status=Failed", []key{{maxID, "cowrie-01"}}},
		{"?pot_type=cowrie&status=Stopped", []key{{3, "*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var p struct {
				Honeypots  []potJSON `json:"honeypots"`
				NextCursor *string   `json:"next_cursor"`
			}
			e.get("/api/v1/honeypots"+tt.give).wantStatus(t, http.StatusOK).decode(t, &p)
			if got := keys(p.Honeypots); !slices.Equal(got, tt.want) {
				t.Errorf("pots %v, want %v", got, tt.want)
			}
		})
	}
	// Pagination, one pot per page.
	var got []key
	path := "/api/v1/honeypots?limit=1"
	for range 10 {
		var p struct {
			Honeypots  []potJSON `json:"honeypots"`
			NextCursor *string   `json:"next_cursor"`
		}
		e.get(path).wantStatus(t, http.StatusOK).decode(t, &p)
		got = append(got, keys(p.Honeypots)...)
		if p.NextCursor == nil {
			break
		}
		path = "/api/v1/honeypots?limit=1&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if want := tests[0].want; !slices.Equal(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
}

func TestDeleteNode(t *testing.T) {
	e := start(t)
	fleet(t, e)

	// Node 1 is connected: the api asks its gateway to disconnect it; the
	// fake gateway does what the real one does (closes, records it
	// disconnected) and replies.
	var got bus.CommandRequest
	sub, err := e.nc.Subscribe(e.c.Command(1), func(m *nats.Msg) {
		_ = json.Unmarshal(m.Data, &got)
		rec := node(1, "alpha", proto.NodeRunning, false, "")
		rec.DisconnectReason = bus.ReasonRemoved
		data, _ := json.Marshal(rec)
		_, _ = e.bus.Nodes.Put(t.Context(), bus.NodeKey(1), data)
		reply, _ := json.Marshal(bus.CommandReply{CommandID: got.CommandID, NodeID: 1, NodeIDStr: "1", Delivered: true})
		_ = m.Respond(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	removed, err := e.nc.SubscribeSync(e.c.Node(1, bus.LifecycleRemoved))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Removed      bool `json:"removed"`
		Disconnected bool `json:"disconnected"`
		PotsRemoved  int  `json:"pots_removed"`
	}
	e.admin("DELETE", "/api/v1/nodes/1", "").wantStatus(t, http.StatusOK).decode(t, &res)
	if !res.Removed || !res.Disconnected || res.PotsRemoved != 2 {
		t.Errorf("delete = %+v", res)
	}
	if !got.Disconnect || got.CommandID == "" || len(got.Command) != 0 {
		t.Errorf("gateway got %+v, want a Disconnect request", got)
	}
	msg, err := removed.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal("no removed lifecycle message")
	}
	var lc bus.NodeLifecycle
	if err := json.Unmarshal(msg.Data, &lc); err != nil || lc.Kind != bus.LifecycleRemoved || lc.NodeID != 1 || lc.NodeName != "alpha" {
		t.Errorf("lifecycle = %+v, %v", lc, err)
	}
	if _, err := e.bus.Nodes.Get(t.Context(), bus.NodeKey(1)); err == nil {
		t.Error("node key still there")
	}
	// Read your own write: the answer came after the view applied the
	// removal, so no polling here.
	e.get("/api/v1/nodes/1").wantStatus(t, http.StatusNotFound)
	var hp struct{ Honeypots []potJSON }
	e.get("/api/v1/honeypots?node_id=1").decode(t, &hp)
	if len(hp.Honeypots) != 0 {
		t.Errorf("pots left: %+v", hp.Honeypots)
	}

	// Node 3 is disconnected: no request, just forgotten.
	e.admin("DELETE", "/api/v1/nodes/3", "").wantStatus(t, http.StatusOK).decode(t, &res)
	if !res.Removed || res.Disconnected || res.PotsRemoved != 1 {
		t.Errorf("delete disconnected = %+v", res)
	}
	// Node 5 is recorded connected but nobody holds it: no responders is fine.
	e.admin("DELETE", "/api/v1/nodes/5", "").wantStatus(t, http.StatusOK).decode(t, &res)
	if res.Disconnected {
		t.Errorf("delete orphan = %+v", res)
	}
	e.admin("DELETE", "/api/v1/nodes/3", "").wantError(t, http.StatusNotFound, "NODE_NOT_FOUND")
	e.admin("DELETE", "/api/v1/nodes/x", "").wantError(t, http.StatusBadRequest, "INVALID_NODE_ID")
}

func TestDeleteNodeGatewayTimeout(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.CommandTimeout = 200 * time.Millisecond }))
	fleet(t, e)
	sub, err := e.nc.SubscribeSync(e.c.Command(1)) // holds the node, never answers
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.admin("DELETE", "/api/v1/nodes/1", "").wantError(t, http.StatusGatewayTimeout, "COMMAND_TIMEOUT")
	if _, err := e.bus.Nodes.Get(t.Context(), bus.NodeKey(1)); err != nil {
		t.Error("node forgotten although the disconnect timed out")
	}
}
