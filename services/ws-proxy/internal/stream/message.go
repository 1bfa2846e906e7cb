package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/honeybee/core/services/ws-proxy/internal/hub"
)

// Messages a client may send on /stream, and the answers.
//
//	-> {"type":"subscribe","id":"1","node_id":["42"],"pot_id":["cowrie-01"],"event_type":["cowrie.login."],"types":["event","pot"]}
//	<- {"type":"ack","id":"1","filter":{"node_id":["42"],"pot_id":["cowrie-01"],"event_type":["cowrie.login."],"types":["event","pot"]}}
//	<- {"type":"error","id":"1","error":"bad filter: node_id \"x\" is not an unsigned 64-bit number"}
//
// A subscribe replaces the whole filter; an omitted field matches
// everything. Values may be a string, a number (node_id) or an array of
// them.

// clientMessage is a message from a client.
type clientMessage struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	NodeIDs    list            `json:"node_id"`
	PotIDs     list            `json:"pot_id"`
	EventTypes list            `json:"event_type"`
	Types      list            `json:"types"`
}

// list accepts "a", 42, ["a", 42] and null.
type list []string

func (l *list) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		out := make(list, 0, len(raw))
		for _, r := range raw {
			s, err := scalar(r)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*l = out
		return nil
	}
	if string(b) == "null" {
		*l = nil
		return nil
	}
	s, err := scalar(b)
	if err != nil {
		return err
	}
	*l = list{s}
	return nil
}

var errNotScalar = errors.New("want a string, a number or an array of them")

func scalar(b []byte) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", errNotScalar
	}
	if b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&n); err != nil {
		return "", errNotScalar
	}
	return n.String(), nil
}

// Answer frames.
type ackFrame struct {
	Type   string          `json:"type"` // "ack"
	ID     json.RawMessage `json:"id,omitempty"`
	Filter hub.FilterSpec  `json:"filter"`
	// Since is the resume point of the connection (first ack only).
	Since *uint64 `json:"since,omitempty"`
}

type errorFrame struct {
	Type  string          `json:"type"` // "error"
	ID    json.RawMessage `json:"id,omitempty"`
	Error string          `json:"error"`
}

func encodeAck(id json.RawMessage, f *hub.Filter, since *uint64) []byte {
	b, _ := json.Marshal(ackFrame{Type: "ack", ID: id, Filter: f.Spec(), Since: since})
	return b
}

func encodeError(id json.RawMessage, msg string) []byte {
	b, _ := json.Marshal(errorFrame{Type: "error", ID: id, Error: msg})
	return b
}

// Request is what a client asked for when it connected.
type Request struct {
	Filter *hub.Filter
	// Since is the resume point; nil for live only.
	Since *uint64
}

// ParseQuery reads the connection's query parameters: node_id, pot_id,
// event_type, types (each repeatable or comma-separated) and since.
func ParseQuery(q url.Values) (Request, error) {
	f, err := hub.FilterSpec{
		NodeIDs:    hub.SplitList(q["node_id"]),
		PotIDs:     hub.SplitList(q["pot_id"]),
		EventTypes: hub.SplitList(q["event_type"]),
		Types:      hub.SplitList(q["types"]),
	}.Build()
	if err != nil {
		return Request{}, err
	}
	r := Request{Filter: f}
	if s, ok := q["since"]; ok {
		if len(s) != 1 {
			return Request{}, fmt.Errorf("%w: since: give it once", hub.ErrBadFilter)
		}
		n, err := strconv.ParseUint(s[0], 10, 64)
		if err != nil {
			return Request{}, fmt.Errorf("%w: since %q is not a stream sequence", hub.ErrBadFilter, s[0])
		}
		r.Since = &n
	}
	return r, nil
}
