package hub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Client is one subscriber of a hub.
type Client struct {
	hub    *Hub
	conn   Conn
	filter atomic.Pointer[Filter]
	wg     sync.WaitGroup // writer, ping and close goroutines

	mu sync.Mutex
	// queue holds frames not yet taken by the writer; pending counts those
	// plus the ones the writer holds, and is bounded by QueueSize.
	queue      []*Frame
	pending    int
	writing    bool // a writer goroutine is running
	hold       bool // frames queue but are not written (before Release)
	skipEvents bool // events are not even queued (resume, before StartBuffering)
	// replayed is the last sequence a replay covered: events at or below
	// it are dropped, queued or still to come from a lagging live feed.
	replayed uint64
	closed   bool
	timer    *time.Timer
	// deadline sets the write deadline of the underlying network
	// connection; with it the writer bounds writes without a context
	// (and its allocations) per frame.
	deadline func(time.Time) error
}

// UseWriteDeadline makes the writer bound its writes with set (the
// network connection's SetWriteDeadline) instead of a context per frame.
// Call it before Release.
func (c *Client) UseWriteDeadline(set func(time.Time) error) {
	c.mu.Lock()
	c.deadline = set
	c.mu.Unlock()
}

// Filter returns the client's current filter.
func (c *Client) Filter() *Filter { return c.filter.Load() }

// SetFilter replaces the client's filter; it applies to the next frame published.
func (c *Client) SetFilter(f *Filter) { c.filter.Store(f) }

// StartBuffering makes a resuming client queue live events from now on
// and returns the sequence of the last event published before that: the
// replay must cover every event up to it.
func (c *Client) StartBuffering() uint64 {
	h := c.hub
	h.mu.Lock() // no Publish in flight: the boundary is exact
	defer h.mu.Unlock()
	c.mu.Lock()
	c.skipEvents = false
	c.mu.Unlock()
	return h.lastSeq.Load()
}

// Release ends the hold: events with a sequence at or below delivered
// (covered by a replay) are dropped, those queued and those the live feed
// still brings; the rest are written, and pings start.
func (c *Client) Release(delivered uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.replayed = delivered
	if delivered > 0 {
		c.queue = slices.DeleteFunc(c.queue, func(f *Frame) bool { return f.Kind == KindEvent && f.Seq <= delivered })
		c.pending = len(c.queue)
	}
	c.hold = false
	c.skipEvents = false
	c.startWriter()
	if iv := c.hub.opts.PingInterval; iv > 0 {
		c.timer = time.AfterFunc(iv, c.ping)
	}
}

// offer queues fr if it matches; it never blocks.
func (c *Client) offer(fr *Frame) {
	if !c.filter.Load().Match(fr) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fr.Kind == KindEvent && (c.skipEvents || fr.Seq <= c.replayed) {
		return
	}
	c.enqueueLocked(fr)
}

// enqueueLocked queues fr, or closes c as a slow consumer when its queue
// is full. c.mu is held.
func (c *Client) enqueueLocked(fr *Frame) {
	if c.closed {
		return
	}
	if c.pending >= c.hub.opts.QueueSize {
		c.queue = nil
		if c.hub.opts.OnSlow != nil {
			c.hub.opts.OnSlow()
		}
		c.closeLocked(websocket.StatusPolicyViolation, SlowReason)
		return
	}
	c.queue = append(c.queue, fr)
	c.pending++
	c.startWriter()
}

// startWriter starts the writer goroutine if frames wait and none runs.
// c.mu is held.
func (c *Client) startWriter() {
	if c.writing || c.hold || c.closed || len(c.queue) == 0 {
		return
	}
	c.writing = true
	c.wg.Add(1)
	go c.write()
}

// write sends queued frames until the queue is empty, then exits.
func (c *Client) write() {
	defer c.wg.Done()
	var batch []*Frame
	for {
		c.mu.Lock()
		if c.closed || len(c.queue) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		if cap(c.queue) > 64 {
			c.queue = nil // do not keep a large buffer for a client that may go idle
		}
		c.mu.Unlock()
		if err := c.writeBatch(batch); err != nil {
			// The connection is closed on any write error; the handler's
			// read fails and it removes the client.
			c.mu.Lock()
			c.closed = true
			c.queue = nil
			c.writing = false
			c.mu.Unlock()
			return
		}
	}
}

// writeBatch writes frames, each within the write timeout.
func (c *Client) writeBatch(batch []*Frame) error {
	timeout := c.hub.opts.WriteTimeout
	if c.deadline != nil {
		defer func() { _ = c.deadline(time.Time{}) }()
	}
	for i, fr := range batch {
		var err error
		if c.deadline != nil {
			if err = c.deadline(time.Now().Add(timeout)); err == nil {
				err = c.conn.Write(context.Background(), websocket.MessageText, fr.Data)
			}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err = c.conn.Write(ctx, websocket.MessageText, fr.Data)
			cancel()
		}
		batch[i] = nil
		if err != nil {
			clear(batch)
			return err
		}
		if c.hub.opts.OnSent != nil {
			c.hub.opts.OnSent(fr)
		}
		c.mu.Lock()
		c.pending--
		c.mu.Unlock()
	}
	return nil
}

// ping runs on the client's timer: a peer that does not answer within the
// write timeout is closed.
func (c *Client) ping() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.opts.WriteTimeout)
	err := c.conn.Ping(ctx)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.closed = true
		c.queue = nil
		_ = c.conn.CloseNow()
		return
	}
	if !c.closed {
		c.timer.Reset(c.hub.opts.PingInterval)
	}
}

func (c *Client) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason)
}

// closeLocked marks c closed and closes its connection with a handshake in
// a goroutine (it waits for the peer). c.mu is held.
func (c *Client) closeLocked(code websocket.StatusCode, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = c.conn.Close(code, reason)
	}()
}

// Send queues a frame for c whatever its filter (an answer to the client).
// Like Publish it never blocks: a full queue closes c as a slow consumer.
func (c *Client) Send(fr *Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enqueueLocked(fr)
}
