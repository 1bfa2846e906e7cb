package proto

import (
	"encoding/json"
	"fmt"
)

// BackendType is the kind of a dashboard: Web, Api, Monitoring, Cli, or a
// custom name (wire form {"Custom": "name"}).
type BackendType struct {
	Kind   string // Web, Api, Monitoring, Cli or Custom
	Custom string // set when Kind is Custom
}

// MarshalJSON writes "Web" or {"Custom": "name"}.
func (t BackendType) MarshalJSON() ([]byte, error) {
	if t.Kind == "Custom" {
		return json.Marshal(map[string]string{"Custom": t.Custom})
	}
	return json.Marshal(t.Kind)
}

// UnmarshalJSON reads "Web", "Api", "Monitoring", "Cli" or {"Custom": "name"}.
func (t *BackendType) UnmarshalJSON(data []byte) error {
	bt, err := parseBackendType(data)
	if err != nil {
		return err
	}
	*t = bt
	return nil
}

func parseBackendType(data []byte) (BackendType, error) {
	kind, body, err := splitVariant(data)
	if err != nil {
		return BackendType{}, err
	}
	bt := BackendType{Kind: kind}
	switch kind {
	case "Web", "Api", "Monitoring", "Cli":
	case "Custom":
		if body == nil || json.Unmarshal(body, &bt.Custom) != nil {
			return BackendType{}, fmt.Errorf("%w: backend_type Custom takes a name", ErrInvalidField)
		}
	default:
		return BackendType{}, fmt.Errorf("%w: backend_type %q", ErrUnknownVariant, kind)
	}
	return bt, nil
}

// BackendRegistration opens a dashboard session.
type BackendRegistration struct {
	BackendName string      `json:"backend_name"`
	BackendType BackendType `json:"backend_type"`
}

// BackendCommandKind names a backend command.
type BackendCommandKind string

// Backend commands.
const (
	BackendGetNodes             BackendCommandKind = "GetNodes"
	BackendGetNodeCount         BackendCommandKind = "GetNodeCount"
	BackendGetActiveConnections BackendCommandKind = "GetActiveConnections"
	BackendGetNode              BackendCommandKind = "GetNode"
	BackendRemoveNode           BackendCommandKind = "RemoveNode"
	BackendGetNodesByStatus     BackendCommandKind = "GetNodesByStatus"
	BackendNodeCommand          BackendCommandKind = "NodeCommand"
	BackendBroadcastCommand     BackendCommandKind = "BroadcastCommand"
)

// BackendCommand is a dashboard request. Fields are set per Kind: NodeID
// for GetNode, RemoveNode and NodeCommand; Status for GetNodesByStatus;
// Command for NodeCommand and BroadcastCommand.
type BackendCommand struct {
	Kind    BackendCommandKind
	NodeID  uint64
	Status  NodeStatus
	Command Command
}

// BackendDrop closes a dashboard session.
type BackendDrop struct{}

// BackendResponse answers a dashboard: Success (with a message and data)
// or Failure (a reason).
type BackendResponse struct {
	Success bool
	Message string
	// Data is a JSON value (object) sent with a success; nil for none.
	Data json.RawMessage
	// Failure is the reason of a failure.
	Failure string
}

func (*BackendRegistration) Variant() string { return "BackendRegistration" }
func (*BackendCommand) Variant() string      { return "BackendCommand" }
func (*BackendDrop) Variant() string         { return "BackendDrop" }
func (*BackendResponse) Variant() string     { return "BackendResponse" }

func decodeBackend(tag string, payload json.RawMessage) (Message, error) {
	switch tag {
	case "BackendDrop":
		if payload != nil && !isNull(payload) && !isEmptyObject(payload) {
			return nil, fmt.Errorf("%w: BackendDrop takes no payload", ErrInvalidField)
		}
		return &BackendDrop{}, nil
	case "BackendRegistration":
		var in struct {
			BackendName *string         `json:"backend_name"`
			BackendType json.RawMessage `json:"backend_type"`
		}
		if err := unmarshalPayload(tag, payload, &in); err != nil {
			return nil, err
		}
		if err := required(tag, "backend_name", in.BackendName == nil, "backend_type", in.BackendType == nil || isNull(in.BackendType)); err != nil {
			return nil, err
		}
		bt, err := parseBackendType(in.BackendType)
		if err != nil {
			return nil, fmt.Errorf("%s.backend_type: %w", tag, err)
		}
		return &BackendRegistration{BackendName: *in.BackendName, BackendType: bt}, nil
	case "BackendCommand":
		return decodeBackendCommand(payload)
	case "BackendResponse":
		kind, body, err := splitVariant(payload)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		switch kind {
		case "Success":
			var in struct {
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			}
			if err := unmarshalPayload(tag, body, &in); err != nil {
				return nil, err
			}
			data := in.Data
			if isNull(data) {
				data = nil // "data": null is no data, as documented on BackendResponse.Data
			}
			return &BackendResponse{Success: true, Message: in.Message, Data: data}, nil
		case "Failure":
			var reason string
			if body == nil || json.Unmarshal(body, &reason) != nil {
				return nil, fmt.Errorf("%w: Failure takes a reason string", ErrInvalidField)
			}
			return &BackendResponse{Failure: reason}, nil
		}
		return nil, fmt.Errorf("%w: BackendResponse %q", ErrUnknownVariant, kind)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownVariant, tag)
}

func decodeBackendCommand(payload json.RawMessage) (Message, error) {
	const tag = "BackendCommand"
	if payload == nil || isNull(payload) {
		return nil, fmt.Errorf("%w: %s: payload", ErrMissingField, tag)
	}
	kind, body, err := splitVariant(payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	c := &BackendCommand{Kind: BackendCommandKind(kind)}
	var in struct {
		NodeID  *uint64         `json:"node_id"`
		Status  *string         `json:"status"`
		Command json.RawMessage `json:"command"`
	}
	needs := func(field string, missing bool) error {
		return required(kind, field, missing)
	}
	switch c.Kind {
	case BackendGetNodes, BackendGetNodeCount, BackendGetActiveConnections:
		if body != nil && !isNull(body) && !isEmptyObject(body) {
			return nil, fmt.Errorf("%w: %s takes no payload", ErrInvalidField, kind)
		}
		return c, nil
	case BackendGetNode, BackendRemoveNode:
		if err := unmarshalPayload(kind, body, &in); err != nil {
			return nil, err
		}
		if err := needs("node_id", in.NodeID == nil); err != nil {
			return nil, err
		}
		c.NodeID = *in.NodeID
	case BackendGetNodesByStatus:
		if err := unmarshalPayload(kind, body, &in); err != nil {
			return nil, err
		}
		if err := needs("status", in.Status == nil); err != nil {
			return nil, err
		}
		c.Status = NodeStatus(*in.Status)
		if !c.Status.Valid() {
			return nil, fmt.Errorf("%w: unknown node status %q", ErrInvalidField, *in.Status)
		}
	case BackendNodeCommand, BackendBroadcastCommand:
		if err := unmarshalPayload(kind, body, &in); err != nil {
			return nil, err
		}
		if c.Kind == BackendNodeCommand {
			if err := needs("node_id", in.NodeID == nil); err != nil {
				return nil, err
			}
			c.NodeID = *in.NodeID
		}
		if err := needs("command", in.Command == nil || isNull(in.Command)); err != nil {
			return nil, err
		}
		if err := c.Command.UnmarshalJSON(in.Command); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: BackendCommand %q", ErrUnknownVariant, kind)
	}
	return c, nil
}
