package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// getRequest is JetStream's direct get request (JSApiMsgGetRequest).
type getRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// rawMsg is one message of a direct get answer.
type rawMsg struct {
	seq  uint64
	ts   time.Time
	data []byte
}

func (m *rawMsg) clone() rawMsg { return *m } // data is owned by its nats.Msg already

// maxBytes bounds one batch answer.
const maxBytes = 16 << 20

// get sends a batch direct get and calls f with each message in sequence
// order until f returns false or the batch ends. It returns the number of
// messages received. A batch that finds nothing returns 0 and no error.
func (s *Store) get(ctx context.Context, req getRequest, f func(*rawMsg) bool) (int, error) {
	if req.Batch <= 0 {
		req.Batch = 1
	}
	req.MaxBytes = maxBytes
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	inbox := s.nc.NewInbox() // not NewRespInbox: the request mux would receive the batch too
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+s.name, inbox, body); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	n := 0
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return n, fmt.Errorf("%w: direct get: %w", ErrUnavailable, err)
		}
		if status := msg.Header.Get("Status"); status != "" && len(msg.Data) == 0 {
			switch status {
			case "204", "404": // end of batch; nothing (more) found
				return n, nil
			case "503":
				return n, fmt.Errorf("%w: %w", ErrUnavailable, nats.ErrNoResponders)
			default:
				return n, fmt.Errorf("%w: direct get: %s %s", ErrUnavailable, status, msg.Header.Get("Description"))
			}
		}
		m := rawMsg{data: msg.Data}
		m.seq, err = strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return n, fmt.Errorf("%w: direct get: bad sequence header", ErrUnavailable)
		}
		m.ts, _ = time.Parse(time.RFC3339Nano, msg.Header.Get("Nats-Time-Stamp"))
		n++
		if !f(&m) {
			return n, nil
		}
	}
}
