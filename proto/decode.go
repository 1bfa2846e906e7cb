package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Errors returned by the decoder, the framing reader and command parsing.
// Each returned error wraps one of these, and a few wrap two (a missing
// version is ErrNotEnvelope and ErrMissingField; a bad command is
// ErrInvalidCommand and, where it applies, the detail such as
// ErrUnknownVariant or ErrMissingField). Match with errors.Is.
var (
	// ErrNotJSON is returned when a message is not valid JSON.
	ErrNotJSON = errors.New("not JSON")
	// ErrInvalidUTF8 is returned when a message is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrNotEnvelope is returned when valid JSON is not {"version", "message"}.
	ErrNotEnvelope = errors.New("not an envelope")
	// ErrUnknownVariant is returned for a message or command tag this package does not know.
	ErrUnknownVariant = errors.New("unknown variant")
	// ErrMissingField is returned when a required field is absent or null.
	ErrMissingField = errors.New("missing required field")
	// ErrInvalidField is returned when a field has the wrong type or an
	// out-of-range value (a node_id beyond u64, a negative port, ...).
	ErrInvalidField = errors.New("invalid field")
	// ErrTooDeep is returned when a message nests deeper than the limit.
	ErrTooDeep = errors.New("nested too deeply")
	// ErrTooLarge is returned when a message is larger than the limit. The
	// framing reader returns it when the stream can no longer be trusted.
	ErrTooLarge = errors.New("message too large")
	// ErrInvalidCommand is returned when a node command cannot be sent.
	ErrInvalidCommand = errors.New("invalid command")
)

// Default limits.
const (
	// DefaultMaxSize is the default largest accepted message, in bytes.
	DefaultMaxSize = 64 << 10
	// DefaultMaxDepth is the default deepest nesting of objects and arrays.
	DefaultMaxDepth = 32
)

// Decoder decodes envelopes under limits. The zero value uses the defaults.
type Decoder struct {
	// MaxSize is the largest message accepted, in bytes (default DefaultMaxSize).
	MaxSize int
	// MaxDepth is the deepest nesting accepted (default DefaultMaxDepth).
	MaxDepth int
}

// Decode decodes one envelope with the default limits.
func Decode(data []byte) (Envelope, error) { return Decoder{}.Decode(data) }

// Decode decodes one envelope. It accepts every dialect of Protocol v2
// (node, core and backend variants). It never panics; its memory use is
// bounded by a small multiple of len(data), which is itself bounded by MaxSize.
func (d Decoder) Decode(data []byte) (Envelope, error) { return d.decode(data, true) }

// decode decodes with or without the fast path (see scan.go); tests check
// that both give the same result.
func (d Decoder) decode(data []byte, fast bool) (Envelope, error) {
	maxSize, maxDepth := d.MaxSize, d.MaxDepth
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if len(data) > maxSize {
		return Envelope{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)
	}
	if !utf8.Valid(data) {
		return Envelope{}, ErrInvalidUTF8
	}
	trimmed := bytes.TrimSpace(data)
	if fast {
		// The fast path measures the nesting as it goes, the same way
		// checkDepth does; anything too deep takes the general path,
		// which reports it.
		version, tag, payload, depth, ok := fastEnvelope(trimmed)
		if ok && depth <= maxDepth {
			msg, err := decodeVariantFast(tag, payload)
			if err != nil {
				return Envelope{}, err
			}
			return Envelope{Version: version, Message: msg}, nil
		}
	}
	if err := checkDepth(data, maxDepth); err != nil {
		return Envelope{}, err
	}
	data = trimmed
	if len(data) == 0 || data[0] != '{' {
		if json.Valid(data) {
			return Envelope{}, fmt.Errorf("%w: top level is not an object", ErrNotEnvelope)
		}
		return Envelope{}, ErrNotJSON
	}
	var raw struct {
		Version *json.RawMessage `json:"version"`
		Message json.RawMessage  `json:"message"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Envelope{}, jsonErr(err)
	}
	if raw.Version == nil || isNull(*raw.Version) {
		return Envelope{}, fmt.Errorf("%w: %w: version", ErrNotEnvelope, ErrMissingField)
	}
	var version int
	if err := json.Unmarshal(*raw.Version, &version); err != nil {
		return Envelope{}, fmt.Errorf("%w: version must be an integer", ErrInvalidField)
	}
	if raw.Message == nil || isNull(raw.Message) {
		return Envelope{}, fmt.Errorf("%w: %w: message", ErrNotEnvelope, ErrMissingField)
	}
	msg, err := decodeMessage(raw.Message)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Version: version, Message: msg}, nil
}

func decodeMessage(data []byte) (Message, error) {
	tag, payload, err := splitVariant(data)
	if err != nil {
		return nil, err
	}
	return decodeVariant(tag, payload)
}

// decodeVariant decodes the payload of the variant tag. The result never
// shares memory with payload.
func decodeVariant(tag string, payload json.RawMessage) (Message, error) {
	switch tag {
	case "NodeRegistration":
		return decodeRegistration(payload)
	case "NodeStatusUpdate":
		var in struct {
			NodeID *uint64     `json:"node_id"`
			Status *NodeStatus `json:"status"`
		}
		if err := unmarshalPayload(tag, payload, &in); err != nil {
			return nil, err
		}
		if err := required(tag, "node_id", in.NodeID == nil, "status", in.Status == nil); err != nil {
			return nil, err
		}
		if !in.Status.Valid() {
			return nil, fmt.Errorf("%w: %s: unknown status %q", ErrInvalidField, tag, string(*in.Status))
		}
		return &NodeStatusUpdate{NodeID: *in.NodeID, Status: *in.Status}, nil
	case "NodeEvent":
		return decodeNodeEvent(payload)
	case "NodeDrop":
		if payload != nil && !isNull(payload) && !isEmptyObject(payload) {
			return nil, fmt.Errorf("%w: NodeDrop takes no payload", ErrInvalidField)
		}
		return &NodeDrop{}, nil
	case "PotStatusUpdate":
		var in struct {
			NodeID  *uint64 `json:"node_id"`
			PotID   *string `json:"pot_id"`
			PotType string  `json:"pot_type"`
			Status  string  `json:"status"`
			Message *string `json:"message"`
		}
		if err := unmarshalPayload(tag, payload, &in); err != nil {
			return nil, err
		}
		if err := required(tag, "node_id", in.NodeID == nil, "pot_id", in.PotID == nil); err != nil {
			return nil, err
		}
		return &PotStatusUpdate{NodeID: *in.NodeID, PotID: *in.PotID, PotType: in.PotType,
			Status: PotStatus(in.Status), Message: in.Message}, nil
	case "PotEvent":
		return decodePotEvent(payload)
	case "RegistrationAck":
		var in struct {
			NodeID   *uint64 `json:"node_id"`
			Accepted *bool   `json:"accepted"`
			Message  *string `json:"message"`
			TOTPKey  *string `json:"totp_key"`
		}
		if err := unmarshalPayload(tag, payload, &in); err != nil {
			return nil, err
		}
		if err := required(tag, "node_id", in.NodeID == nil, "accepted", in.Accepted == nil); err != nil {
			return nil, err
		}
		return &RegistrationAck{NodeID: *in.NodeID, Accepted: *in.Accepted, Message: deref(in.Message), TOTPKey: deref(in.TOTPKey)}, nil
	case "NodeCommand":
		var in struct {
			NodeID  *uint64         `json:"node_id"`
			Command json.RawMessage `json:"command"`
		}
		if err := unmarshalPayload(tag, payload, &in); err != nil {
			return nil, err
		}
		if err := required(tag, "node_id", in.NodeID == nil, "command", in.Command == nil || isNull(in.Command)); err != nil {
			return nil, err
		}
		var c Command
		if err := c.UnmarshalJSON(in.Command); err != nil {
			return nil, err
		}
		return &NodeCommand{NodeID: *in.NodeID, Command: c}, nil
	case "BackendRegistration", "BackendCommand", "BackendDrop", "BackendResponse":
		return decodeBackend(tag, payload)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownVariant, tag)
}

func decodeRegistration(payload []byte) (Message, error) {
	const tag = "NodeRegistration"
	var in struct {
		NodeID   *uint64 `json:"node_id"`
		NodeName *string `json:"node_name"`
		Address  string  `json:"address"`
		Port     uint16  `json:"port"`
		NodeType *string `json:"node_type"`
		TOTPCode *string `json:"totp_code"`
	}
	if err := unmarshalPayload(tag, payload, &in); err != nil {
		return nil, err
	}
	if err := required(tag, "node_id", in.NodeID == nil, "node_name", in.NodeName == nil, "node_type", in.NodeType == nil); err != nil {
		return nil, err
	}
	return &NodeRegistration{NodeID: *in.NodeID, NodeName: *in.NodeName, Address: in.Address, Port: in.Port,
		NodeType: NodeType(*in.NodeType), TOTPCode: deref(in.TOTPCode)}, nil
}

// decodeNodeEvent reads the three NodeEvent forms: "Started";
// {"Alarm": {"description": ...}}; {"type": "Error", "message": ...}.
func decodeNodeEvent(payload []byte) (Message, error) {
	const tag = "NodeEvent"
	if payload == nil || isNull(payload) {
		return nil, fmt.Errorf("%w: %s: payload", ErrMissingField, tag)
	}
	var flat struct {
		Type        *string `json:"type"`
		Message     *string `json:"message"`
		Description *string `json:"description"`
	}
	if payload[0] == '{' {
		if err := unmarshalPayload(tag, payload, &flat); err != nil {
			return nil, err
		}
	}
	var ev NodeEvent
	if flat.Type != nil {
		ev = NodeEvent{Type: NodeEventType(*flat.Type), Message: deref(flat.Message), Description: deref(flat.Description)}
	} else {
		inner, body, err := splitVariant(payload)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		ev.Type = NodeEventType(inner)
		if body != nil && !isNull(body) {
			flat.Message, flat.Description = nil, nil
			if err := unmarshalPayload(tag, body, &flat); err != nil {
				return nil, err
			}
			ev.Message, ev.Description = deref(flat.Message), deref(flat.Description)
		}
	}
	switch ev.Type {
	case NodeEventStarted, NodeEventStopped, NodeEventAlarm, NodeEventError:
		return &ev, nil
	}
	return nil, fmt.Errorf("%w: NodeEvent %q", ErrUnknownVariant, string(ev.Type))
}

// decodePotEvent reads the compact form (event, Unix seconds, metadata)
// and the documented form (event_type, RFC 3339, data).
func decodePotEvent(payload []byte) (Message, error) {
	var in struct {
		NodeID    *uint64         `json:"node_id"`
		PotID     *string         `json:"pot_id"`
		PotType   string          `json:"pot_type"`
		EventType *string         `json:"event_type"`
		Event     *string         `json:"event"`
		Message   *string         `json:"message"`
		Timestamp timestamp       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
		Metadata  json.RawMessage `json:"metadata"`
	}
	if err := unmarshalPayload("PotEvent", payload, &in); err != nil {
		return nil, err
	}
	f := potEventFields{PotType: in.PotType, Message: in.Message, Timestamp: time.Time(in.Timestamp),
		Data: in.Data, Metadata: in.Metadata}
	f.NodeID, f.HasNodeID = derefOK(in.NodeID)
	f.PotID, f.HasPotID = derefOK(in.PotID)
	f.EventType, f.HasEventType = derefOK(in.EventType)
	f.Event, f.HasEvent = derefOK(in.Event)
	return f.event()
}

// potEventFields are the members of a PotEvent payload as decoded, before
// the two forms are told apart. A Has field is false for a member that is
// absent or null. Data and Metadata must not share memory with the input.
type potEventFields struct {
	NodeID    uint64
	PotID     string
	PotType   string
	EventType string
	Event     string
	Message   *string
	Timestamp time.Time
	Data      json.RawMessage
	Metadata  json.RawMessage

	HasNodeID, HasPotID, HasEventType, HasEvent bool
}

// event checks the members and returns them as a PotEvent.
func (in *potEventFields) event() (Message, error) {
	const tag = "PotEvent"
	if err := required(tag, "node_id", !in.HasNodeID, "pot_id", !in.HasPotID,
		"event_type", !in.HasEventType && !in.HasEvent); err != nil {
		return nil, err
	}
	ev := &PotEvent{NodeID: in.NodeID, PotID: in.PotID, PotType: in.PotType, Message: in.Message, Timestamp: in.Timestamp}
	data := in.Data
	if in.HasEventType {
		ev.EventType = in.EventType
	} else {
		ev.EventType, ev.Form = in.Event, PotEventCompact
		data = in.Metadata
	}
	if data == nil && ev.Form == PotEventDocumented && in.Metadata != nil {
		data = in.Metadata
	}
	if data != nil && !isNull(data) {
		if data[0] != '{' {
			return nil, fmt.Errorf("%w: %s: data must be a JSON object", ErrInvalidField, tag)
		}
		ev.Data = data
	}
	return ev, nil
}

// timestamp is a PotEvent timestamp as parseTimestamp reads it; absent,
// null or unreadable, it is the zero time.
type timestamp time.Time

// UnmarshalJSON never fails: an odd clock must not lose an event.
func (t *timestamp) UnmarshalJSON(raw []byte) error {
	*t = timestamp(parseTimestamp(raw))
	return nil
}

// maxUnixSeconds is the latest Unix timestamp taken as a time (in the year
// 5138); larger numbers are likely milliseconds or garbage.
const maxUnixSeconds = 1e11

// parseTimestamp reads Unix seconds (integer or fractional) or an RFC 3339
// string. Anything else, or a value out of range, gives the zero time: the
// caller then uses the receipt time, so an odd clock never loses an event.
func parseTimestamp(raw json.RawMessage) time.Time {
	if raw == nil || isNull(raw) {
		return time.Time{}
	}
	if raw[0] == '"' {
		var s string
		if len(raw) >= 2 && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 {
			s = string(raw[1 : len(raw)-1]) // no escapes: the JSON string is its bytes
		} else if json.Unmarshal(raw, &s) != nil {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}
		}
		return t.UTC()
	}
	// raw is a JSON value (the payload was checked), so ParseFloat sees
	// either a JSON number or something it rejects (true, {}, [...]).
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxUnixSeconds || math.IsNaN(f) {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// splitVariant splits an externally tagged value: "Tag" gives (Tag, nil),
// {"Tag": payload} gives (Tag, payload). The payload may share memory with
// data.
func splitVariant(data []byte) (string, json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		if tag, payload, ok := singleKey(data); ok {
			return tag, payload, nil
		}
	}
	return splitVariantGeneral(data)
}

// splitVariantGeneral is splitVariant through encoding/json, for every
// form singleKey does not take.
func splitVariantGeneral(data []byte) (string, json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "", nil, fmt.Errorf("%w: empty variant", ErrMissingField)
	}
	switch data[0] {
	case '"':
		var tag string
		if err := json.Unmarshal(data, &tag); err != nil {
			return "", nil, jsonErr(err)
		}
		return tag, nil, nil
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return "", nil, jsonErr(err)
		}
		if len(m) != 1 {
			return "", nil, fmt.Errorf("%w: a variant object needs exactly one key, got %d", ErrInvalidField, len(m))
		}
		for k, v := range m {
			return k, v, nil
		}
	}
	return "", nil, fmt.Errorf("%w: a variant is a string or an object", ErrInvalidField)
}

func unmarshalPayload(tag string, payload []byte, v any) error {
	if payload == nil || isNull(payload) {
		return fmt.Errorf("%w: %s: payload", ErrMissingField, tag)
	}
	if payload[0] != '{' {
		return fmt.Errorf("%w: %s: payload must be an object", ErrInvalidField, tag)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%s: %w", tag, jsonErr(err))
	}
	return nil
}

// required takes (name, missing) pairs and reports the first missing field.
func required(tag string, pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1].(bool) {
			return fmt.Errorf("%w: %s.%s", ErrMissingField, tag, pairs[i].(string))
		}
	}
	return nil
}

// jsonErr maps encoding/json errors onto this package's sentinels.
func jsonErr(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%w: %s at offset %d", ErrNotJSON, syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("%w: %s: %s is not a valid %s", ErrInvalidField, field, typ.Value, typ.Type)
	case errors.Is(err, ErrInvalidCommand), errors.Is(err, ErrUnknownVariant), errors.Is(err, ErrInvalidField), errors.Is(err, ErrMissingField):
		return err
	}
	return fmt.Errorf("%w: %s", ErrInvalidField, err.Error())
}

// checkLimits rejects invalid UTF-8 and nesting deeper than maxDepth,
// before encoding/json sees the data.
func checkLimits(data []byte, maxDepth int) error {
	if !utf8.Valid(data) {
		return ErrInvalidUTF8
	}
	return checkDepth(data, maxDepth)
}

// checkDepth rejects nesting of objects and arrays deeper than maxDepth.
func checkDepth(data []byte, maxDepth int) error {
	depth, inStr, esc := 0, false, false
	for _, c := range data {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("%w: more than %d levels", ErrTooDeep, maxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }

func isEmptyObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) == 0
}

// derefOK returns *p and true, or the zero value and false if p is nil.
func derefOK[T any](p *T) (T, bool) {
	if p == nil {
		var zero T
		return zero, false
	}
	return *p, true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
