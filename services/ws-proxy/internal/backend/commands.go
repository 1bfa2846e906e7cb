package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a NATS micro service error.
const (
	hdrErrorCode = "Nats-Service-Error-Code"
	hdrError     = "Nats-Service-Error"
)

// errFailure is a failure whose text is the reason sent to the client.
type errFailure struct{ reason string }

func (e *errFailure) Error() string { return e.reason }

func failure(format string, args ...any) error {
	return &errFailure{reason: fmt.Sprintf(format, args...)}
}

// newCommandID returns a random UUID (version 4) for a command.
func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// serviceError returns the gateway's service error carried by msg, if any.
func serviceError(msg *nats.Msg, node uint64) error {
	code := msg.Header.Get(hdrErrorCode)
	if code == "" {
		return nil
	}
	reason := msg.Header.Get(hdrError)
	switch code {
	case bus.CodeInvalidCommand:
		return failure("invalid command: %s", reason)
	case bus.CodeNotConnected:
		return failure("node %d is not connected", node)
	case bus.CodeDraining:
		return failure("the gateway holding node %d is shutting down; retry", node)
	}
	return failure("gateway error %s: %s", code, reason)
}

// request sends req to one node's gateway and returns its reply.
func (h *Handler) request(ctx context.Context, node uint64, req bus.CommandRequest) (bus.CommandReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return bus.CommandReply{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.CommandTimeout)
	defer cancel()
	msg, err := h.NC.RequestWithContext(ctx, h.Bus.Command(node), body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return bus.CommandReply{}, failure("node %d is not connected", node)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return bus.CommandReply{}, failure("command timed out after %s", h.CommandTimeout)
	case err != nil:
		return bus.CommandReply{}, fmt.Errorf("command request: %w", err)
	}
	if err := serviceError(msg, node); err != nil {
		return bus.CommandReply{}, err
	}
	var reply bus.CommandReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return bus.CommandReply{}, fmt.Errorf("command reply: %w", err)
	}
	return reply, nil
}

// nodeCommand sends cmd to one node.
func (h *Handler) nodeCommand(ctx context.Context, node uint64, cmd proto.Command) (bus.CommandReply, error) {
	raw, err := json.Marshal(cmd)
	if err != nil {
		return bus.CommandReply{}, err
	}
	return h.request(ctx, node, bus.CommandRequest{CommandID: newCommandID(), Command: raw})
}

// broadcastResult is the data of a BroadcastCommand success.
type broadcastResult struct {
	CommandID string `json:"command_id"`
	// Gateways is the number of live gateways asked; Answered how many replied in time.
	Gateways  int                   `json:"gateways"`
	Answered  int                   `json:"answered"`
	Delivered int                   `json:"delivered"`
	Results   []bus.BroadcastResult `json:"results"`
	Errors    []string              `json:"errors,omitempty"`
}

// broadcast sends cmd to every gateway and gathers one reply per live
// gateway, or what came before the command timeout.
func (h *Handler) broadcast(ctx context.Context, cmd proto.Command) (broadcastResult, error) {
	res := broadcastResult{CommandID: newCommandID(), Results: []bus.BroadcastResult{}}
	gws, err := h.State.gateways(ctx)
	if err != nil {
		return res, err
	}
	res.Gateways = len(gws)
	if res.Gateways == 0 {
		return res, nil
	}
	raw, err := json.Marshal(cmd)
	if err != nil {
		return res, err
	}
	body, err := json.Marshal(bus.CommandRequest{CommandID: res.CommandID, Command: raw})
	if err != nil {
		return res, err
	}
	inbox := h.NC.NewInbox()
	sub, err := h.NC.SubscribeSync(inbox)
	if err != nil {
		return res, fmt.Errorf("broadcast inbox: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := h.NC.PublishRequest(h.Bus.Broadcast(), inbox, body); err != nil {
		return res, fmt.Errorf("broadcast: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.CommandTimeout)
	defer cancel()
	for res.Answered < res.Gateways {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break // timeout: report what answered
		}
		if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
			continue // no responders status
		}
		res.Answered++
		if code := msg.Header.Get(hdrErrorCode); code != "" {
			res.Errors = append(res.Errors, code+": "+msg.Header.Get(hdrError))
			continue
		}
		var r bus.BroadcastReply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			res.Errors = append(res.Errors, "bad reply: "+err.Error())
			continue
		}
		for _, x := range r.Results {
			if x.Delivered {
				res.Delivered++
			}
		}
		res.Results = append(res.Results, r.Results...)
	}
	return res, nil
}

// removeNode disconnects a node if a gateway holds it, then forgets its
// node and pot records and announces the removal.
func (h *Handler) removeNode(ctx context.Context, node uint64) (map[string]any, error) {
	rec, err := h.State.node(ctx, node)
	if errors.Is(err, errNodeNotFound) {
		return nil, failure("node %d not found", node)
	}
	if err != nil {
		return nil, err
	}
	if rec.Connected {
		// The gateway records the node disconnected (reason removed) as
		// its session closes, which may be after it replied: watch the
		// key first and delete only once that write has landed, or it
		// would bring the record back.
		wctx, cancel := context.WithTimeout(ctx, h.CommandTimeout)
		defer cancel()
		w, werr := h.State.Nodes.Watch(wctx, bus.NodeKey(node), jetstream.UpdatesOnly())
		_, err := h.request(ctx, node, bus.CommandRequest{CommandID: newCommandID(), Disconnect: true})
		var f *errFailure
		if err != nil && !errors.As(err, &f) {
			if werr == nil {
				_ = w.Stop()
			}
			return nil, err
		}
		if err == nil && werr == nil {
			waitDisconnected(wctx, w)
		}
		if werr == nil {
			_ = w.Stop()
		}
		// Not connected (any more) or timed out: forget it anyway.
	}
	if err := h.State.forget(ctx, node); err != nil {
		return nil, err
	}
	ev, _ := json.Marshal(bus.NodeLifecycle{Kind: bus.LifecycleRemoved, NodeID: node, NodeIDStr: proto.FormatNodeID(node),
		NodeName: rec.NodeName, Time: time.Now().UTC(), Reason: bus.ReasonRemoved})
	if err := h.NC.Publish(h.Bus.Node(node, bus.LifecycleRemoved), ev); err != nil {
		h.Log.Warn().Err(err).Uint64("node_id", node).Msg("announce removal")
	}
	return map[string]any{"node_id": node, "node_id_str": proto.FormatNodeID(node), "removed": true, "was_connected": rec.Connected}, nil
}

// waitDisconnected waits for a write of the node's record that shows it
// disconnected (or deleted), or for ctx.
func waitDisconnected(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				return
			}
			var r bus.NodeRecord
			if json.Unmarshal(e.Value(), &r) == nil && !r.Connected {
				return
			}
		}
	}
}
