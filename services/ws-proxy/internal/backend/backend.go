// Package backend serves the backend protocol of Protocol v2 on / and /ws:
// dashboards written for the reference core send BackendRegistration,
// BackendCommand and BackendDrop envelopes as text frames and receive
// BackendResponse envelopes, one answer per request, in order.
//
// State comes from the gateway's key-value buckets; NodeCommand,
// BroadcastCommand and RemoveNode go to the gateway by NATS request-reply.
// Registration is optional: commands are answered before it too, since
// clients of the reference core are known to skip it. A Handler is safe
// for concurrent use; Serve runs one connection in the calling goroutine.
package backend

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/honeybee/core/services/ws-proxy/internal/auth"
)

// Hooks report what happens, for metrics. Nil hooks are skipped.
type Hooks struct {
	// Request is called for every request: its kind (a command name,
	// BackendRegistration, invalid, ...) and whether it succeeded.
	Request func(kind string, ok bool)
	// BadInput is called for a binary frame ("binary").
	BadInput func(reason string)
}

// Handler serves backend-protocol connections.
type Handler struct {
	NC    *nats.Conn
	State *State
	Bus   bus.Contract
	// CommandTimeout bounds a command's request-reply (and a broadcast's gathering).
	CommandTimeout time.Duration
	WriteTimeout   time.Duration
	// PingInterval is how often the client is pinged (<= 0: never).
	PingInterval time.Duration
	// MaxMessage is the largest envelope decoded, in bytes.
	MaxMessage int
	Log        zerolog.Logger
	Hooks      Hooks
}

// newBackendID returns a random id below 2^53, so JavaScript reads it exactly.
func newBackendID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])>>11 | 1
}

// Serve answers the client's requests until it drops or the connection fails.
func (h *Handler) Serve(ctx context.Context, conn *websocket.Conn, role auth.Role) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		_ = conn.CloseNow()
		wg.Wait()
	}()
	if h.PingInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.keepalive(ctx, conn)
		}()
	}
	backendID := newBackendID()
	dec := proto.Decoder{MaxSize: h.MaxMessage}
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			if h.Hooks.BadInput != nil {
				h.Hooks.BadInput("binary")
			}
			_ = conn.Close(websocket.StatusUnsupportedData, "binary frames are not supported: send JSON text")
			return
		}
		env, err := dec.Decode(data)
		var resp *proto.BackendResponse
		kind := "invalid"
		switch {
		case err != nil:
			resp = fail(invalidReason(err))
		case env.Version != proto.Version:
			resp = fail(fmt.Sprintf("unsupported protocol version %d: want %d", env.Version, proto.Version))
		default:
			switch m := env.Message.(type) {
			case *proto.BackendRegistration:
				kind = "BackendRegistration"
				h.Log.Info().Str("backend_name", m.BackendName).Str("backend_type", m.BackendType.Kind).
					Uint64("backend_id", backendID).Msg("backend registered")
				resp = succeed("registered", map[string]uint64{"backend_id": backendID})
			case *proto.BackendCommand:
				kind = string(m.Kind)
				resp = h.command(ctx, role, m)
			case *proto.BackendDrop:
				if h.Hooks.Request != nil {
					h.Hooks.Request("BackendDrop", true)
				}
				_ = conn.Close(websocket.StatusNormalClosure, "backend drop")
				return
			default:
				resp = fail(fmt.Sprintf("unexpected %s: this endpoint takes BackendRegistration, BackendCommand and BackendDrop", m.Variant()))
			}
		}
		if h.Hooks.Request != nil {
			h.Hooks.Request(kind, resp.Success)
		}
		b, err := proto.Marshal(resp)
		if err != nil {
			h.Log.Error().Err(err).Msg("encode response")
			return
		}
		wctx, wcancel := context.WithTimeout(ctx, h.WriteTimeout)
		err = conn.Write(wctx, websocket.MessageText, b)
		wcancel()
		if err != nil {
			return
		}
	}
}

// keepalive pings the client; a peer that does not answer is closed.
func (h *Handler) keepalive(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(h.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, h.WriteTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				_ = conn.CloseNow()
				return
			}
		}
	}
}

func invalidReason(err error) string {
	switch {
	case errors.Is(err, proto.ErrUnknownVariant):
		return "unknown message or command: " + err.Error()
	case errors.Is(err, proto.ErrNotJSON), errors.Is(err, proto.ErrInvalidUTF8):
		return "message is not JSON: " + err.Error()
	}
	return "invalid message: " + err.Error()
}

func fail(reason string) *proto.BackendResponse {
	return &proto.BackendResponse{Failure: reason}
}

func succeed(msg string, data any) *proto.BackendResponse {
	b, err := json.Marshal(data)
	if err != nil {
		return fail("encode: " + err.Error())
	}
	return &proto.BackendResponse{Success: true, Message: msg, Data: b}
}

// nodeList is the data of GetNodes and GetNodesByStatus. node_ids_str
// carries the same ids as strings for JavaScript.
type nodeList struct {
	Nodes    []uint64 `json:"nodes"`
	NodesStr []string `json:"node_ids_str"`
}

// command answers one BackendCommand.
func (h *Handler) command(ctx context.Context, role auth.Role, m *proto.BackendCommand) *proto.BackendResponse {
	switch m.Kind {
	case proto.BackendNodeCommand, proto.BackendBroadcastCommand, proto.BackendRemoveNode:
		if role < auth.Admin {
			return fail(fmt.Sprintf("forbidden: %s needs an admin token", m.Kind))
		}
	}
	resp, err := h.run(ctx, m)
	if err == nil {
		return resp
	}
	var f *errFailure
	if errors.As(err, &f) {
		return fail(f.reason)
	}
	h.Log.Warn().Err(err).Str("command", string(m.Kind)).Msg("backend command failed")
	return fail(fmt.Sprintf("%s failed: %v", m.Kind, err))
}

func (h *Handler) run(ctx context.Context, m *proto.BackendCommand) (*proto.BackendResponse, error) {
	switch m.Kind {
	case proto.BackendGetNodes, proto.BackendGetNodesByStatus, proto.BackendGetActiveConnections:
		recs, err := h.State.nodes(ctx)
		if err != nil {
			return nil, err
		}
		if m.Kind == proto.BackendGetActiveConnections {
			n := 0
			for _, r := range recs {
				if r.Connected {
					n++
				}
			}
			return succeed("active connections", map[string]int{"count": n}), nil
		}
		l := nodeList{Nodes: []uint64{}, NodesStr: []string{}}
		for _, r := range recs {
			if m.Kind == proto.BackendGetNodesByStatus && r.Status != m.Status {
				continue
			}
			l.Nodes = append(l.Nodes, r.NodeID)
		}
		slices.Sort(l.Nodes)
		for _, id := range l.Nodes {
			l.NodesStr = append(l.NodesStr, proto.FormatNodeID(id))
		}
		return succeed("nodes", l), nil
	case proto.BackendGetNodeCount:
		n, err := h.State.count(ctx)
		if err != nil {
			return nil, err
		}
		return succeed("node count", map[string]int{"count": n}), nil
	case proto.BackendGetNode:
		r, err := h.State.node(ctx, m.NodeID)
		if errors.Is(err, errNodeNotFound) {
			return nil, failure("node %d not found", m.NodeID)
		}
		if err != nil {
			return nil, err
		}
		return succeed("node", r), nil
	case proto.BackendNodeCommand:
		reply, err := h.nodeCommand(ctx, m.NodeID, m.Command)
		if err != nil {
			return nil, err
		}
		return succeed(fmt.Sprintf("%s sent to node %d", m.Command.Kind, m.NodeID), reply), nil
	case proto.BackendBroadcastCommand:
		res, err := h.broadcast(ctx, m.Command)
		if err != nil {
			return nil, err
		}
		return succeed(fmt.Sprintf("%s sent to %d nodes", m.Command.Kind, res.Delivered), res), nil
	case proto.BackendRemoveNode:
		data, err := h.removeNode(ctx, m.NodeID)
		if err != nil {
			return nil, err
		}
		return succeed(fmt.Sprintf("node %d removed", m.NodeID), data), nil
	}
	return nil, failure("unknown command %q", m.Kind)
}
