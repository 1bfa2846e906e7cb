// Package hub fans frames from the upstream subscriptions of one ws-proxy
// replica out to its WebSocket clients, after the coder/websocket chat
// example: one bounded queue per client, and publishing never blocks (a
// client whose queue is full is closed as a slow consumer).
//
// Publish may be called from several goroutines (one per upstream
// subscription); every other method is safe for concurrent use too. A
// client has no goroutine of its own while idle: a writer goroutine runs
// only while its queue holds frames, and a timer pings it.
package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Conn is the part of a WebSocket connection the hub uses;
// *websocket.Conn implements it.
type Conn interface {
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	Ping(ctx context.Context) error
	Close(code websocket.StatusCode, reason string) error
	CloseNow() error
}

// Options tune the hub. Zero fields take the defaults noted.
type Options struct {
	// QueueSize is the most frames a client may have waiting (default 4096).
	QueueSize int
	// WriteTimeout bounds every write and ping (default 10s).
	WriteTimeout time.Duration
	// PingInterval is how often an otherwise quiet client is pinged
	// (default 30s; negative disables pings).
	PingInterval time.Duration
	// OnSent is called after each frame written to a client (metrics).
	OnSent func(*Frame)
	// OnSlow is called when a client is closed as a slow consumer.
	OnSlow func()
}

// SlowReason is the close reason sent to a slow consumer.
const SlowReason = "slow consumer"

// Hub is the set of clients of one replica.
type Hub struct {
	opts Options

	mu      sync.RWMutex
	clients map[*Client]struct{}
	// lastSeq is the stream sequence of the last event published; written
	// only under mu.RLock by the events publisher, read under mu.Lock.
	lastSeq atomic.Uint64
}

// New returns an empty hub.
func New(opts Options) *Hub {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 30 * time.Second
	}
	return &Hub{opts: opts, clients: make(map[*Client]struct{})}
}

// SetLastSeq records the stream sequence the live feed starts after: every
// event with a higher sequence will be Published (or Skipped).
func (h *Hub) SetLastSeq(seq uint64) {
	h.mu.Lock()
	h.lastSeq.Store(seq)
	h.mu.Unlock()
}

// LastSeq returns the sequence of the last event published or skipped.
func (h *Hub) LastSeq() uint64 { return h.lastSeq.Load() }

// Len returns the number of clients.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// Publish offers fr to every client whose filter matches. It never blocks
// on a client.
func (h *Hub) Publish(fr *Frame) {
	h.mu.RLock()
	if fr.Kind == KindEvent {
		h.lastSeq.Store(fr.Seq)
	}
	for c := range h.clients {
		c.offer(fr)
	}
	h.mu.RUnlock()
}

// Skip advances the live position past an event that could not be
// published (a bad payload), so resumes stay exact.
func (h *Hub) Skip(seq uint64) {
	h.mu.RLock()
	h.lastSeq.Store(seq)
	h.mu.RUnlock()
}

// Add registers a client on conn with filter f. The client starts held:
// frames queue up but nothing is written until Release. With replay set,
// events are not even queued until StartBuffering (a resuming client gets
// the events before that point from its replay).
func (h *Hub) Add(conn Conn, f *Filter, replay bool) *Client {
	c := &Client{hub: h, conn: conn, hold: true, skipEvents: replay}
	c.filter.Store(f)
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	return c
}

// Remove unregisters c, stops its timer, and waits for its goroutines
// (the writer, a ping, a close). Call it once the connection is closed.
func (h *Hub) Remove(c *Client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// CloseAll closes every client with code and reason (at shutdown), each
// in its own goroutine, joined by Remove.
func (h *Hub) CloseAll(code websocket.StatusCode, reason string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		c.closeWith(code, reason)
	}
}
