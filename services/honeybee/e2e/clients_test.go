package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/services/honeybee/internal/nodesim"
)

// frame is a /stream text frame.
type frame struct {
	Type string          `json:"type"`
	Seq  uint64          `json:"seq"`
	Data json.RawMessage `json:"data"`
}

// streamClient is a WebSocket client of /stream (events only) that
// reconnects through the same address after any failure, resuming from
// the last stream sequence it saw, and records what it received.
type streamClient struct {
	url, token string

	mu         sync.Mutex
	last       uint64         // last stream sequence received
	seqs       map[uint64]int // stream sequence -> times received
	order      []uint64       // sequences in arrival order
	connects   int
	reconnects []time.Duration // from losing the connection to the next ack
	errs       []string        // why connections ended
}

func newStreamClient(addr, token string) *streamClient {
	return &streamClient{url: "ws://" + addr + "/stream?types=event", token: token, seqs: map[uint64]int{}}
}

// run keeps the client connected until ctx is done.
func (c *streamClient) run(ctx context.Context) {
	var lost time.Time
	for ctx.Err() == nil {
		c.mu.Lock()
		url := fmt.Sprintf("%s&since=%d", c.url, c.last)
		c.mu.Unlock()
		err := c.session(ctx, url, &lost)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.errs = append(c.errs, err.Error())
		c.mu.Unlock()
		if lost.IsZero() {
			lost = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// session runs one connection; lost is the time the previous one was lost
// (zero for the first), cleared once this one is acknowledged.
func (c *streamClient) session(ctx context.Context, url string, lost *time.Time) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token}},
	})
	cancel()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("bad frame %q: %w", data, err)
		}
		c.mu.Lock()
		switch f.Type {
		case "ack":
			c.connects++
			if !lost.IsZero() {
				c.reconnects = append(c.reconnects, time.Since(*lost))
				*lost = time.Time{}
			}
		case "event":
			c.seqs[f.Seq]++
			c.order = append(c.order, f.Seq)
			if f.Seq > c.last {
				c.last = f.Seq
			}
		case "error":
			c.mu.Unlock()
			return fmt.Errorf("error frame: %s", data)
		}
		c.mu.Unlock()
	}
}

// stats summarizes what the client received for sequences 1..want.
type clientStats struct {
	received, distinct, missing, duplicated, outOfOrder int
	connects                                            int
	reconnects                                          []time.Duration
}

func (c *streamClient) stats(want uint64) clientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := clientStats{received: len(c.order), distinct: len(c.seqs), connects: c.connects, reconnects: append([]time.Duration(nil), c.reconnects...)}
	for s := uint64(1); s <= want; s++ {
		if c.seqs[s] == 0 {
			st.missing++
		}
	}
	for _, n := range c.seqs {
		if n > 1 {
			st.duplicated += n - 1
		}
	}
	for i := 1; i < len(c.order); i++ {
		if c.order[i] <= c.order[i-1] {
			st.outOfOrder++
		}
	}
	return st
}

func (c *streamClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seqs)
}

// sender is a node that sends numbered events at a steady pace and, when
// the connection drops, reconnects and goes on. It records every sequence
// number it handed to the socket.
type sender struct {
	addr string
	id   uint64
	name string
	pot  string

	mu          sync.Mutex
	node        *nodesim.Node
	sent        int
	drops       []time.Time     // when a connection was lost
	reconnected []time.Duration // from loss to the next accepted registration
}

func newSender(addr string, id uint64) *sender {
	return &sender{addr: addr, id: id, name: fmt.Sprintf("e2e-node-%d", id), pot: "cowrie-01"}
}

// connect dials until registered or ctx is done.
func (s *sender) connect(ctx context.Context) error {
	for {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := nodesim.Dial(dctx, s.addr, s.id, s.name)
		cancel()
		if err == nil {
			s.mu.Lock()
			if len(s.drops) > len(s.reconnected) {
				s.reconnected = append(s.reconnected, time.Since(s.drops[len(s.drops)-1]))
			}
			s.node = n
			s.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *sender) current() *nodesim.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

// keepConnected reconnects whenever the connection drops, until ctx is
// done; it closes the last connection on return.
func (s *sender) keepConnected(ctx context.Context) {
	defer func() {
		if n := s.current(); n != nil {
			n.Close()
		}
	}()
	for {
		n := s.current()
		select {
		case <-ctx.Done():
			return
		case <-n.Done():
		}
		s.mu.Lock()
		s.drops = append(s.drops, time.Now())
		s.mu.Unlock()
		if s.connect(ctx) != nil {
			return
		}
	}
}

// send sends count events, one every interval, on the current connection.
// A write error is returned (the event is not counted as sent).
func (s *sender) send(ctx context.Context, count int, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; i < count; i++ {
		s.mu.Lock()
		seq := s.sent
		s.mu.Unlock()
		if err := s.current().SendEvent(s.pot, seq); err != nil {
			return fmt.Errorf("node %d event %d: %w", s.id, seq, err)
		}
		s.mu.Lock()
		s.sent++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (s *sender) sentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

var errTimeout = errors.New("timeout")
