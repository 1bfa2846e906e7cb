// Package proto is the HoneyBee Protocol v2 wire contract: message types,
// a dialect-tolerant decoder, an encoder that writes what deployed nodes
// parse, and a framing reader for a stream of envelopes.
//
// Every function here is safe for concurrent use; a Reader is not (one per
// connection). The bus contract between services lives in package bus.
package proto

import (
	"encoding/json"
	"time"
)

// Version is the only protocol version this package speaks.
const Version = 2

// Envelope is one protocol message: {"version": 2, "message": <variant>}.
type Envelope struct {
	// Version as sent; the decoder does not reject a mismatch, callers decide.
	Version int
	// Message is one of the variant types of this package (a pointer).
	Message Message
}

// Message is implemented by every variant that can sit in an envelope.
type Message interface {
	// Variant is the external tag of the message, e.g. "NodeRegistration".
	Variant() string
}

// NodeType is the kind of a node.
type NodeType string

// Node types accepted in a registration.
const (
	NodeTypeFull  NodeType = "Full"
	NodeTypeAgent NodeType = "Agent"
)

// Valid reports whether t is a known node type.
func (t NodeType) Valid() bool { return t == NodeTypeFull || t == NodeTypeAgent }

// NodeStatus is a node's self-reported status.
type NodeStatus string

// Node statuses of NodeStatusUpdate.
const (
	NodeConnected NodeStatus = "Connected"
	NodeDeploying NodeStatus = "Deploying"
	NodeRunning   NodeStatus = "Running"
	NodeStopped   NodeStatus = "Stopped"
	NodeFailed    NodeStatus = "Failed"
	NodeUnknown   NodeStatus = "Unknown"
)

// Valid reports whether s is a known node status.
func (s NodeStatus) Valid() bool {
	switch s {
	case NodeConnected, NodeDeploying, NodeRunning, NodeStopped, NodeFailed, NodeUnknown:
		return true
	}
	return false
}

// PotStatus is a honeypot's status.
type PotStatus string

// Pot statuses of PotStatusUpdate. Anything else (notably the empty string
// sent by the deployed Go node) is not a pot state; see PotStatusUpdate.IsState.
const (
	PotInstalling PotStatus = "Installing"
	PotRunning    PotStatus = "Running"
	PotStopped    PotStatus = "Stopped"
	PotFailed     PotStatus = "Failed"
)

// Valid reports whether s is a known pot status.
func (s PotStatus) Valid() bool {
	switch s {
	case PotInstalling, PotRunning, PotStopped, PotFailed:
		return true
	}
	return false
}

// NodeRegistration is the first message of every node session.
type NodeRegistration struct {
	NodeID   uint64   `json:"node_id"`
	NodeName string   `json:"node_name"`
	Address  string   `json:"address"`
	Port     uint16   `json:"port"`
	NodeType NodeType `json:"node_type"`
	// TOTPCode is the optional 6-digit code; empty when absent.
	TOTPCode string `json:"totp_code,omitempty"`
}

// NodeStatusUpdate reports the node's status (also used as a heartbeat).
type NodeStatusUpdate struct {
	NodeID uint64     `json:"node_id"`
	Status NodeStatus `json:"status"`
}

// NodeEventType is the kind of a NodeEvent.
type NodeEventType string

// Node event types.
const (
	NodeEventStarted NodeEventType = "Started"
	NodeEventStopped NodeEventType = "Stopped"
	NodeEventAlarm   NodeEventType = "Alarm"
	NodeEventError   NodeEventType = "Error"
)

// NodeEvent is a node-level event, in any of its three wire forms.
// It carries no node id on the wire: it belongs to the session's node.
type NodeEvent struct {
	Type        NodeEventType `json:"type"`
	Message     string        `json:"message,omitempty"`
	Description string        `json:"description,omitempty"`
}

// NodeDrop announces a voluntary close.
type NodeDrop struct{}

// PotStatusUpdate reports a honeypot's status.
type PotStatusUpdate struct {
	NodeID  uint64    `json:"node_id"`
	PotID   string    `json:"pot_id"`
	PotType string    `json:"pot_type"`
	Status  PotStatus `json:"status"`
	// Message is optional; nil when absent or null.
	Message *string `json:"message,omitempty"`
}

// IsState reports whether the update carries a real pot state. The deployed
// Go node forwards attack events as updates with an empty status: those are
// attack events of unknown type and must not overwrite the pot's status.
func (u *PotStatusUpdate) IsState() bool { return u.Status.Valid() }

// PotEventForm tells which of the two PotEvent dialects was received.
type PotEventForm int

// PotEvent forms.
const (
	// PotEventDocumented has event_type, an RFC 3339 timestamp and data.
	PotEventDocumented PotEventForm = iota
	// PotEventCompact has event, Unix-seconds timestamp, message and metadata.
	PotEventCompact
)

// PotEvent is an attack event reported by a honeypot, in either form.
type PotEvent struct {
	NodeID uint64
	PotID  string
	// PotType is empty in the compact form.
	PotType string
	// EventType is event_type (documented) or event (compact).
	EventType string
	// Message is optional; nil when absent or null.
	Message *string
	// Timestamp is the node's own time; zero when absent or unparseable.
	Timestamp time.Time
	// Data is the documented form's data or the compact form's metadata: a
	// JSON object, or nil when absent.
	Data json.RawMessage
	Form PotEventForm
}

// RegistrationAck answers a NodeRegistration, exactly once.
type RegistrationAck struct {
	NodeID   uint64 `json:"node_id"`
	Accepted bool   `json:"accepted"`
	Message  string `json:"message,omitempty"`
	// TOTPKey is a base32 secret issued by the core; empty when none.
	TOTPKey string `json:"totp_key,omitempty"`
}

// NodeCommand carries a command to a node.
type NodeCommand struct {
	NodeID  uint64  `json:"node_id"`
	Command Command `json:"command"`
}

// Variant implementations.
func (*NodeRegistration) Variant() string { return "NodeRegistration" }
func (*NodeStatusUpdate) Variant() string { return "NodeStatusUpdate" }
func (*NodeEvent) Variant() string        { return "NodeEvent" }
func (*NodeDrop) Variant() string         { return "NodeDrop" }
func (*PotStatusUpdate) Variant() string  { return "PotStatusUpdate" }
func (*PotEvent) Variant() string         { return "PotEvent" }
func (*RegistrationAck) Variant() string  { return "RegistrationAck" }
func (*NodeCommand) Variant() string      { return "NodeCommand" }
