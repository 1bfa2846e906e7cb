package hub

import (
	"errors"
	"strconv"
)

// Kind is the kind of data a frame carries; kinds combine as a bit set in
// a Filter.
type Kind uint8

// Kinds of frames. A frame of kind 0 is an answer to one client (ack,
// error), sent with Client.Send.
const (
	KindEvent Kind = 1 << iota // an attack event from the events stream
	KindNode                   // a node lifecycle change
	KindPot                    // a pot status change

	// AllKinds is every kind.
	AllKinds = KindEvent | KindNode | KindPot
)

// String returns the kind's name as used in the "type" of a frame.
func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindNode:
		return "node"
	case KindPot:
		return "pot"
	case 0:
		return "control"
	}
	return "unknown"
}

// ParseKind returns the kind named s ("event", "node" or "pot").
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "event":
		return KindEvent, true
	case "node":
		return KindNode, true
	case "pot":
		return KindPot, true
	}
	return 0, false
}

// Frame is one text frame ready to send to every client whose filter
// matches it. Data is shared between clients and never modified.
type Frame struct {
	Kind Kind
	// Seq is the events stream sequence (events only).
	Seq       uint64
	NodeID    uint64
	PotID     string // events and pots
	EventType string // events
	// Data is the whole text frame.
	Data []byte
}

// ErrBadPayload is returned when an upstream payload is not one JSON
// object of valid UTF-8 with members of the expected types; such a message
// is counted and skipped.
var ErrBadPayload = errors.New("bad upstream payload")

// EventFrame builds {"type":"event","seq":seq,"data":payload} from a
// bus.AttackEvent payload.
func EventFrame(seq uint64, payload []byte) (*Frame, error) {
	ev, err := scanObject(payload, fieldNodeID|fieldPotID|fieldEventType)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(payload)+48)
	b = append(b, `{"type":"event","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"data":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return &Frame{Kind: KindEvent, Seq: seq, NodeID: ev.NodeID, PotID: ev.PotID, EventType: ev.EventType, Data: b}, nil
}

// NodeFrame builds {"type":"node","data":payload} from a bus.NodeLifecycle payload.
func NodeFrame(payload []byte) (*Frame, error) {
	n, err := scanObject(payload, fieldNodeID)
	if err != nil {
		return nil, err
	}
	return &Frame{Kind: KindNode, NodeID: n.NodeID, Data: wrap("node", payload)}, nil
}

// PotFrame builds {"type":"pot","data":payload} from a bus.PotRecord payload.
func PotFrame(payload []byte) (*Frame, error) {
	p, err := scanObject(payload, fieldNodeID|fieldPotID)
	if err != nil {
		return nil, err
	}
	return &Frame{Kind: KindPot, NodeID: p.NodeID, PotID: p.PotID, Data: wrap("pot", payload)}, nil
}

func wrap(typ string, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+32)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","data":`...)
	b = append(b, payload...)
	return append(b, '}')
}
