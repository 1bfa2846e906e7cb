package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
	"github.com/nats-io/nats.go"
)

// fakeGateway answers command requests for one node like the gateway.
type fakeGateway struct {
	mu   sync.Mutex
	reqs []bus.CommandRequest
}

func (g *fakeGateway) requests() []bus.CommandRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bus.CommandRequest(nil), g.reqs...)
}

func holdNode(t *testing.T, e *env, id uint64, answer func(m *nats.Msg, req bus.CommandRequest)) *fakeGateway {
	t.Helper()
	g := &fakeGateway{}
	sub, err := e.nc.Subscribe(e.c.Command(id), func(m *nats.Msg) {
		var req bus.CommandRequest
		_ = json.Unmarshal(m.Data, &req)
		g.mu.Lock()
		g.reqs = append(g.reqs, req)
		g.mu.Unlock()
		answer(m, req)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return g
}

func delivered(id uint64) func(*nats.Msg, bus.CommandRequest) {
	return func(m *nats.Msg, req bus.CommandRequest) {
		data, _ := json.Marshal(bus.CommandReply{CommandID: req.CommandID, NodeID: id, NodeIDStr: proto.FormatNodeID(id), Delivered: true})
		_ = m.Respond(data)
	}
}

func serviceErr(code, reason string) func(*nats.Msg, bus.CommandRequest) {
	return func(m *nats.Msg, _ bus.CommandRequest) {
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set("Nats-Service-Error-Code", code)
		reply.Header.Set("Nats-Service-Error", reason)
		reply.Data = []byte(`{"error":"` + reason + `"}`)
		_ = m.RespondMsg(reply)
	}
}

type accepted struct {
	CommandID string `json:"command_id"`
	NodeID    uint64 `json:"node_id"`
	NodeIDStr string `json:"node_id_str"`
	Kind      string `json:"kind"`
	PotID     string `json:"pot_id"`
	Delivered bool   `json:"delivered"`
}

func TestSendCommand(t *testing.T) {
	e := start(t)
	g := holdNode(t, e, maxID, delivered(maxID))
	tests := []struct {
		name     string
		give     string
		wantWire string // what the gateway is asked to send: proto.Marshal's command form
		wantKind string
		wantPot  string
	}{
		{"stop", `{"StopPot":"cowrie-01"}`, `{"StopPot":"cowrie-01"}`, "StopPot", "cowrie-01"},
		{"restart object", `{"Restart":{}}`, `{"Restart":{}}`, "Restart", ""},
		{"restart bare string", `"Restart"`, `{"Restart":{}}`, "Restart", ""},
		{"restart null", `{"Restart":null}`, `{"Restart":{}}`, "Restart", ""},
		{"install", `{"InstallPot":{"pot_id":"c1","honeypot_type":"cowrie","config":{"ssh_port":"2222"},"auto_start":true}}`,
			`{"InstallPot":{"pot_id":"c1","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{"ssh_port":"2222"},"auto_start":true}}`, "InstallPot", "c1"},
		{"hostile pot id", `{"DeployPot":"a.b *>"}`, `{"DeployPot":"a.b *\u003e"}`, "DeployPot", "a.b *>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(g.requests())
			var a accepted
			e.admin("POST", "/api/v1/nodes/18446744073709551615/commands", tt.give).wantStatus(t, http.StatusAccepted).decode(t, &a)
			if a.CommandID == "" || !a.Delivered || a.NodeID != maxID || a.NodeIDStr != "18446744073709551615" || a.Kind != tt.wantKind || a.PotID != tt.wantPot {
				t.Errorf("answer = %+v", a)
			}
			reqs := g.requests()
			if len(reqs) != before+1 {
				t.Fatalf("gateway got %d requests, want %d", len(reqs), before+1)
			}
			req := reqs[len(reqs)-1]
			if req.CommandID != a.CommandID || req.Disconnect {
				t.Errorf("request = %+v", req)
			}
			// The gateway gets the command in the encoder's form (JSON
			// escaping aside): parse it and write it again to compare.
			cmd, err := proto.ParseCommand(req.Command)
			if err != nil {
				t.Fatalf("command sent %s: %v", req.Command, err)
			}
			if wire, _ := cmd.MarshalJSON(); string(wire) != tt.wantWire {
				t.Errorf("command sent %s, want %s", wire, tt.wantWire)
			}
		})
	}
}

func TestSendCommandErrors(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.CommandTimeout = time.Second }))
	holdNode(t, e, 2, serviceErr(bus.CodeInvalidCommand, "pot id too long"))
	holdNode(t, e, 3, serviceErr(bus.CodeNotConnected, "node 3 is not connected to this gateway"))
	holdNode(t, e, 4, serviceErr(bus.CodeDraining, "gateway is draining"))
	holdNode(t, e, 5, serviceErr("500", "boom"))
	holdNode(t, e, 6, func(*nats.Msg, bus.CommandRequest) {}) // never answers
	holdNode(t, e, 7, func(m *nats.Msg, _ bus.CommandRequest) { _ = m.Respond([]byte("not json")) })
	tests := []struct {
		name     string
		path     string
		body     string
		status   int
		code     string
		wantText string
	}{
		{"unknown variant", "/api/v1/nodes/1/commands", `{"Explode":{}}`, 400, "INVALID_COMMAND", "Explode"},
		{"empty pot id", "/api/v1/nodes/1/commands", `{"StopPot":""}`, 400, "INVALID_COMMAND", "pot id"},
		{"missing honeypot_type", "/api/v1/nodes/1/commands", `{"InstallPot":{"pot_id":"x"}}`, 400, "INVALID_COMMAND", "honeypot_type"},
		{"pot id not a string", "/api/v1/nodes/1/commands", `{"StopPot":5}`, 400, "INVALID_COMMAND", "StopPot"},
		{"two variants", "/api/v1/nodes/1/commands", `{"StopPot":"a","Restart":{}}`, 400, "INVALID_COMMAND", "exactly one"},
		{"malformed json", "/api/v1/nodes/1/commands", `{"StopPot":`, 400, "INVALID_JSON", "JSON"},
		{"empty body", "/api/v1/nodes/1/commands", ``, 400, "INVALID_JSON", "JSON"},
		{"bad node id", "/api/v1/nodes/abc/commands", `{"Restart":{}}`, 400, "INVALID_NODE_ID", "abc"},
		{"nobody holds the node", "/api/v1/nodes/1/commands", `{"Restart":{}}`, 404, "NODE_NOT_CONNECTED", "not connected"},
		{"gateway refuses", "/api/v1/nodes/2/commands", `{"Restart":{}}`, 400, "INVALID_COMMAND", "pot id too long"},
		{"gateway lost the node", "/api/v1/nodes/3/commands", `{"Restart":{}}`, 404, "NODE_NOT_CONNECTED", "not connected"},
		{"gateway draining", "/api/v1/nodes/4/commands", `{"Restart":{}}`, 503, "GATEWAY_UNAVAILABLE", "draining"},
		{"gateway fails", "/api/v1/nodes/5/commands", `{"Restart":{}}`, 502, "GATEWAY_ERROR", "boom"},
		{"gateway silent", "/api/v1/nodes/6/commands", `{"Restart":{}}`, 504, "COMMAND_TIMEOUT", "did not answer"},
		{"gateway garbles", "/api/v1/nodes/7/commands", `{"Restart":{}}`, 502, "GATEWAY_ERROR", "reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A 404 (not a 504) for a node nobody holds shows the api did not
			// wait for the timeout: no responders is answered at once.
			msg := e.admin("POST", tt.path, tt.body).wantError(t, tt.status, tt.code)
			if !strings.Contains(msg, tt.wantText) {
				t.Errorf("message %q does not mention %q", msg, tt.wantText)
			}
		})
	}
}

type commandJSON struct {
	CommandID string              `json:"command_id"`
	NodeID    uint64              `json:"node_id"`
	NodeIDStr string              `json:"node_id_str"`
	NodeName  string              `json:"node_name"`
	Kind      string              `json:"kind"`
	PotID     string              `json:"pot_id"`
	Command   json.RawMessage     `json:"command"`
	SentAt    *time.Time          `json:"sent_at"`
	Delivered bool                `json:"delivered"`
	State     string              `json:"state"`
	Progress  []bus.CommandUpdate `json:"progress"`
}

func TestGetCommand(t *testing.T) {
	e := start(t)
	now := time.Now().UTC().Truncate(time.Second)
	rec := bus.CommandRecord{CommandID: "c0ffee", NodeID: maxID, NodeIDStr: "18446744073709551615", NodeName: "max",
		Kind: "InstallPot", PotID: "c1", Command: json.RawMessage(`{"InstallPot":{"pot_id":"c1"}}`), SentAt: now,
		Delivered: true, State: bus.CommandInProgress, UpdatedAt: now,
		Progress: []bus.CommandUpdate{{At: now, Source: "pot_status", Status: "Installing", Message: "cloning"}}}
	data, _ := json.Marshal(rec)
	if _, err := e.bus.Commands.Put(t.Context(), "c0ffee", data); err != nil {
		t.Fatal(err)
	}
	var got commandJSON
	e.get("/api/v1/commands/c0ffee").wantStatus(t, http.StatusOK).decode(t, &got)
	if got.CommandID != "c0ffee" || got.NodeID != maxID || got.NodeIDStr != "18446744073709551615" || got.State != "in_progress" ||
		got.Kind != "InstallPot" || got.PotID != "c1" || !got.Delivered || got.SentAt == nil || !got.SentAt.Equal(now) ||
		len(got.Progress) != 1 || got.Progress[0].Status != "Installing" || got.Progress[0].Message != "cloning" {
		t.Errorf("command = %+v", got)
	}
	if string(got.Command) != `{"InstallPot":{"pot_id":"c1"}}` {
		t.Errorf("command body %s", got.Command)
	}
	e.get("/api/v1/commands/deadbeef").wantError(t, http.StatusNotFound, "COMMAND_NOT_FOUND")
	e.get("/api/v1/commands/a.b").wantError(t, http.StatusBadRequest, "INVALID_COMMAND_ID")
	e.get("/api/v1/commands/"+strings.Repeat("a", 300)).wantError(t, http.StatusBadRequest, "INVALID_COMMAND_ID")
}

type broadcastJSON struct {
	CommandID        string                `json:"command_id"`
	Kind             string                `json:"kind"`
	GatewaysExpected int                   `json:"gateways_expected"`
	GatewaysAnswered int                   `json:"gateways_answered"`
	Complete         bool                  `json:"complete"`
	Results          []bus.BroadcastResult `json:"results"`
	Errors           []struct{ Code, Message string }
}

func answerBroadcast(t *testing.T, e *env, gw string, nodes ...uint64) *[]bus.CommandRequest {
	t.Helper()
	var mu sync.Mutex
	var got []bus.CommandRequest
	sub, err := e.nc.Subscribe(e.c.Broadcast(), func(m *nats.Msg) {
		var req bus.CommandRequest
		_ = json.Unmarshal(m.Data, &req)
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		r := bus.BroadcastReply{GatewayID: gw}
		for _, n := range nodes {
			r.Results = append(r.Results, bus.BroadcastResult{NodeID: n, NodeIDStr: proto.FormatNodeID(n),
				CommandID: req.CommandID + "-" + proto.FormatNodeID(n), Delivered: true})
		}
		data, _ := json.Marshal(r)
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &got
}

func TestBroadcast(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.BroadcastTimeout = 1500 * time.Millisecond }))

	// No gateway at all: nothing to deliver to.
	var b broadcastJSON
	e.admin("POST", "/api/v1/commands/broadcast", `{"Restart":{}}`).wantStatus(t, http.StatusAccepted).decode(t, &b)
	if b.GatewaysExpected != 0 || len(b.Results) != 0 || !b.Complete || b.CommandID == "" {
		t.Errorf("broadcast without gateways = %+v", b)
	}

	e.bus.PutGateway(t, "gw-a")
	e.bus.PutGateway(t, "gw-b")
	reqA := answerBroadcast(t, e, "gw-a", 1, 2)
	answerBroadcast(t, e, "gw-b", maxID)
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.admin("POST", "/api/v1/commands/broadcast", `{"GetInstalledPots":{}}`).wantStatus(t, http.StatusAccepted).decode(t, &b)
	if b.GatewaysExpected != 2 || b.GatewaysAnswered != 2 || !b.Complete || len(b.Results) != 3 || b.Kind != "GetInstalledPots" {
		t.Fatalf("broadcast = %+v", b)
	}
	seen := map[uint64]bool{}
	for _, r := range b.Results {
		seen[r.NodeID] = r.Delivered && r.CommandID == b.CommandID+"-"+r.NodeIDStr
	}
	if !seen[1] || !seen[2] || !seen[maxID] {
		t.Errorf("results = %+v", b.Results)
	}
	if got := *reqA; len(got) != 1 || string(got[0].Command) != `{"GetInstalledPots":{}}` || got[0].CommandID != b.CommandID {
		t.Errorf("gateway got %+v", got)
	}

	// A third live gateway that never answers: partial, after the timeout.
	e.bus.PutGateway(t, "gw-c")
	e.admin("POST", "/api/v1/commands/broadcast", `{"Restart":{}}`).wantStatus(t, http.StatusAccepted).decode(t, &b)
	if b.GatewaysExpected != 3 || b.GatewaysAnswered != 2 || b.Complete || len(b.Results) != 3 {
		t.Errorf("partial broadcast = %+v", b)
	}

	e.admin("POST", "/api/v1/commands/broadcast", `{"Nope":{}}`).wantError(t, http.StatusBadRequest, "INVALID_COMMAND")
	e.admin("POST", "/api/v1/commands/broadcast", `[`).wantError(t, http.StatusBadRequest, "INVALID_JSON")
	e.get("/api/v1/commands/broadcast").wantError(t, http.StatusNotFound, "COMMAND_NOT_FOUND")
}

func TestBroadcastGatewayRefuses(t *testing.T) {
	e := start(t)
	e.bus.PutGateway(t, "gw-a")
	sub, err := e.nc.Subscribe(e.c.Broadcast(), func(m *nats.Msg) { serviceErr(bus.CodeDraining, "gateway is draining")(m, bus.CommandRequest{}) })
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var b broadcastJSON
	e.admin("POST", "/api/v1/commands/broadcast", `{"Restart":{}}`).wantStatus(t, http.StatusAccepted).decode(t, &b)
	if b.GatewaysAnswered != 0 || len(b.Errors) != 1 || b.Errors[0].Code != "GATEWAY_UNAVAILABLE" {
		t.Errorf("broadcast = %+v", b)
	}
}
