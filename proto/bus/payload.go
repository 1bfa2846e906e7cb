package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/honeybee/core/proto"
)

// Header names used on bus messages.
const (
	// HeaderMsgID is JetStream's de-duplication header; the gateway sets it
	// to AttackEvent.EventID so a republish after a NATS outage is idempotent.
	HeaderMsgID = "Nats-Msg-Id"
)

// AttackEvent is the normalized attack event, whatever dialect the node
// spoke. It is the payload on Event subjects and in the events stream.
type AttackEvent struct {
	// EventID is unique per event and stable across republishing.
	EventID   string `json:"event_id"`
	NodeID    uint64 `json:"node_id"`
	NodeIDStr string `json:"node_id_str"`
	NodeName  string `json:"node_name"`
	PotID     string `json:"pot_id"`
	PotType   string `json:"pot_type"`
	EventType string `json:"event_type"`
	// Timestamp is the node's own time when it sent one, else ReceivedAt.
	Timestamp  time.Time `json:"timestamp"`
	ReceivedAt time.Time `json:"received_at"`
	SrcIP      string    `json:"src_ip,omitempty"`
	Message    *string   `json:"message,omitempty"`
	// Data is the documented form's data object or the compact form's
	// metadata; {} when the node sent none.
	Data json.RawMessage `json:"data"`
}

// UnknownEventType is the event type given to attack events that arrive
// as a PotStatusUpdate with an empty or unknown status (the deployed Go
// node's quirk).
const UnknownEventType = "unknown"

// Identity is what the gateway knows of the node a message came from.
type Identity struct {
	NodeID   uint64
	NodeName string
}

// NewAttackEvent normalizes a PotEvent received at receivedAt.
func NewAttackEvent(id string, who Identity, ev *proto.PotEvent, receivedAt time.Time) AttackEvent {
	ts := ev.Timestamp
	if ts.IsZero() {
		ts = receivedAt
	}
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return AttackEvent{
		EventID:    id,
		NodeID:     who.NodeID,
		NodeIDStr:  proto.FormatNodeID(who.NodeID),
		NodeName:   who.NodeName,
		PotID:      ev.PotID,
		PotType:    ev.PotType,
		EventType:  ev.EventType,
		Timestamp:  ts.UTC(),
		ReceivedAt: receivedAt.UTC(),
		SrcIP:      srcIP(data),
		Message:    ev.Message,
		Data:       data,
	}
}

// NewQuirkEvent turns a PotStatusUpdate that carries no pot state into an
// attack event of type UnknownEventType. The update's status, if any, is
// kept in data.status.
func NewQuirkEvent(id string, who Identity, u *proto.PotStatusUpdate, receivedAt time.Time) AttackEvent {
	data := json.RawMessage("{}")
	if u.Status != "" {
		data, _ = json.Marshal(map[string]string{"status": string(u.Status)})
	}
	return AttackEvent{
		EventID:    id,
		NodeID:     who.NodeID,
		NodeIDStr:  proto.FormatNodeID(who.NodeID),
		NodeName:   who.NodeName,
		PotID:      u.PotID,
		PotType:    u.PotType,
		EventType:  UnknownEventType,
		Timestamp:  receivedAt.UTC(),
		ReceivedAt: receivedAt.UTC(),
		Message:    u.Message,
		Data:       data,
	}
}

// srcIP returns data.src_ip when it is a non-empty string, else data.ip
// when it is a string, else "". Where a key appears twice the last one
// counts, as with encoding/json.
func srcIP(data json.RawMessage) string {
	src, ip, ok := scanSrcIP(data)
	if !ok {
		return srcIPSlow(data)
	}
	if s, ok := plainJSONString(src); ok && s != "" {
		return s
	}
	if s, ok := plainJSONString(ip); ok {
		return s
	}
	return ""
}

// errSlowSrcIP stops scanSrcIP where only encoding/json decides.
var errSlowSrcIP = errors.New("src_ip: take encoding/json")

// scanSrcIP returns the raw values of data's top-level "src_ip" and "ip"
// members (nil when absent), found in one proto.ScanObject pass. It
// reports false when data is not a valid JSON object, or when a member name
// has escapes or non-ASCII bytes or a value it returns has escapes, for
// srcIPSlow to decide: encoding/json matches names case-insensitively with
// Unicode folding and unescapes.
func scanSrcIP(data []byte) (src, ip []byte, ok bool) {
	err := proto.ScanObject(data, func(name, value []byte) error {
		if !isASCII(name) || bytes.IndexByte(name, '\\') >= 0 {
			return errSlowSrcIP
		}
		switch {
		case bytes.EqualFold(name, []byte("src_ip")):
			src = value
		case bytes.EqualFold(name, []byte("ip")):
			ip = value
		}
		return nil
	})
	if err != nil || bytes.IndexByte(src, '\\') >= 0 || bytes.IndexByte(ip, '\\') >= 0 {
		return nil, nil, false
	}
	return src, ip, true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// plainJSONString returns the contents of v when it is a JSON string
// without escapes.
func plainJSONString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// srcIPSlow is srcIP by encoding/json.
func srcIPSlow(data json.RawMessage) string {
	var v struct {
		SrcIP any `json:"src_ip"`
		IP    any `json:"ip"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	if s, ok := v.SrcIP.(string); ok && s != "" {
		return s
	}
	if s, ok := v.IP.(string); ok {
		return s
	}
	return ""
}

// Disconnect reasons recorded in NodeRecord.DisconnectReason.
const (
	ReasonDrop        = "drop"         // the node sent NodeDrop
	ReasonTimeout     = "timeout"      // nothing received within the idle timeout
	ReasonClosed      = "closed"       // the socket closed without NodeDrop
	ReasonProtocol    = "protocol"     // too many bad messages, or a message over the size limit
	ReasonShutdown    = "shutdown"     // the gateway drained
	ReasonRemoved     = "removed"      // an operator removed the node
	ReasonGatewayLost = "gateway_lost" // the gateway holding it stopped heartbeating
)

// NodeRecord is a node's current state in the nodes bucket.
type NodeRecord struct {
	NodeID    uint64           `json:"node_id"`
	NodeIDStr string           `json:"node_id_str"`
	NodeName  string           `json:"node_name"`
	NodeType  proto.NodeType   `json:"node_type"`
	Status    proto.NodeStatus `json:"status"`
	Connected bool             `json:"connected"`
	// GatewayID names the gateway holding the node while Connected.
	GatewayID        string    `json:"gateway_id,omitempty"`
	Address          string    `json:"address"`
	Port             uint16    `json:"port"`
	RemoteAddr       string    `json:"remote_addr"`
	ConnectedSince   time.Time `json:"connected_since"`
	LastSeen         time.Time `json:"last_seen"`
	DisconnectedAt   time.Time `json:"disconnected_at,omitzero"`
	DisconnectReason string    `json:"disconnect_reason,omitempty"`
}

// Live reports whether the node is connected through a gateway that is
// still alive. Readers use it so that a crashed gateway never leaves its
// nodes shown connected: gatewayAlive looks the gateway up in the
// gateways bucket (whose entries expire).
func (r NodeRecord) Live(gatewayAlive func(id string) bool) bool {
	return r.Connected && gatewayAlive(r.GatewayID)
}

// PotRecord is a pot's current state in the pots bucket and the payload of
// Pot subjects.
type PotRecord struct {
	NodeID    uint64          `json:"node_id"`
	NodeIDStr string          `json:"node_id_str"`
	PotID     string          `json:"pot_id"`
	PotType   string          `json:"pot_type"`
	Status    proto.PotStatus `json:"status"`
	Message   string          `json:"message,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// GatewayRecord is a live gateway's heartbeat in the gateways bucket. The
// bucket's entries expire (GatewayTTL) unless refreshed every
// GatewayHeartbeat.
type GatewayRecord struct {
	GatewayID string    `json:"gateway_id"`
	StartedAt time.Time `json:"started_at"`
	Nodes     int       `json:"nodes"`
	Heartbeat time.Time `json:"heartbeat"`
}

// Gateway liveness timing.
const (
	GatewayHeartbeat = 5 * time.Second
	GatewayTTL       = 15 * time.Second
)

// NodeLifecycle is the payload of Node subjects.
type NodeLifecycle struct {
	Kind       string           `json:"kind"` // one of the Lifecycle* constants
	NodeID     uint64           `json:"node_id"`
	NodeIDStr  string           `json:"node_id_str"`
	NodeName   string           `json:"node_name"`
	Time       time.Time        `json:"time"`
	NodeType   proto.NodeType   `json:"node_type,omitempty"`   // registered
	RemoteAddr string           `json:"remote_addr,omitempty"` // registered
	GatewayID  string           `json:"gateway_id,omitempty"`  // registered
	Status     proto.NodeStatus `json:"status,omitempty"`      // status
	Event      *proto.NodeEvent `json:"event,omitempty"`       // event
	Reason     string           `json:"reason,omitempty"`      // disconnected, removed
}

// CommandRequest is the request on Command and Broadcast subjects.
type CommandRequest struct {
	// CommandID is chosen by the caller (unique, e.g. a UUID); the gateway
	// makes one when it is empty. For a broadcast, each node's command gets
	// CommandID + "-" + node id.
	CommandID string `json:"command_id,omitempty"`
	// Command is the protocol form, e.g. {"StopPot": "cowrie-01"}.
	Command json.RawMessage `json:"command,omitempty"`
	// Disconnect asks the gateway to close the node's session (reason
	// "removed") instead of sending a command. Not valid on Broadcast.
	Disconnect bool `json:"disconnect,omitempty"`
}

// CommandReply answers a CommandRequest on a Command subject.
type CommandReply struct {
	CommandID string `json:"command_id"`
	NodeID    uint64 `json:"node_id"`
	NodeIDStr string `json:"node_id_str"`
	Delivered bool   `json:"delivered"`
}

// BroadcastReply is one gateway's answer to a broadcast.
type BroadcastReply struct {
	GatewayID string            `json:"gateway_id"`
	Results   []BroadcastResult `json:"results"`
}

// BroadcastResult is the delivery result of a broadcast to one node.
type BroadcastResult struct {
	NodeID    uint64 `json:"node_id"`
	NodeIDStr string `json:"node_id_str"`
	CommandID string `json:"command_id"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

// Error codes of the gateway's service errors (the Nats-Service-Error-Code
// header), with the reason in Nats-Service-Error.
const (
	CodeInvalidCommand = "400"
	CodeNotConnected   = "404"
	CodeDraining       = "503"
)

// Command states in CommandRecord.State.
const (
	CommandPending    = "pending"     // written to the node, nothing heard since
	CommandInProgress = "in_progress" // the node reported progress (e.g. Installing)
	CommandSucceeded  = "succeeded"   // the node reported the expected end state
	CommandFailed     = "failed"      // the node reported Failed or an Error event, or the write failed
)

// CommandRecord is a command and its progress in the commands bucket,
// written by the gateway that delivered it.
type CommandRecord struct {
	CommandID string          `json:"command_id"`
	NodeID    uint64          `json:"node_id"`
	NodeIDStr string          `json:"node_id_str"`
	NodeName  string          `json:"node_name"`
	Kind      string          `json:"kind"`
	PotID     string          `json:"pot_id,omitempty"`
	Command   json.RawMessage `json:"command"`
	SentAt    time.Time       `json:"sent_at"`
	Delivered bool            `json:"delivered"`
	State     string          `json:"state"`
	Progress  []CommandUpdate `json:"progress"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// CommandUpdate is one report from the node about a command.
type CommandUpdate struct {
	At      time.Time `json:"at"`
	Source  string    `json:"source"` // pot_status, node_event or node_status
	Status  string    `json:"status"`
	Message string    `json:"message,omitempty"`
}

// CommandTTL is how long command records are kept.
const CommandTTL = 24 * time.Hour

// TOTP secret sources in TOTPRecord.Source.
const (
	TOTPEnrolled = "enrolled" // added by an operator before the node connected
	TOTPTOFU     = "tofu"     // issued by the gateway at the name's first registration
)

// TOTPRecord is a node name's TOTP secret in the TOTP bucket.
type TOTPRecord struct {
	NodeName  string    `json:"node_name"`
	Secret    string    `json:"secret"` // base32, no padding
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	// LastStep is the last accepted 30 s time step; a code for a step at or
	// before it is refused, so each code is accepted at most once.
	LastStep int64 `json:"last_step"`
}
