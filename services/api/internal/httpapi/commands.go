package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// newCommandID returns 32 hex digits from crypto/rand: a valid key-value
// key and subject token, unguessable.
func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseCommandBody reads a command in the protocol's form.
func (h *handler) parseCommandBody(c echo.Context) (proto.Command, json.RawMessage, error) {
	body, err := readBody(c, h.MaxBodyBytes)
	if err != nil {
		return proto.Command{}, nil, err
	}
	if !json.Valid(body) {
		return proto.Command{}, nil, badRequest(CodeInvalidJSON, "request body is not valid JSON; send a command such as {\"StopPot\": \"cowrie-01\"}")
	}
	cmd, err := proto.ParseCommand(body)
	if err != nil {
		return proto.Command{}, nil, badRequest(CodeInvalidCommand, "%s", err.Error())
	}
	wire, err := json.Marshal(cmd)
	if err != nil {
		return proto.Command{}, nil, badRequest(CodeInvalidCommand, "%s", err.Error())
	}
	return cmd, wire, nil
}

// CommandAccepted is the answer to a command request.
type CommandAccepted struct {
	CommandID string `json:"command_id"`
	NodeID    uint64 `json:"node_id"`
	NodeIDStr string `json:"node_id_str"`
	Kind      string `json:"kind"`
	PotID     string `json:"pot_id,omitempty"`
	Delivered bool   `json:"delivered"`
}

func (h *handler) sendCommand(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	id, err := nodeIDParam(c)
	if err != nil {
		return err
	}
	cmd, wire, err := h.parseCommandBody(c)
	if err != nil {
		return err
	}
	req := bus.CommandRequest{CommandID: newCommandID(), Command: wire}
	msg, err := h.request(c.Request().Context(), b, b.C.Command(id), req, h.CommandTimeout)
	if err != nil {
		return err
	}
	var reply bus.CommandReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return apiErr(http.StatusBadGateway, CodeGatewayError, "the gateway's reply is not a command reply")
	}
	if reply.CommandID == "" {
		reply.CommandID = req.CommandID
	}
	h.log.Info().Uint64("node_id", id).Str("command_id", reply.CommandID).Str("kind", string(cmd.Kind)).
		Str("pot_id", cmd.PotID).Bool("delivered", reply.Delivered).Msg("command sent")
	return c.JSON(http.StatusAccepted, CommandAccepted{
		CommandID: reply.CommandID, NodeID: id, NodeIDStr: proto.FormatNodeID(id),
		Kind: string(cmd.Kind), PotID: cmd.PotID, Delivered: reply.Delivered,
	})
}

// validCommandID accepts what can be a key in the commands bucket.
func validCommandID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '=') {
			return false
		}
	}
	return true
}

// Command is a command's record as the API shows it.
type Command struct {
	CommandID string              `json:"command_id"`
	NodeID    uint64              `json:"node_id"`
	NodeIDStr string              `json:"node_id_str"`
	NodeName  string              `json:"node_name"`
	Kind      string              `json:"kind"`
	PotID     string              `json:"pot_id,omitempty"`
	Command   json.RawMessage     `json:"command"`
	SentAt    *time.Time          `json:"sent_at"`
	Delivered bool                `json:"delivered"`
	State     string              `json:"state"`
	Progress  []bus.CommandUpdate `json:"progress"`
	UpdatedAt *time.Time          `json:"updated_at"`
}

func (h *handler) getCommand(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	id := c.Param("command_id")
	if !validCommandID(id) {
		return badRequest(CodeInvalidCommandID, "command_id %q is not a command id", clip(id))
	}
	ctx, cancel := h.natsCtx(c)
	defer cancel()
	e, err := b.Commands.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		return apiErr(http.StatusNotFound, CodeCommandNotFound, "command %s is not known (records are kept %s)", id, bus.CommandTTL)
	case err != nil:
		return unavailable("reading the command", err)
	}
	var rec bus.CommandRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return apiErr(http.StatusBadGateway, CodeGatewayError, "the command's record is unreadable")
	}
	if rec.CommandID == "" {
		rec.CommandID = id
	}
	if rec.Progress == nil {
		rec.Progress = []bus.CommandUpdate{}
	}
	if len(rec.Command) == 0 {
		rec.Command = json.RawMessage("null")
	}
	return c.JSON(http.StatusOK, Command{
		CommandID: rec.CommandID, NodeID: rec.NodeID, NodeIDStr: proto.FormatNodeID(rec.NodeID), NodeName: rec.NodeName,
		Kind: rec.Kind, PotID: rec.PotID, Command: rec.Command, SentAt: optTime(rec.SentAt), Delivered: rec.Delivered,
		State: rec.State, Progress: rec.Progress, UpdatedAt: optTime(rec.UpdatedAt),
	})
}

// BroadcastAnswer is the answer to a broadcast.
type BroadcastAnswer struct {
	CommandID string `json:"command_id"`
	Kind      string `json:"kind"`
	// GatewaysExpected is the number of live gateways when it was sent.
	GatewaysExpected int `json:"gateways_expected"`
	// GatewaysAnswered counts the gateways whose results are included.
	GatewaysAnswered int `json:"gateways_answered"`
	// Complete is true when every live gateway answered in time.
	Complete bool                  `json:"complete"`
	Results  []bus.BroadcastResult `json:"results"`
	// Errors are the gateways that refused the broadcast.
	Errors []GatewayError `json:"errors"`
}

// GatewayError is a gateway's refusal of a broadcast.
type GatewayError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (h *handler) broadcast(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	cmd, wire, err := h.parseCommandBody(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	cctx, cancel := h.natsCtx(c)
	defer cancel()
	expected, err := b.Gateways.Count(cctx)
	if err != nil {
		return unavailable("counting gateways", err)
	}
	req := bus.CommandRequest{CommandID: newCommandID(), Command: wire}
	out := BroadcastAnswer{CommandID: req.CommandID, Kind: string(cmd.Kind), GatewaysExpected: expected,
		Results: []bus.BroadcastResult{}, Errors: []GatewayError{}}
	if expected > 0 {
		if err := h.gather(ctx, b, req, expected, &out); err != nil {
			return err
		}
	}
	out.Complete = out.GatewaysAnswered+len(out.Errors) >= expected
	h.log.Info().Str("command_id", req.CommandID).Str("kind", string(cmd.Kind)).Int("gateways", out.GatewaysAnswered).
		Int("nodes", len(out.Results)).Msg("broadcast sent")
	return c.JSON(http.StatusAccepted, out)
}

// gather publishes the broadcast and collects one reply per live gateway
// until it has expected replies or BroadcastTimeout passes.
func (h *handler) gather(ctx context.Context, b *Backend, req bus.CommandRequest, expected int, out *BroadcastAnswer) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	inbox := b.NC.NewInbox()
	sub, err := b.NC.SubscribeSync(inbox)
	if err != nil {
		return unavailable("subscribing for broadcast replies", err)
	}
	defer sub.Unsubscribe()
	msg := nats.NewMsg(b.C.Broadcast())
	msg.Reply, msg.Data = inbox, data
	if err := b.NC.PublishMsg(msg); err != nil {
		return unavailable("sending the broadcast", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.BroadcastTimeout)
	defer cancel()
	for out.GatewaysAnswered+len(out.Errors) < expected {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil // timeout: report what arrived
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return nil // no responders: no gateway is subscribed
		}
		if serr := serviceError(m); serr != nil {
			out.Errors = append(out.Errors, GatewayError{Code: serr.Code, Message: serr.Message})
			continue
		}
		var r bus.BroadcastReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			out.Errors = append(out.Errors, GatewayError{Code: CodeGatewayError, Message: "unreadable broadcast reply"})
			continue
		}
		out.GatewaysAnswered++
		for _, res := range r.Results {
			if res.NodeIDStr == "" {
				res.NodeIDStr = proto.FormatNodeID(res.NodeID)
			}
			out.Results = append(out.Results, res)
		}
	}
	return nil
}
