package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("ingest: publisher closed")

// Retry pacing of unacknowledged events.
const (
	// AckTimeout is how long one publish attempt waits for its ack.
	AckTimeout = 5 * time.Second
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Publisher publishes events asynchronously to JetStream, each with a
// Nats-Msg-Id, and republishes every one that fails or times out until it
// is acknowledged. Run drives the retries; Flush waits for the window to
// empty.
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	window *Window
	log    zerolog.Logger
	m      *metrics.Metrics

	mu      sync.Mutex
	pending map[string]*item // by message id, until acked or dropped
	retry   []*item          // failed attempts waiting to be republished
	empty   chan struct{}    // closed when pending becomes empty; nil when nobody waits
	closed  bool
	wake    chan struct{} // cap 1: wakes Run
}

type item struct {
	id       string
	msg      *nats.Msg
	size     int64
	received time.Time
	attempts int
	due      time.Time
	queued   bool // in Publisher.retry
}

// NewPublisher returns a publisher on nc whose unacknowledged events are
// bounded by window.
func NewPublisher(nc *nats.Conn, window *Window, log zerolog.Logger, m *metrics.Metrics) (*Publisher, error) {
	p := &Publisher{
		nc:      nc,
		window:  window,
		log:     log,
		m:       m,
		pending: make(map[string]*item),
		wake:    make(chan struct{}, 1),
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
		// The window bounds what is outstanding; the library must never stall.
		jetstream.WithPublishAsyncMaxPending(1<<20),
		jetstream.WithPublishAsyncTimeout(AckTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("ingest: jetstream: %w", err)
	}
	p.js = js
	return p, nil
}

// Publish takes room for data in the window, waiting (backpressure) until
// there is some or ctx is done, then publishes it on subject with message
// id id. From then on the event is the publisher's: it is retried until
// stored. received is when the node sent it (for the latency histogram).
// It returns how long it waited for room.
func (p *Publisher) Publish(ctx context.Context, subject, id string, data []byte, received time.Time) (time.Duration, error) {
	size := int64(len(data))
	var waited time.Duration
	if !p.window.TryAcquire(size) {
		// The window is full: this session stops reading its socket until
		// acknowledgements free room.
		p.m.Backpressured.Inc()
		var err error
		waited, err = p.window.Acquire(ctx, size)
		p.m.Backpressured.Dec()
		p.m.BackpressureSeconds.Add(waited.Seconds())
		if err != nil {
			return waited, err
		}
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(bus.HeaderMsgID, id)
	msg.Data = data
	it := &item{id: id, msg: msg, size: size, received: received}

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.window.Release(size)
		return waited, ErrClosed
	}
	if _, dup := p.pending[id]; dup {
		p.mu.Unlock()
		p.window.Release(size)
		return waited, fmt.Errorf("ingest: duplicate event id %q", id)
	}
	p.pending[id] = it
	p.m.UnackedBytes.Set(float64(p.window.Used()))
	p.m.UnackedEvents.Set(float64(len(p.pending)))
	p.mu.Unlock()
	p.m.EventsTotal.Inc()

	p.send(it)
	return waited, nil
}

// send makes one publish attempt; failures go to the retry list.
func (p *Publisher) send(it *item) {
	if p.nc.Status() != nats.CONNECTED {
		p.scheduleRetry(it, nats.ErrDisconnected)
		return
	}
	if _, err := p.js.PublishMsgAsync(it.msg); err != nil {
		p.failed(it, err)
	}
}

// onAck runs on the NATS client's goroutine for every acknowledged publish.
func (p *Publisher) onAck(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
	p.finish(msg.Header.Get(bus.HeaderMsgID), true)
}

// onErr runs for every failed publish. It may run with the library's
// publisher lock held (ack timeouts): it must not publish.
func (p *Publisher) onErr(_ jetstream.JetStream, msg *nats.Msg, err error) {
	p.mu.Lock()
	it := p.pending[msg.Header.Get(bus.HeaderMsgID)]
	p.mu.Unlock()
	if it != nil {
		p.failed(it, err)
	}
}

// failed drops the event when retrying cannot help, else schedules a retry.
func (p *Publisher) failed(it *item, err error) {
	if permanent(err) {
		p.log.Error().Err(err).Str("event_id", it.id).Str("subject", it.msg.Subject).Int64("bytes", it.size).
			Msg("attack event refused by JetStream for good; dropped")
		p.m.DroppedTotal.WithLabelValues(metrics.DropRejected).Inc()
		p.finish(it.id, false)
		return
	}
	p.scheduleRetry(it, err)
}

func (p *Publisher) scheduleRetry(it *item, err error) {
	p.mu.Lock()
	if _, ok := p.pending[it.id]; !ok || it.queued {
		p.mu.Unlock()
		return // acked meanwhile (a late ack after a timeout), or already queued
	}
	it.queued = true
	it.attempts++
	backoff := minBackoff << min(it.attempts-1, 6)
	it.due = time.Now().Add(min(backoff, maxBackoff))
	p.retry = append(p.retry, it)
	attempts := it.attempts
	p.mu.Unlock()
	if attempts == 1 || attempts%20 == 0 {
		p.log.Debug().Err(err).Str("event_id", it.id).Int("attempts", attempts).Msg("attack event not stored yet; will retry")
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// finish removes the event from the window once acknowledged (or dropped).
func (p *Publisher) finish(id string, acked bool) {
	p.mu.Lock()
	it, ok := p.pending[id]
	if !ok {
		p.mu.Unlock()
		return
	}
	delete(p.pending, id)
	var empty chan struct{}
	if len(p.pending) == 0 && p.empty != nil {
		empty, p.empty = p.empty, nil
	}
	n := len(p.pending)
	p.mu.Unlock()

	p.window.Release(it.size)
	p.m.UnackedBytes.Set(float64(p.window.Used()))
	p.m.UnackedEvents.Set(float64(n))
	if acked {
		p.m.EventsAckedTotal.Inc()
		p.m.PublishLatency.Observe(time.Since(it.received).Seconds())
	}
	if empty != nil {
		close(empty)
	}
}

// permanent reports errors that no retry can fix.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) || errors.Is(err, nats.ErrBadHeaderMsg) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code == 400 || api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
	}
	return false
}

// Run republishes failed events, each after a short backoff, while the
// connection is up. It returns when ctx is done.
func (p *Publisher) Run(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-tick.C:
		}
		if p.nc.Status() != nats.CONNECTED {
			continue
		}
		now := time.Now()
		p.mu.Lock()
		var due []*item
		keep := p.retry[:0]
		for _, it := range p.retry {
			if _, ok := p.pending[it.id]; !ok {
				it.queued = false
				continue
			}
			if it.due.After(now) {
				keep = append(keep, it)
				continue
			}
			it.queued = false
			due = append(due, it)
		}
		clear(p.retry[len(keep):])
		p.retry = keep
		p.mu.Unlock()
		for _, it := range due {
			p.m.EventRetriesTotal.Inc()
			p.send(it)
		}
	}
}

// Flush waits until every accepted event is acknowledged (or dropped by
// policy), or ctx is done.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if len(p.pending) == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.empty == nil {
		p.empty = make(chan struct{})
	}
	empty := p.empty
	p.mu.Unlock()
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close refuses further events and returns how many accepted events are
// still unacknowledged (lost if the process now exits).
func (p *Publisher) Close() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return len(p.pending)
}

// Pending returns the number of unacknowledged events.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}
