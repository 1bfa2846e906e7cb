// Package stream serves the /stream endpoint: live attack events, node and
// pot changes as JSON text frames, with filters, a subscribe message to
// change them, and gap-free resume from a stream sequence.
//
// A Handler is safe for concurrent use; Serve runs one connection in the
// calling goroutine (which reads the client's messages) until it closes.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/honeybee/core/services/ws-proxy/internal/hub"
)

// Hooks report what happens, for metrics. Nil hooks are skipped.
type Hooks struct {
	Replayed func(n int)           // events written by a replay
	BadInput func(reason string)   // binary, not_json, unknown_type, bad_filter
	Resumed  func(d time.Duration) // a replay finished
}

// Handler serves /stream connections of one replica.
type Handler struct {
	Hub          *hub.Hub
	JS           jetstream.JetStream
	Bus          bus.Contract
	WriteTimeout time.Duration
	// ReplayBatch is the number of events fetched per replay request.
	ReplayBatch int
	Log         zerolog.Logger
	Hooks       Hooks
}

// Serve runs an accepted connection: it registers the client, sends the
// first ack, replays from req.Since when set (in a goroutine of its own,
// while this one reads, so a client can close or answer pings during a
// long replay), goes live, and reads subscribe messages until the
// connection ends.
//
// nc, when not nil, is the network connection under conn: its write
// deadline bounds the live writes (cheaper than a context per frame).
func (h *Handler) Serve(ctx context.Context, conn *websocket.Conn, nc net.Conn, req Request) {
	c := h.Hub.Add(conn, req.Filter, req.Since != nil)
	if nc != nil {
		c.UseWriteDeadline(nc.SetWriteDeadline)
	}
	var replayDone chan struct{}
	defer func() {
		_ = conn.CloseNow()
		if replayDone != nil {
			<-replayDone
		}
		h.Hub.Remove(c)
	}()
	if err := h.write(ctx, conn, encodeAck(nil, req.Filter, req.Since)); err != nil {
		return
	}
	if req.Since == nil {
		c.Release(0)
	} else {
		replayDone = make(chan struct{})
		go func() {
			defer close(replayDone)
			h.resume(ctx, conn, c, req.Filter, *req.Since)
		}()
	}
	h.read(ctx, conn, c)
}

// resume replays, then releases the client's queue.
func (h *Handler) resume(ctx context.Context, conn *websocket.Conn, c *hub.Client, f *hub.Filter, since uint64) {
	start := time.Now()
	d, n, err := h.replay(ctx, conn, c, f, since)
	if h.Hooks.Replayed != nil {
		h.Hooks.Replayed(n)
	}
	switch {
	case errors.Is(err, errWrite):
		_ = conn.CloseNow() // the client is gone or stalled
		return
	case err != nil:
		h.Log.Warn().Err(err).Uint64("since", since).Msg("replay failed")
		_ = conn.Close(websocket.StatusInternalError, "replay failed; reconnect with since")
		return
	}
	if h.Hooks.Resumed != nil {
		h.Hooks.Resumed(time.Since(start))
	}
	c.Release(d)
}

// read handles the client's messages until the connection fails.
func (h *Handler) read(ctx context.Context, conn *websocket.Conn, c *hub.Client) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			h.bad("binary")
			_ = conn.Close(websocket.StatusUnsupportedData, "binary frames are not supported: send JSON text")
			return
		}
		if !json.Valid(data) {
			h.bad("not_json")
			c.Send(&hub.Frame{Data: encodeError(nil, "message is not JSON")})
			continue
		}
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) && ute.Field == "" {
				h.bad("not_object")
				c.Send(&hub.Frame{Data: encodeError(nil, "message must be a JSON object")})
				continue
			}
			h.bad("bad_filter")
			c.Send(&hub.Frame{Data: encodeError(idOf(data), "bad filter: "+err.Error())})
			continue
		}
		switch m.Type {
		case "subscribe":
			f, err := hub.FilterSpec{NodeIDs: m.NodeIDs, PotIDs: m.PotIDs, EventTypes: m.EventTypes, Types: m.Types}.Build()
			if err != nil {
				h.bad("bad_filter")
				c.Send(&hub.Frame{Data: encodeError(m.ID, err.Error())})
				continue
			}
			// Swap, then queue the ack: every frame after the ack
			// matches the new filter.
			c.SetFilter(f)
			c.Send(&hub.Frame{Data: encodeAck(m.ID, f, nil)})
		default:
			h.bad("unknown_type")
			c.Send(&hub.Frame{Data: encodeError(m.ID, fmt.Sprintf("unknown message type %q: want subscribe", m.Type))})
		}
	}
}

func (h *Handler) bad(reason string) {
	if h.Hooks.BadInput != nil {
		h.Hooks.BadInput(reason)
	}
}

// idOf returns the "id" of a message that failed to decode as a whole.
func idOf(data []byte) json.RawMessage {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m.ID
}

func (h *Handler) write(ctx context.Context, conn *websocket.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.WriteTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, b)
}
