package hub

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/honeybee/core/proto"
)

// Filter selects the frames a client receives. Within a field any value
// matches (OR); across fields all must match (AND). An empty field matches
// everything. NodeIDs apply to every kind; PotIDs to events and pots;
// EventTypes (prefixes) to events only. A Filter is immutable once built.
type Filter struct {
	Types      Kind
	NodeIDs    []uint64
	PotIDs     []string
	EventTypes []string
}

// Limits on a filter, so one client cannot make matching expensive.
const (
	MaxFilterValues = 64
	maxValueLen     = 256
)

// ErrBadFilter is returned for a filter value that cannot be used.
var ErrBadFilter = errors.New("bad filter")

// FilterSpec is a filter as a client writes it (query parameters or a
// subscribe message). Node ids are decimal strings (JavaScript cannot
// hold every u64 as a number).
type FilterSpec struct {
	NodeIDs    []string `json:"node_id"`
	PotIDs     []string `json:"pot_id"`
	EventTypes []string `json:"event_type"`
	Types      []string `json:"types"`
}

// Build validates s and returns its filter.
func (s FilterSpec) Build() (*Filter, error) {
	f := &Filter{Types: AllKinds}
	for name, vals := range map[string][]string{"node_id": s.NodeIDs, "pot_id": s.PotIDs, "event_type": s.EventTypes, "types": s.Types} {
		if len(vals) > MaxFilterValues {
			return nil, fmt.Errorf("%w: %s: at most %d values", ErrBadFilter, name, MaxFilterValues)
		}
		for _, v := range vals {
			if len(v) > maxValueLen {
				return nil, fmt.Errorf("%w: %s: value longer than %d bytes", ErrBadFilter, name, maxValueLen)
			}
		}
	}
	for _, v := range s.NodeIDs {
		id, err := proto.ParseNodeID(v)
		if err != nil {
			return nil, fmt.Errorf("%w: node_id %q is not an unsigned 64-bit number", ErrBadFilter, v)
		}
		if !slices.Contains(f.NodeIDs, id) {
			f.NodeIDs = append(f.NodeIDs, id)
		}
	}
	for _, v := range s.PotIDs {
		if !slices.Contains(f.PotIDs, v) {
			f.PotIDs = append(f.PotIDs, v)
		}
	}
	for _, v := range s.EventTypes {
		if v == "" {
			return nil, fmt.Errorf("%w: event_type: empty prefix", ErrBadFilter)
		}
		if !slices.Contains(f.EventTypes, v) {
			f.EventTypes = append(f.EventTypes, v)
		}
	}
	if len(s.Types) > 0 {
		f.Types = 0
		for _, v := range s.Types {
			k, ok := ParseKind(v)
			if !ok {
				return nil, fmt.Errorf("%w: types: %q is not event, node or pot", ErrBadFilter, v)
			}
			f.Types |= k
		}
	}
	return f, nil
}

// Spec returns the filter in its written form (the echo in an ack).
func (f *Filter) Spec() FilterSpec {
	s := FilterSpec{NodeIDs: []string{}, PotIDs: []string{}, EventTypes: []string{}, Types: []string{}}
	for _, id := range f.NodeIDs {
		s.NodeIDs = append(s.NodeIDs, proto.FormatNodeID(id))
	}
	s.PotIDs = append(s.PotIDs, f.PotIDs...)
	s.EventTypes = append(s.EventTypes, f.EventTypes...)
	for _, k := range []Kind{KindEvent, KindNode, KindPot} {
		if f.Types&k != 0 {
			s.Types = append(s.Types, k.String())
		}
	}
	return s
}

// SplitList splits comma-separated query values: ?node_id=1,2&node_id=3.
func SplitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Match reports whether fr passes the filter.
func (f *Filter) Match(fr *Frame) bool {
	if f.Types&fr.Kind == 0 {
		return false
	}
	if len(f.NodeIDs) > 0 && !slices.Contains(f.NodeIDs, fr.NodeID) {
		return false
	}
	if fr.Kind == KindNode {
		return true
	}
	if len(f.PotIDs) > 0 && !slices.Contains(f.PotIDs, fr.PotID) {
		return false
	}
	if fr.Kind != KindEvent || len(f.EventTypes) == 0 {
		return true
	}
	for _, p := range f.EventTypes {
		if strings.HasPrefix(fr.EventType, p) {
			return true
		}
	}
	return false
}
