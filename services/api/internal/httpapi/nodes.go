package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/state"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Node is a node as the API shows it.
type Node struct {
	NodeID    uint64           `json:"node_id"`
	NodeIDStr string           `json:"node_id_str"`
	NodeName  string           `json:"node_name"`
	NodeType  proto.NodeType   `json:"node_type"`
	Status    proto.NodeStatus `json:"status"`
	// Connected is true only while the node's gateway is alive too.
	Connected        bool       `json:"connected"`
	GatewayID        string     `json:"gateway_id,omitempty"`
	Address          string     `json:"address"`
	Port             uint16     `json:"port"`
	RemoteAddr       string     `json:"remote_addr"`
	ConnectedSince   *time.Time `json:"connected_since"`
	LastSeen         *time.Time `json:"last_seen"`
	DisconnectedAt   *time.Time `json:"disconnected_at"`
	DisconnectReason *string    `json:"disconnect_reason"`
}

// NodeDetail is a node with its honeypots.
type NodeDetail struct {
	Node
	Honeypots []Honeypot `json:"honeypots"`
}

// Honeypot is a pot as the API shows it.
type Honeypot struct {
	NodeID    uint64          `json:"node_id"`
	NodeIDStr string          `json:"node_id_str"`
	PotID     string          `json:"pot_id"`
	PotType   string          `json:"pot_type"`
	Status    proto.PotStatus `json:"status"`
	Message   string          `json:"message"`
	UpdatedAt *time.Time      `json:"updated_at"`
}

func nodeOut(r *bus.NodeRecord, alive func(string) bool) Node {
	n := Node{
		NodeID: r.NodeID, NodeIDStr: proto.FormatNodeID(r.NodeID), NodeName: r.NodeName, NodeType: r.NodeType,
		Status: r.Status, Address: r.Address, Port: r.Port, RemoteAddr: r.RemoteAddr,
		ConnectedSince: optTime(r.ConnectedSince), LastSeen: optTime(r.LastSeen),
	}
	switch {
	case r.Live(alive):
		n.Connected, n.GatewayID = true, r.GatewayID
	case r.Connected:
		// Recorded connected through a gateway that stopped heartbeating.
		reason := bus.ReasonGatewayLost
		n.DisconnectReason = &reason
	default:
		n.DisconnectedAt = optTime(r.DisconnectedAt)
		reason := r.DisconnectReason
		n.DisconnectReason = &reason
	}
	return n
}

func potOut(p *bus.PotRecord) Honeypot {
	return Honeypot{
		NodeID: p.NodeID, NodeIDStr: proto.FormatNodeID(p.NodeID), PotID: p.PotID, PotType: p.PotType,
		Status: p.Status, Message: p.Message, UpdatedAt: optTime(p.UpdatedAt),
	}
}

// aliveFunc resolves the liveness of every gateway the view's connected
// nodes name, before the view's lock is taken.
func aliveFunc(ctx context.Context, b *Backend) func(string) bool {
	return b.Gateways.Snapshot(ctx, b.View.GatewayIDs())
}

func (h *handler) listNodes(c echo.Context) error {
	b, err := h.backend()
	if err != nil {
		return err
	}
	var status *proto.NodeStatus
	if v, err := filterParam(c, "status"); err != nil {
		return err
	} else if v != nil {
		s := proto.NodeStatus(*v)
		if !s.Valid() {
			return badRequest(CodeInvalidFilter, "status must be one of Connected, Deploying, Running, Stopped, Failed, Unknown")
		}
		status = &s
	}
	var typ *proto.NodeType
	if v, err := filterParam(c, "node_type"); err != nil {
		return err
	} else if v != nil {
		t := proto.NodeType(*v)
		if !t.Valid() {
			return badRequest(CodeInvalidFilter, "node_type must be Full or Agent")
		}
		typ = &t
	}
	connected, err := boolParam(c, "connected")
	if err != nil {
		return err
	}
	limit, err := limitParam(c, defaultPage, maxPage)
	if err != nil {
		return err
	}
	var after uint64
	pos, hasAfter, err := decodeCursor(c, "n")
	if err != nil {
		return err
	}
	if hasAfter {
		if after, err = cursorUint(pos); err != nil {
			return err
		}
	}
	alive := aliveFunc(c.Request().Context(), b)
	recs, more := b.View.Nodes(after, hasAfter, limit, func(r *bus.NodeRecord) bool {
		return (status == nil || r.Status == *status) &&
			(typ == nil || r.NodeType == *typ) &&
			(connected == nil || r.Live(alive) == *connected)
	})
	// Written by hand: for thousands of nodes encoding/json's reflection
	// costs several times more than reading the view.
	body := make([]byte, 0, 64+len(recs)*360)
	body = append(body, `{"nodes":[`...)
	for i := range recs {
		if i > 0 {
			body = append(body, ',')
		}
		n := nodeOut(&recs[i], alive)
		body = n.appendJSON(body)
	}
	body = append(body, `],"next_cursor":`...)
	if more && len(recs) > 0 {
		body = bus.AppendJSONStringNoEscapeHTML(body, encodeCursor("n", strconv.FormatUint(recs[len(recs)-1].NodeID, 10)))
	} else {
		body = append(body, "null"...)
	}
	body = append(body, "}\n"...)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

func (h *handler) getNode(c echo.Context) error {
	b, err := h.backend()
	if err != nil {
		return err
	}
	id, err := nodeIDParam(c)
	if err != nil {
		return err
	}
	rec, pots, ok := b.View.Node(id)
	if !ok {
		return apiErr(http.StatusNotFound, CodeNodeNotFound, "node %d is not known", id)
	}
	alive := func(gw string) bool { return b.Gateways.Alive(c.Request().Context(), gw) }
	out := NodeDetail{Node: nodeOut(&rec, alive), Honeypots: make([]Honeypot, len(pots))}
	for i := range pots {
		out.Honeypots[i] = potOut(&pots[i])
	}
	return c.JSON(http.StatusOK, out)
}

// deleteNode disconnects a node (when a gateway holds it) and forgets its
// node and pot records.
func (h *handler) deleteNode(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	id, err := nodeIDParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	kvCtx, cancel := h.natsCtx(c)
	defer cancel()
	rec, err := getNodeRecord(kvCtx, b, id)
	if err != nil {
		return err
	}
	disconnected := false
	if rec.Connected {
		// Ask whichever gateway holds it; nobody holding it (no responders)
		// means it is gone already.
		_, err := h.request(ctx, b, b.C.Command(id), bus.CommandRequest{CommandID: newCommandID(), Disconnect: true}, h.CommandTimeout)
		var ge *Error
		switch {
		case err == nil:
			disconnected = true
			// The gateway writes the disconnected record after closing the
			// socket; wait for it so it cannot recreate the key we delete.
			waitDisconnected(ctx, b, id, h.CommandTimeout)
		case errors.As(err, &ge) && ge.Code == CodeNodeNotConnected:
		default:
			return err
		}
	}
	kvCtx, cancel = h.natsCtx(c)
	defer cancel()
	pots, err := deleteNodeKeys(kvCtx, b, id)
	if err != nil {
		return err
	}
	// Read your own write: the view follows the buckets by watching them, so
	// wait until it has applied the purges before answering; a GET right
	// after this DELETE must not show the node or its pots.
	if err := catchUp(kvCtx, b); err != nil {
		h.log.Warn().Err(err).Uint64("node_id", id).Msg("the state view did not catch up with the removal in time")
	}
	lc := bus.NodeLifecycle{Kind: bus.LifecycleRemoved, NodeID: id, NodeIDStr: proto.FormatNodeID(id),
		NodeName: rec.NodeName, Time: time.Now().UTC(), Reason: bus.ReasonRemoved}
	if data, err := json.Marshal(lc); err == nil {
		if err := b.NC.Publish(b.C.Node(id, bus.LifecycleRemoved), data); err != nil {
			h.log.Warn().Err(err).Uint64("node_id", id).Msg("publishing the removed lifecycle failed")
		}
	}
	h.log.Info().Uint64("node_id", id).Str("node_name", rec.NodeName).Bool("disconnected", disconnected).
		Int("pots_removed", pots).Msg("node removed")
	return c.JSON(http.StatusOK, map[string]any{
		"node_id": id, "node_id_str": proto.FormatNodeID(id), "removed": true,
		"disconnected": disconnected, "pots_removed": pots,
	})
}

func getNodeRecord(ctx context.Context, b *Backend, id uint64) (bus.NodeRecord, error) {
	var rec bus.NodeRecord
	e, err := b.Nodes.Get(ctx, bus.NodeKey(id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return rec, apiErr(http.StatusNotFound, CodeNodeNotFound, "node %d is not known", id)
	case err != nil:
		return rec, unavailable("reading the node", err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// A record we cannot read is still a key we can delete.
		rec = bus.NodeRecord{NodeID: id}
	}
	return rec, nil
}

func waitDisconnected(ctx context.Context, b *Backend, id uint64, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := b.Nodes.Watch(ctx, bus.NodeKey(id))
	if err != nil {
		return
	}
	defer w.Stop()
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
			var rec bus.NodeRecord
			if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &rec) != nil || !rec.Connected {
				return
			}
		}
	}
}

// catchUp waits until b.View has applied everything both buckets hold now.
func catchUp(ctx context.Context, b *Backend) error {
	nodeRev, err := lastRevision(ctx, b.Nodes)
	if err != nil {
		return err
	}
	potRev, err := lastRevision(ctx, b.Pots)
	if err != nil {
		return err
	}
	return b.View.CatchUp(ctx, nodeRev, potRev)
}

// lastRevision is the revision of the newest entry of a bucket: its stream's
// last sequence.
func lastRevision(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("bucket %s: status of type %T has no stream info", st.Bucket(), st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}

// deleteNodeKeys purges the node's key and every key of its pots and
// returns how many pots it removed.
func deleteNodeKeys(ctx context.Context, b *Backend, id uint64) (int, error) {
	lister, err := b.Pots.ListKeysFiltered(ctx, bus.PotKeysOf(id))
	if err != nil {
		return 0, unavailable("listing the node's pots", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	n := 0
	for _, k := range keys {
		if err := b.Pots.Purge(ctx, k); err != nil {
			return n, unavailable("removing a pot", err)
		}
		n++
	}
	if err := b.Nodes.Purge(ctx, bus.NodeKey(id)); err != nil {
		return n, unavailable("removing the node", err)
	}
	return n, nil
}

// request sends a command request to a gateway and maps every failure to
// an API error: no responders -> 404 NODE_NOT_CONNECTED at once, a
// timeout -> 504 COMMAND_TIMEOUT, a gateway service error -> its code.
func (h *handler) request(ctx context.Context, b *Backend, subject string, req bus.CommandRequest, timeout time.Duration) (*nats.Msg, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := b.NC.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, apiErr(http.StatusNotFound, CodeNodeNotConnected, "no gateway holds this node: it is not connected")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, apiErr(http.StatusGatewayTimeout, CodeCommandTimeout, "the gateway did not answer within %s", timeout)
	case err != nil:
		return nil, unavailable("sending the command", err)
	}
	if serr := serviceError(msg); serr != nil {
		return nil, serr
	}
	return msg, nil
}

// serviceError maps a NATS micro service error reply to an API error.
func serviceError(msg *nats.Msg) *Error {
	code := msg.Header.Get("Nats-Service-Error-Code")
	if code == "" {
		return nil
	}
	reason := strings.TrimSpace(msg.Header.Get("Nats-Service-Error"))
	if reason == "" {
		reason = "the gateway refused the command"
	}
	switch code {
	case bus.CodeInvalidCommand:
		return badRequest(CodeInvalidCommand, "%s", reason)
	case bus.CodeNotConnected:
		return apiErr(http.StatusNotFound, CodeNodeNotConnected, "%s", reason)
	case bus.CodeDraining:
		return apiErr(http.StatusServiceUnavailable, CodeGatewayUnavailable, "%s", reason)
	}
	return apiErr(http.StatusBadGateway, CodeGatewayError, "gateway error %s: %s", clip(code), reason)
}

func (h *handler) listPots(c echo.Context) error {
	b, err := h.backend()
	if err != nil {
		return err
	}
	node, err := nodeIDFilter(c)
	if err != nil {
		return err
	}
	typ, err := filterParam(c, "pot_type")
	if err != nil {
		return err
	}
	var status *proto.PotStatus
	if v, err := filterParam(c, "status"); err != nil {
		return err
	} else if v != nil {
		s := proto.PotStatus(*v)
		if !s.Valid() {
			return badRequest(CodeInvalidFilter, "status must be one of Installing, Running, Stopped, Failed")
		}
		status = &s
	}
	limit, err := limitParam(c, defaultPage, maxPage)
	if err != nil {
		return err
	}
	var after *state.PotCursor
	pos, ok, err := decodeCursor(c, "p")
	if err != nil {
		return err
	}
	if ok {
		nodeTok, potKey, found := strings.Cut(pos, ":")
		id, perr := strconv.ParseUint(nodeTok, 10, 64)
		if !found || perr != nil || potKey == "" {
			return badRequest(CodeInvalidCursor, "cursor is not one this endpoint returned")
		}
		after = &state.PotCursor{NodeID: id, PotKey: potKey}
	}
	if node != nil && (after == nil || after.NodeID < *node) {
		after = &state.PotCursor{NodeID: *node, PotKey: ""}
	}
	recs, next := b.View.Pots(after, limit, func(p *bus.PotRecord) bool {
		return (node == nil || p.NodeID == *node) &&
			(typ == nil || p.PotType == *typ) &&
			(status == nil || p.Status == *status)
	})
	out := struct {
		Honeypots  []Honeypot `json:"honeypots"`
		NextCursor *string    `json:"next_cursor"`
	}{Honeypots: make([]Honeypot, len(recs))}
	for i := range recs {
		out.Honeypots[i] = potOut(&recs[i])
	}
	if next != nil {
		cur := encodeCursor("p", strconv.FormatUint(next.NodeID, 10)+":"+next.PotKey)
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}
