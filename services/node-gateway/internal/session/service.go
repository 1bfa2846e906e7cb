package session

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// ServiceVersion is the version the gateway's micro service reports.
const ServiceVersion = "1.0.0"

// NodesSubject is the subject of the gateway service's "nodes" endpoint.
// Every gateway answers (no queue group) with a NodesReply.
func NodesSubject(c bus.Contract) string { return c.Prefix() + ".gateway.nodes" }

// NodesReply lists the nodes one gateway holds.
type NodesReply struct {
	GatewayID string     `json:"gateway_id"`
	Nodes     []HeldNode `json:"nodes"`
}

// HeldNode is one entry of NodesReply.
type HeldNode struct {
	NodeID         uint64    `json:"node_id"`
	NodeIDStr      string    `json:"node_id_str"`
	NodeName       string    `json:"node_name"`
	RemoteAddr     string    `json:"remote_addr"`
	ConnectedSince time.Time `json:"connected_since"`
}

// AddService starts the gateway's NATS micro service, named
// c.GatewayService(), with a "broadcast" endpoint on c.Broadcast() and a
// "nodes" endpoint on NodesSubject. Every gateway answers both (the queue
// group is disabled), so a caller gathers one reply per gateway. Stop the
// returned service before closing nc.
func (h *Hub) AddService(nc *nats.Conn) (micro.Service, error) {
	c := h.d.Contract
	svc, err := micro.AddService(nc, micro.Config{
		Name:               c.GatewayService(),
		Version:            ServiceVersion,
		Description:        "HoneyBee node gateway: commands to the Protocol v2 nodes it holds",
		Metadata:           map[string]string{"gateway_id": h.cfg.GatewayID},
		QueueGroupDisabled: true,
	})
	if err != nil {
		return nil, err
	}
	if err := svc.AddEndpoint("broadcast", micro.HandlerFunc(h.handleBroadcast),
		micro.WithEndpointSubject(c.Broadcast()), micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return nil, err
	}
	if err := svc.AddEndpoint("nodes", micro.HandlerFunc(h.handleNodes),
		micro.WithEndpointSubject(NodesSubject(c)), micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return nil, err
	}
	return svc, nil
}

func (h *Hub) handleNodes(req micro.Request) {
	out := NodesReply{GatewayID: h.cfg.GatewayID, Nodes: []HeldNode{}}
	for _, s := range h.heldSessions() {
		rec := s.node.Record()
		out.Nodes = append(out.Nodes, HeldNode{NodeID: s.nodeID, NodeIDStr: proto.FormatNodeID(s.nodeID),
			NodeName: s.nodeName, RemoteAddr: s.remote, ConnectedSince: rec.ConnectedSince})
	}
	_ = req.RespondJSON(out)
}

// handleBroadcast writes the command to every node this gateway holds and
// answers with one result per node. Each node's command id is the
// request's command id + "-" + node id.
func (h *Hub) handleBroadcast(req micro.Request) {
	m := h.d.Metrics
	fail := func(e *serviceError) {
		m.CommandsTotal.WithLabelValues(e.outcome).Inc()
		_ = req.Error(e.code, e.reason, []byte(`{"error":`+quote(e.reason)+`}`))
	}
	var r bus.CommandRequest
	if err := json.Unmarshal(req.Data(), &r); err != nil {
		fail(invalid("request is not a CommandRequest: " + err.Error()))
		return
	}
	if r.Disconnect {
		fail(invalid("disconnect is not valid on a broadcast"))
		return
	}
	if h.Draining() {
		fail(&serviceError{code: bus.CodeDraining, reason: "gateway is draining", outcome: cmdDraining})
		return
	}
	base, serr := commandID(r.CommandID)
	if serr != nil {
		fail(serr)
		return
	}
	cmd, err := proto.ParseCommand(r.Command)
	if err != nil {
		fail(invalid(err.Error()))
		return
	}
	sessions := h.heldSessions()
	results := make([]bus.BroadcastResult, len(sessions))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, s := range sessions {
		id := base + "-" + proto.FormatNodeID(s.nodeID)
		results[i] = bus.BroadcastResult{NodeID: s.nodeID, NodeIDStr: proto.FormatNodeID(s.nodeID), CommandID: id, Error: "timeout waiting for the write"}
		wg.Add(1)
		s.deliver(id, cmd, false, func(err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[i].Error = err.Error()
				m.CommandsTotal.WithLabelValues(deliveryError(err).outcome).Inc()
				return
			}
			results[i].Delivered, results[i].Error = true, ""
			m.CommandsTotal.WithLabelValues(cmdDelivered).Inc()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(min(broadcastWait, h.cfg.WriteTimeout))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	mu.Lock()
	out := bus.BroadcastReply{GatewayID: h.cfg.GatewayID, Results: append([]bus.BroadcastResult{}, results...)}
	mu.Unlock()
	_ = req.RespondJSON(out)
}
