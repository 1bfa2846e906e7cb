// Package events queries the attack events stream with JetStream direct
// gets: batches read by sequence (and by subject for node and pot
// filters), newest first by walking windows of sequences backwards from
// the end of the stream, so the newest page costs the same with a
// thousand events stored or millions. Times map to sequences with
// JetStream's time lookup. A Store is safe for concurrent use.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by Store methods.
var (
	// ErrUnavailable is returned when the stream cannot be read (no
	// responder for direct gets, a timeout, or a refused request).
	ErrUnavailable = errors.New("events stream unavailable")
)

// Event is an attack event with its place in the stream. It keeps the
// stored JSON and decodes only what filters and statistics need; it
// marshals to the stored object with seq and stored_at added, so a page
// of events is not decoded and encoded again field by field.
type Event struct {
	// Seq is the stream sequence: the position cursors refer to.
	Seq uint64
	// StoredAt is when the stream stored the event; since and until
	// compare against it.
	StoredAt  time.Time
	EventType string
	SrcIP     string
	// Raw is the stored bus.AttackEvent JSON object.
	Raw json.RawMessage
}

// Decode returns the full attack event.
func (e *Event) Decode() (bus.AttackEvent, error) {
	var ev bus.AttackEvent
	err := json.Unmarshal(e.Raw, &ev)
	return ev, err
}

// MarshalJSON writes {"seq": ..., "stored_at": ..., <the stored fields>}.
func (e Event) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(e.Raw)+64)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"stored_at":"`...)
	b = e.StoredAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	rest := bytes.TrimSpace(e.Raw[1:]) // after '{'; offer checked the object
	if len(rest) > 0 && rest[0] != '}' {
		b = append(b, ',')
	}
	return append(b, rest...), nil
}

// Query selects events. The zero value selects every event, oldest first,
// without limit.
type Query struct {
	NodeID *uint64
	PotID  *string
	// EventType matches events whose type starts with it.
	EventType string
	// SrcIP matches events with exactly this source address.
	SrcIP string
	// Since and Until bound StoredAt (inclusive); zero means unbounded.
	Since, Until time.Time
	// Newest returns newest first.
	Newest bool
	// After continues a previous page: with Newest, events with Seq <
	// After; else events with Seq > After. 0 means from the start.
	After uint64
	// Limit is the maximum number of events returned (> 0).
	Limit int
	// MaxScan bounds how many stored events one query examines; a query
	// that stops there returns a cursor to continue from. 0 means Limit*100.
	MaxScan int
}

// Page is the answer to a Query.
type Page struct {
	Events []Event
	// Next is the After of the next page, 0 when there is none.
	Next uint64
	// Scanned is the number of stored events examined.
	Scanned int
	// Limited is true when the query stopped at MaxScan before filling the
	// page: Next continues the scan.
	Limited bool
}

// Store reads the events stream of one contract.
type Store struct {
	nc      *nats.Conn
	stream  jetstream.Stream
	name    string
	c       bus.Contract
	timeout time.Duration
}

// maxBatch is the most messages one direct get returns.
const maxBatch = 1000

// New returns a store reading stream, the events stream of c. timeout
// bounds each request to NATS.
func New(nc *nats.Conn, stream jetstream.Stream, c bus.Contract, timeout time.Duration) *Store {
	return &Store{nc: nc, stream: stream, name: c.EventsStream(), c: c, timeout: timeout}
}

// Bounds returns the first and last sequence of the stream (last is 0 and
// first is 1 when it is empty).
func (s *Store) Bounds(ctx context.Context) (first, last uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	first, last = info.State.FirstSeq, info.State.LastSeq
	if first == 0 {
		first = 1
	}
	return first, last, nil
}

// bounds is Bounds, plus for a node filter the share of events it matches
// (-1 for none), from the same stream info request.
func (s *Store) bounds(ctx context.Context, q Query) (first, last uint64, density float64, err error) {
	if q.NodeID == nil {
		first, last, err = s.Bounds(ctx)
		return first, last, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A node has few pots, so this lists few subjects.
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.subject(q)))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	first, last = max(info.State.FirstSeq, 1), info.State.LastSeq
	var matched uint64
	for _, n := range info.State.Subjects {
		matched += n
	}
	if matched == 0 {
		return first, last, -1, nil
	}
	return first, last, float64(matched) / float64(max(info.State.Msgs, 1)), nil
}

// SeqAt returns the sequence of the first event stored at or after t, or
// 0 when there is none.
func (s *Store) SeqAt(ctx context.Context, t time.Time) (uint64, error) {
	var seq uint64
	t = t.UTC()
	_, err := s.get(ctx, getRequest{StartTime: &t, Batch: 1}, func(m *rawMsg) bool {
		seq = m.seq
		return false
	})
	return seq, err
}

// Query returns one page of events.
func (s *Store) Query(ctx context.Context, q Query) (Page, error) {
	var p Page
	next, scanned, limited, err := s.Scan(ctx, q, func(ev *Event) bool {
		p.Events = append(p.Events, *ev)
		return len(p.Events) < q.Limit
	})
	p.Next, p.Scanned, p.Limited = next, scanned, limited
	return p, err
}

// Scan calls emit with each event matching q, in q's order, until emit
// returns false, Limit events were emitted, the events run out, or MaxScan
// events were examined. It returns the cursor to continue from (0 when
// nothing is left), how many stored events it examined, and whether it
// stopped at MaxScan.
func (s *Store) Scan(ctx context.Context, q Query, emit func(*Event) bool) (next uint64, scanned int, limited bool, err error) {
	if q.Limit <= 0 {
		q.Limit = int(^uint(0) >> 1)
	}
	if q.MaxScan <= 0 {
		q.MaxScan = q.Limit * 100
		if q.MaxScan < q.Limit {
			q.MaxScan = int(^uint(0) >> 1)
		}
	}
	first, last, density, err := s.bounds(ctx, q)
	if err != nil {
		return 0, 0, false, err
	}
	if density < 0 {
		return 0, 0, false, nil // the subject filter matches nothing
	}
	lo, hi := first, last+1 // [lo, hi)
	if !q.Since.IsZero() {
		seq, err := s.SeqAt(ctx, q.Since)
		if err != nil {
			return 0, 0, false, err
		}
		if seq == 0 {
			return 0, 0, false, nil
		}
		lo = max(lo, seq)
	}
	if !q.Until.IsZero() {
		seq, err := s.SeqAt(ctx, q.Until.Add(time.Nanosecond))
		if err != nil {
			return 0, 0, false, err
		}
		if seq != 0 {
			hi = min(hi, seq)
		}
	}
	sc := scanner{s: s, q: q, emit: emit, subject: s.subject(q),
		typeNeedle: needle("event_type", q.EventType), ipNeedle: needle("src_ip", q.SrcIP), density: density}
	if q.Newest {
		if q.After != 0 {
			hi = min(hi, q.After)
		}
		err = sc.backward(ctx, lo, hi)
	} else {
		if q.After != 0 {
			lo = max(lo, q.After+1)
		}
		err = sc.forward(ctx, lo, hi)
	}
	return sc.next, sc.scanned, sc.limited, err
}

// subject is the narrowest subject filter for q, "" for every event.
func (s *Store) subject(q Query) string {
	switch {
	case q.NodeID != nil:
		return s.c.EventsOf(*q.NodeID, q.PotID)
	case q.PotID != nil:
		return s.c.EventsOfPot(*q.PotID)
	}
	return ""
}

type scanner struct {
	s       *Store
	q       Query
	emit    func(*Event) bool
	subject string

	typeNeedle, ipNeedle []byte
	// density is the share of the stream's events the subject filter
	// matches (0 when unknown): it sizes the first window.
	density float64

	emitted int
	scanned int
	next    uint64
	limited bool
}

// offer filters m, emits it when it matches, and reports whether the
// scan goes on.
func (sc *scanner) offer(m *rawMsg) bool {
	data := bytes.TrimSpace(m.data)
	if len(data) < 2 || data[0] != '{' {
		return true // not an attack event: skip it
	}
	// Cheap rejections on the raw bytes first: the gateway writes compact
	// JSON, so a matching event contains the key and the plain value.
	if sc.typeNeedle != nil && !bytes.Contains(data, sc.typeNeedle) {
		return true
	}
	if sc.ipNeedle != nil && !bytes.Contains(data, sc.ipNeedle) {
		return true
	}
	var head struct {
		EventType string `json:"event_type"`
		SrcIP     string `json:"src_ip"`
	}
	if json.Unmarshal(data, &head) != nil {
		return true
	}
	if sc.q.EventType != "" && !strings.HasPrefix(head.EventType, sc.q.EventType) {
		return true
	}
	if sc.q.SrcIP != "" && head.SrcIP != sc.q.SrcIP {
		return true
	}
	ev := Event{Seq: m.seq, StoredAt: m.ts, EventType: head.EventType, SrcIP: head.SrcIP, Raw: data}
	sc.emitted++
	return sc.emit(&ev) && sc.emitted < sc.q.Limit
}

// needle returns the bytes `"key":"value` that compact JSON of a matching
// event contains, or nil when value has characters JSON may escape.
func needle(key, value string) []byte {
	if value == "" {
		return nil
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return nil
		}
	}
	return []byte(`"` + key + `":"` + value)
}

func (sc *scanner) batchSize() int {
	if sc.q.EventType != "" || sc.q.SrcIP != "" {
		return maxBatch // filtered in memory: read ahead
	}
	return min(maxBatch, max(sc.q.Limit-sc.emitted, 16))
}

// forward reads [lo, hi) in sequence order.
func (sc *scanner) forward(ctx context.Context, lo, hi uint64) error {
	pos := lo
	for pos < hi {
		if sc.scanned >= sc.q.MaxScan {
			sc.next, sc.limited = pos-1, true
			return nil
		}
		b := min(uint64(sc.batchSize()), hi-pos, uint64(sc.q.MaxScan-sc.scanned))
		n, stop, lastSeq := 0, false, uint64(0)
		_, err := sc.s.get(ctx, getRequest{Seq: pos, NextFor: sc.subject, Batch: int(b)}, func(m *rawMsg) bool {
			if stop || m.seq >= hi {
				stop = true
				return false
			}
			n++
			sc.scanned++
			lastSeq = m.seq
			if !sc.offer(m) {
				stop = true
				sc.next = m.seq
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		if stop {
			return nil // page full (next set) or past hi (next stays 0)
		}
		if n < int(b) {
			return nil // no more matching events at all
		}
		pos = lastSeq + 1
	}
	return nil
}

// backward reads [lo, hi) newest first: it takes windows of sequences
// ending at hi, reads each window forward (with the subject filter, so the
// server skips other subjects), and emits it in reverse. A window holding
// more matches than one batch is shrunk and re-read; a window with too few
// grows for the next step.
func (sc *scanner) backward(ctx context.Context, lo, hi uint64) error {
	w := uint64(max(sc.q.Limit-sc.emitted, 64))
	if w > maxBatch {
		w = maxBatch
	}
	if sc.density > 0 && sc.density < 1 {
		// Enough sequences to hold the page at the filter's average density.
		w = max(w, uint64(float64(min(sc.q.Limit, maxBatch))/sc.density*1.25)+1)
	}
	var win []rawMsg
	for hi > lo {
		if sc.scanned >= sc.q.MaxScan {
			sc.next, sc.limited = hi, true
			return nil
		}
		start := hi - min(w, hi-lo)
		budget := uint64(max(sc.q.MaxScan-sc.scanned, 1))
		if budget < hi-start && budget < maxBatch {
			start = hi - budget // the last window: one the budget covers
		}
		b := min(hi-start, uint64(maxBatch), budget)
		win = win[:0]
		received, full := 0, false
		_, err := sc.s.get(ctx, getRequest{Seq: start, NextFor: sc.subject, Batch: int(b)}, func(m *rawMsg) bool {
			received++
			if m.seq >= hi {
				full = true // covered the window
				return false
			}
			win = append(win, m.clone())
			return true
		})
		if err != nil {
			return err
		}
		sc.scanned += len(win)
		if received == int(b) && !full && (len(win) == 0 || win[len(win)-1].seq < hi-1) {
			// More than b matches in [start, hi): only a prefix arrived.
			if b < hi-start {
				w = max((hi-start)/4, uint64(b)) // converges: a window of b sequences always fits
				if w >= hi-start {
					w = b
				}
				continue
			}
		}
		before := sc.emitted
		for i := len(win) - 1; i >= 0; i-- {
			if !sc.offer(&win[i]) {
				if win[i].seq > lo {
					sc.next = win[i].seq
				}
				return nil
			}
		}
		// Size the next window by the density seen in this one: enough
		// sequences for the events still wanted, at most 8 times larger,
		// and small enough that its subject matches fit one batch.
		span := hi - start
		hits := uint64(sc.emitted - before)
		need := uint64(max(sc.q.Limit-sc.emitted, 16))
		target := span * 8
		if hits > 0 {
			target = min(target, span*need/hits+1)
		}
		if n := uint64(len(win)); n > 0 {
			target = min(target, span*maxBatch/n)
		}
		w = max(target, 1)
		hi = start
	}
	return nil
}
