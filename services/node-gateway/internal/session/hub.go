// Package session runs node sessions: the Protocol v2 handshake, reading
// and dispatching a node's messages, writing acks and commands to it, and
// routing NATS command requests to the session holding the node.
//
// A Hub owns every session of one gateway and the registry of held nodes
// (node id -> session). Each connection runs one reader goroutine (the
// session) and one writer goroutine; both end before Serve's goroutine
// returns. Hub methods are safe for concurrent use.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/ingest"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/honeybee/core/services/node-gateway/internal/state"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is what sessions need to know of the gateway's configuration.
type Config struct {
	GatewayID           string
	RegistrationTimeout time.Duration
	IdleTimeout         time.Duration
	WriteTimeout        time.Duration
	WriteQueue          int
	MaxMessageSize      int
	MaxDepth            int
	BadMessageLimit     int
	BadMessageWindow    time.Duration
	LastSeenInterval    time.Duration
}

// Authenticator checks a registration's TOTP code (see package totp).
// issuedKey is non-empty when a fresh secret was issued to the node.
type Authenticator interface {
	Check(ctx context.Context, nodeName, code, remoteIP string, now time.Time) (issuedKey string, err error)
}

// Deps are the hub's collaborators.
type Deps struct {
	NC        *nats.Conn
	Contract  bus.Contract
	Publisher *ingest.Publisher
	Writer    *state.Writer
	Nodes     jetstream.KeyValue
	Pots      jetstream.KeyValue
	Commands  jetstream.KeyValue
	// Auth authenticates registrations; nil accepts every one.
	Auth AuthFunc
	// AuthReason turns an Auth error into the text sent to the node.
	AuthReason func(error) string
	Metrics    *metrics.Metrics
	Log        zerolog.Logger
}

// AuthFunc is Authenticator.Check.
type AuthFunc func(ctx context.Context, nodeName, code, remoteIP string, now time.Time) (string, error)

// ErrDraining is returned by Serve while the hub drains.
var ErrDraining = errors.New("gateway is draining")

// Hub owns the sessions of one gateway.
type Hub struct {
	cfg    Config
	d      Deps
	bootID string
	seq    atomic.Uint64
	cmdCh  chan *nats.Msg
	// perVariant caches the messages counter of each node variant.
	perVariant map[string]prometheus.Counter

	mu       sync.Mutex
	nodes    map[uint64]*holder
	sessions map[*Session]struct{}
	draining bool
	wg       sync.WaitGroup
	// idle is closed when the last session ends while someone waits.
	idle chan struct{}
}

// holder is a held node: its current session and its command subscription,
// which lives as long as the node is held (across replacements).
type holder struct {
	sess *Session
	sub  *nats.Subscription
}

// NewHub returns a hub. Run must run for commands to be answered.
func NewHub(cfg Config, d Deps) *Hub {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	h := &Hub{
		cfg:        cfg,
		d:          d,
		bootID:     hex.EncodeToString(b),
		cmdCh:      make(chan *nats.Msg, 4096),
		perVariant: make(map[string]prometheus.Counter),
		nodes:      make(map[uint64]*holder),
		sessions:   make(map[*Session]struct{}),
	}
	for _, m := range []proto.Message{&proto.NodeRegistration{}, &proto.NodeStatusUpdate{}, &proto.NodeEvent{},
		&proto.NodeDrop{}, &proto.PotStatusUpdate{}, &proto.PotEvent{}} {
		h.perVariant[m.Variant()] = d.Metrics.MessagesTotal.WithLabelValues(m.Variant())
	}
	return h
}

// countMessage counts a message received from a node.
func (h *Hub) countMessage(variant string) {
	if c, ok := h.perVariant[variant]; ok {
		c.Inc()
		return
	}
	h.d.Metrics.MessagesTotal.WithLabelValues(variant).Inc()
}

// Serve runs a session on conn in a new goroutine and returns at once. It
// owns conn from then on.
func (h *Hub) Serve(conn net.Conn) {
	h.mu.Lock()
	id := h.seq.Add(1)
	s := newSession(h, conn, id)
	h.sessions[s] = struct{}{}
	h.wg.Add(1)
	draining := h.draining
	h.mu.Unlock()
	h.d.Metrics.Connections.Inc()
	h.d.Metrics.ConnectionsTotal.Inc()
	if draining {
		s.stop(bus.ReasonShutdown)
	}
	go func() {
		defer h.wg.Done()
		defer h.d.Metrics.Connections.Dec()
		s.run()
		h.mu.Lock()
		delete(h.sessions, s)
		if len(h.sessions) == 0 && h.idle != nil {
			close(h.idle)
			h.idle = nil
		}
		h.mu.Unlock()
	}()
}

// Connections returns the number of open connections.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// NodeIDs returns the ids of the nodes this gateway holds.
func (h *Hub) NodeIDs() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]uint64, 0, len(h.nodes))
	for id := range h.nodes {
		ids = append(ids, id)
	}
	return ids
}

// held returns the session holding node id, or nil.
func (h *Hub) held(id uint64) *Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hd := h.nodes[id]; hd != nil {
		return hd.sess
	}
	return nil
}

// heldSessions returns every session holding a node.
func (h *Hub) heldSessions() []*Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Session, 0, len(h.nodes))
	for _, hd := range h.nodes {
		out = append(out, hd.sess)
	}
	return out
}

// register makes s the holder of its node, subscribing to the node's
// command subject if it was not held yet. It returns the session s
// replaces, if any.
func (h *Hub) register(s *Session) (*Session, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return nil, ErrDraining
	}
	hd := h.nodes[s.nodeID]
	if hd == nil {
		sub, err := h.d.NC.ChanSubscribe(h.d.Contract.Command(s.nodeID), h.cmdCh)
		if err != nil {
			return nil, err
		}
		// Commands are rare; a burst beyond this is refused by NATS (slow consumer).
		_ = sub.SetPendingLimits(1024, 16<<20)
		hd = &holder{sub: sub}
		h.nodes[s.nodeID] = hd
		h.d.Metrics.Nodes.Inc()
	}
	old := hd.sess
	hd.sess = s
	return old, nil
}

// release gives up the node of s if s still holds it, and reports whether
// it did (only the holder records the node disconnected).
func (h *Hub) release(s *Session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd := h.nodes[s.nodeID]
	if hd == nil || hd.sess != s {
		return false
	}
	delete(h.nodes, s.nodeID)
	_ = hd.sub.Unsubscribe()
	h.d.Metrics.Nodes.Dec()
	return true
}

// Draining reports whether Drain was called.
func (h *Hub) Draining() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}

// Drain refuses new registrations and asks every session to stop: each
// reads what its node still sends until the node is quiet (at most until
// linger has passed), finishes publishing what it read, records its node
// disconnected (reason shutdown) and closes. Wait for them with Wait.
func (h *Hub) Drain(linger time.Duration) {
	until := time.Now().Add(linger)
	h.mu.Lock()
	h.draining = true
	all := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.drainStop(until)
	}
}

// Abort cancels whatever sessions still wait (for window room, for a
// write): used when the drain deadline passes.
func (h *Hub) Abort() {
	h.mu.Lock()
	all := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.abort()
	}
}

// Wait waits until every session has ended, or ctx is done.
func (h *Hub) Wait(ctx context.Context) error {
	h.mu.Lock()
	if len(h.sessions) == 0 {
		h.mu.Unlock()
		return nil
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	idle := h.idle
	h.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close waits for every session goroutine; call it after Drain (and Abort).
func (h *Hub) Close() { h.wg.Wait() }

// Resync marks the record of every held node for rewriting: after a NATS
// outage another gateway's sweeper may have marked them lost.
func (h *Hub) Resync() {
	for _, s := range h.heldSessions() {
		if s.node != nil {
			h.d.Writer.Mark(s.node)
		}
	}
}
