package proto

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"
)

// Marshal returns the envelope {"version":2,"message":...} for m, without
// a trailing newline. Node commands use the object form for unit commands
// ({"Restart": {}}) and a string for pot commands ({"StopPot": "id"}),
// which is what the deployed Go node parses. Optional fields of a
// RegistrationAck are written as null when empty.
func Marshal(m Message) ([]byte, error) {
	return AppendEnvelope(nil, m)
}

// Encode writes m as one envelope followed by a newline.
func Encode(w io.Writer, m Message) error {
	b, err := AppendEnvelope(nil, m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// AppendEnvelope appends the envelope for m to dst. On error it returns
// dst unchanged; a nil message (or a nil pointer) is an error wrapping
// ErrInvalidField.
func AppendEnvelope(dst []byte, m Message) ([]byte, error) {
	if m == nil {
		return dst, fmt.Errorf("%w: nil message", ErrInvalidField)
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		return dst, fmt.Errorf("%w: nil %s", ErrInvalidField, v.Type())
	}
	orig := dst
	dst = append(dst, `{"version":2,"message":`...)
	var payload any
	switch v := m.(type) {
	case *NodeDrop:
		return append(dst, `{"NodeDrop":{}}}`...), nil
	case *BackendDrop:
		return append(dst, `"BackendDrop"}`...), nil
	case *RegistrationAck:
		payload = struct {
			NodeID   uint64  `json:"node_id"`
			Accepted bool    `json:"accepted"`
			Message  *string `json:"message"`
			TOTPKey  *string `json:"totp_key"`
		}{v.NodeID, v.Accepted, nilIfEmpty(v.Message), nilIfEmpty(v.TOTPKey)}
	case *PotEvent:
		payload = potEventWire(v)
	case *BackendCommand:
		payload = backendCommandWire(v)
	case *BackendResponse:
		if v.Success {
			data := v.Data
			if data == nil {
				data = json.RawMessage("null")
			}
			payload = map[string]any{"Success": struct {
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			}{v.Message, data}}
		} else {
			payload = map[string]string{"Failure": v.Failure}
		}
	default:
		payload = v
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return orig, fmt.Errorf("encode %s: %w", m.Variant(), err)
	}
	dst = append(dst, `{"`...)
	dst = append(dst, m.Variant()...)
	dst = append(dst, `":`...)
	dst = append(dst, p...)
	return append(dst, `}}`...), nil
}

func potEventWire(v *PotEvent) any {
	if v.Form == PotEventCompact {
		// Only times the decoder reads back are written: before 1970 or
		// past maxUnixSeconds a Unix timestamp means a broken clock.
		var ts *int64
		if s := v.Timestamp.Unix(); !v.Timestamp.IsZero() && s >= 0 && s <= maxUnixSeconds {
			ts = &s
		}
		return struct {
			NodeID    uint64          `json:"node_id"`
			PotID     string          `json:"pot_id"`
			Event     string          `json:"event"`
			Message   *string         `json:"message"`
			Metadata  json.RawMessage `json:"metadata,omitempty"`
			Timestamp *int64          `json:"timestamp,omitempty"`
		}{v.NodeID, v.PotID, v.EventType, v.Message, v.Data, ts}
	}
	var ts string
	if !v.Timestamp.IsZero() {
		ts = v.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return struct {
		NodeID    uint64          `json:"node_id"`
		PotID     string          `json:"pot_id"`
		PotType   string          `json:"pot_type"`
		EventType string          `json:"event_type"`
		Message   *string         `json:"message,omitempty"`
		Timestamp string          `json:"timestamp,omitempty"`
		Data      json.RawMessage `json:"data,omitempty"`
	}{v.NodeID, v.PotID, v.PotType, v.EventType, v.Message, ts, v.Data}
}

func backendCommandWire(v *BackendCommand) any {
	switch v.Kind {
	case BackendGetNode, BackendRemoveNode:
		return map[string]any{string(v.Kind): map[string]uint64{"node_id": v.NodeID}}
	case BackendGetNodesByStatus:
		return map[string]any{string(v.Kind): map[string]string{"status": string(v.Status)}}
	case BackendNodeCommand:
		return map[string]any{string(v.Kind): map[string]any{"node_id": v.NodeID, "command": v.Command}}
	case BackendBroadcastCommand:
		return map[string]any{string(v.Kind): map[string]any{"command": v.Command}}
	}
	return string(v.Kind)
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// FormatNodeID formats a node id as the decimal string carried next to the
// number for JavaScript readers (which lose precision past 2^53).
func FormatNodeID(id uint64) string { return strconv.FormatUint(id, 10) }

// ParseNodeID parses a decimal node id; it fails for anything that is not
// an unsigned 64-bit number.
func ParseNodeID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: node id %q is not an unsigned 64-bit number", ErrInvalidField, s)
	}
	return id, nil
}
