package session

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/honeybee/core/services/node-gateway/internal/state"
	"github.com/rs/zerolog"
)

// Limits on strings that end up in subjects and keys. NATS refuses a
// protocol line longer than 4 KiB (and closes the connection), so no node
// may make the gateway build a longer subject.
const (
	MaxNodeNameLen = 256
	MaxPotIDLen    = 256
)

// reasonReplaced ends a session whose node another session took over; it
// records nothing (the new session owns the record).
const reasonReplaced = "replaced"

// refusalWriteTimeout bounds writing a refusal to a node about to be closed.
const refusalWriteTimeout = 2 * time.Second

var (
	errSessionClosed = errors.New("node session closed")
	errQueueFull     = errors.New("node write queue full")
	errPotIDTooLong  = fmt.Errorf("%w: pot_id longer than %d bytes", proto.ErrInvalidField, MaxPotIDLen)
)

// Session is one node connection.
type Session struct {
	h      *Hub
	conn   net.Conn
	connID uint64
	remote string
	// log adds remote_addr, conn and, once the registration names them,
	// node_id and node_name to every line, through Run (a hook rather than
	// With: With gives each session a 500-byte context buffer).
	log zerolog.Logger
	// logNodeID and logNodeName are set once by the handshake, before any
	// other goroutine can log through s.log.
	logNodeID   uint64
	logNodeName string

	// ctx is cancelled by abort (drain deadline) and when run returns.
	ctx    context.Context
	cancel context.CancelFunc

	stopMu     sync.Mutex
	stopReason string
	// lingerUntil, when set, lets a stopping session keep reading while the
	// node keeps sending (at most until then), so a drain does not drop
	// what is already on its way.
	lingerUntil time.Time

	// Writes to the node (commands) queue here and a writer goroutine runs
	// only while the queue has something: an idle session costs no writer.
	outMu         sync.Mutex
	out           []outMsg // at most cfg.WriteQueue
	outClosed     bool
	writerStarted bool          // the registration ack is written: writes may go
	writing       bool          // a writeLoop goroutine is running
	writerIdle    chan struct{} // when not nil, closed when writeLoop stops
	writeErr      error         // the first failed write: later ones fail at once

	// Set during the handshake, before register publishes the session;
	// read-only afterwards.
	nodeID   uint64
	nodeName string
	who      bus.Identity
	node     *state.Node

	// Owned by the reader goroutine.
	reader          *proto.Reader
	dec             proto.Decoder
	evSeq           uint64
	bad             []time.Time
	deadlineSet     time.Time
	lastSeen        time.Time
	lastSeenWritten time.Time
	pots            []cachedPot
	logged          int

	cmdMu  sync.Mutex
	active []*tracked
}

type outMsg struct {
	data []byte
	done func(error)
}

func newSession(h *Hub, conn net.Conn, id uint64) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		h:      h,
		conn:   conn,
		connID: id,
		remote: conn.RemoteAddr().String(),
		ctx:    ctx,
		cancel: cancel,
		dec:    proto.Decoder{MaxSize: h.cfg.MaxMessageSize, MaxDepth: h.cfg.MaxDepth},
	}
	s.log = h.d.Log.Hook(s)
	s.reader = proto.NewReader(conn, h.cfg.MaxMessageSize)
	return s
}

// Run implements zerolog.Hook: the session's fields on each of its lines.
func (s *Session) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("remote_addr", s.remote).Uint64("conn", s.connID)
	if s.logNodeName != "" {
		e.Uint64("node_id", s.logNodeID).Str("node_name", s.logNodeName)
	}
}

// stop asks the session to end with reason: it stops reading at once, then
// finishes what it read and closes. The first reason wins.
func (s *Session) stop(reason string) {
	s.stopMu.Lock()
	if s.stopReason == "" {
		s.stopReason = reason
	}
	s.stopMu.Unlock()
	_ = s.conn.SetReadDeadline(time.Unix(1, 0))
}

// lingerQuiet is how long a draining session waits for more data before
// it considers the node's socket drained.
const lingerQuiet = 100 * time.Millisecond

// drainStop asks the session to end with reason shutdown once the node
// has been quiet for lingerQuiet, or at until.
func (s *Session) drainStop(until time.Time) {
	s.stopMu.Lock()
	if s.stopReason == "" {
		s.stopReason = bus.ReasonShutdown
		s.lingerUntil = until
	}
	s.stopMu.Unlock()
	_ = s.conn.SetReadDeadline(earliest(time.Now().Add(lingerQuiet), until))
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Session) stopped() string {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	return s.stopReason
}

// lingering reports whether a stopping session may still read, and sets
// the read deadline for that.
func (s *Session) lingering(now time.Time) bool {
	s.stopMu.Lock()
	until := s.lingerUntil
	s.stopMu.Unlock()
	if until.IsZero() || !now.Before(until) {
		return false
	}
	_ = s.conn.SetReadDeadline(earliest(now.Add(lingerQuiet), until))
	return true
}

// replace ends a session whose node registered again on a newer
// connection: its socket is closed at once and it records nothing.
func (s *Session) replace() {
	s.stop(reasonReplaced)
	_ = s.conn.Close()
}

// abort gives up waiting: blocked publishes and writes fail.
func (s *Session) abort() {
	s.cancel()
	_ = s.conn.Close()
}

func (s *Session) run() {
	defer s.cancel()
	reason := bus.ReasonClosed
	registered := s.handshake()
	if registered {
		reason = s.loop()
	}
	s.finish(reason, registered)
}

// handshake reads the registration and answers it; it reports whether the
// node is registered (and held by this session).
func (s *Session) handshake() bool {
	m := s.h.d.Metrics
	start := time.Now()
	_ = s.conn.SetReadDeadline(start.Add(s.h.cfg.RegistrationTimeout))
	if r := s.stopped(); r != "" {
		s.refuse(0, "gateway is shutting down, reconnect later", metrics.OutcomeDraining)
		return false
	}
	if tc, ok := s.conn.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(s.ctx, s.h.cfg.RegistrationTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			m.RegistrationsTotal.WithLabelValues(metrics.OutcomeTLS).Inc()
			s.log.Info().Err(err).Msg("TLS handshake failed")
			return false
		}
	}
	frame, err := s.reader.Next()
	if err != nil {
		switch {
		case s.stopped() != "":
			s.refuse(0, "gateway is shutting down, reconnect later", metrics.OutcomeDraining)
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Info().Dur("timeout", s.h.cfg.RegistrationTimeout).Msg("no registration within the registration timeout")
			s.refuse(0, "registration timeout", metrics.OutcomeTimeout)
		case errors.Is(err, proto.ErrTooLarge):
			m.DecodeErrorsTotal.WithLabelValues(decodeKind(err)).Inc()
			s.refuse(0, "first message must be NodeRegistration: "+err.Error(), metrics.OutcomeNotRegistration)
		default:
			m.RegistrationsTotal.WithLabelValues(metrics.OutcomeClosed).Inc()
			s.log.Debug().Err(err).Msg("connection closed before registering")
		}
		return false
	}
	env, err := s.dec.Decode(frame)
	if err != nil {
		m.DecodeErrorsTotal.WithLabelValues(decodeKind(err)).Inc()
		s.refuse(0, "first message must be a valid NodeRegistration: "+err.Error(), metrics.OutcomeNotRegistration)
		return false
	}
	reg, ok := env.Message.(*proto.NodeRegistration)
	if !ok {
		s.refuse(0, "first message must be NodeRegistration, got "+env.Message.Variant(), metrics.OutcomeNotRegistration)
		return false
	}
	m.MessagesTotal.WithLabelValues(reg.Variant()).Inc()
	switch {
	case env.Version != proto.Version:
		s.refuse(reg.NodeID, fmt.Sprintf("unsupported protocol version %d: this core speaks version %d", env.Version, proto.Version), metrics.OutcomeVersion)
		return false
	case reg.NodeID == 0:
		s.refuse(0, "node_id must not be 0", metrics.OutcomeNodeID)
		return false
	case reg.NodeName == "":
		s.refuse(reg.NodeID, "node_name must not be empty", metrics.OutcomeNodeName)
		return false
	case len(reg.NodeName) > MaxNodeNameLen:
		s.refuse(reg.NodeID, fmt.Sprintf("node_name longer than %d bytes", MaxNodeNameLen), metrics.OutcomeNodeName)
		return false
	case !reg.NodeType.Valid():
		s.refuse(reg.NodeID, fmt.Sprintf("unknown node_type %q: want Full or Agent", string(reg.NodeType)), metrics.OutcomeNodeType)
		return false
	case s.h.Draining():
		s.refuse(reg.NodeID, "gateway is shutting down, reconnect later", metrics.OutcomeDraining)
		return false
	}
	s.logNodeID, s.logNodeName = reg.NodeID, reg.NodeName

	var issued string
	if s.h.d.Auth != nil {
		host, _, _ := net.SplitHostPort(s.remote)
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		issued, err = s.h.d.Auth(ctx, reg.NodeName, reg.TOTPCode, host, time.Now())
		cancel()
		if err != nil {
			reason := "authentication failed"
			if s.h.d.AuthReason != nil {
				reason = s.h.d.AuthReason(err)
			}
			s.log.Warn().Str("reason", reason).Msg("registration refused: authentication failed")
			s.refuse(reg.NodeID, reason, metrics.OutcomeAuth)
			return false
		}
	}

	now := time.Now().UTC()
	s.nodeID, s.nodeName = reg.NodeID, reg.NodeName
	s.who = bus.Identity{NodeID: reg.NodeID, NodeName: reg.NodeName}
	s.lastSeen, s.lastSeenWritten = now, now
	s.node = state.NewNode(s.h.d.Nodes, bus.NodeRecord{
		NodeID:         reg.NodeID,
		NodeIDStr:      proto.FormatNodeID(reg.NodeID),
		NodeName:       reg.NodeName,
		NodeType:       reg.NodeType,
		Status:         proto.NodeConnected,
		Connected:      true,
		GatewayID:      s.h.cfg.GatewayID,
		Address:        reg.Address,
		Port:           reg.Port,
		RemoteAddr:     s.remote,
		ConnectedSince: now,
		LastSeen:       now,
	}, s.log)
	old, err := s.h.register(s)
	if err != nil {
		if errors.Is(err, ErrDraining) {
			s.refuse(reg.NodeID, "gateway is shutting down, reconnect later", metrics.OutcomeDraining)
		} else {
			s.log.Error().Err(err).Msg("cannot subscribe to the node's command subject")
			s.refuse(reg.NodeID, "gateway unavailable, retry", metrics.OutcomeClosed)
		}
		return false
	}
	if old != nil {
		s.log.Info().Str("old_remote_addr", old.remote).Msg("node registered again: replacing its older connection")
		old.replace()
	}
	// Make sure NATS has the command subscription before the node hears
	// it is registered: a command sent right after must find a responder.
	// (While NATS is down the subscription is sent on reconnect.)
	if s.h.d.NC.IsConnected() {
		if err := s.h.d.NC.FlushTimeout(2 * time.Second); err != nil {
			s.log.Debug().Err(err).Msg("flushing the command subscription failed")
		}
	}
	s.h.d.Writer.Mark(s.node)

	ack, _ := proto.AppendEnvelope(nil, &proto.RegistrationAck{NodeID: reg.NodeID, Accepted: true, Message: "registered", TOTPKey: issued})
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
	if _, err := s.conn.Write(append(ack, '\n')); err != nil {
		s.log.Info().Err(err).Msg("writing the registration ack failed")
		s.stop(bus.ReasonClosed)
	}
	s.outMu.Lock()
	s.writerStarted = true
	s.startWriter() // commands that came before the ack
	s.outMu.Unlock()

	m.RegistrationsTotal.WithLabelValues(metrics.OutcomeAccepted).Inc()
	s.log.Info().Str("node_type", string(reg.NodeType)).Bool("totp_issued", issued != "").
		Dur("took", time.Since(start)).Msg("node registered")
	s.lifecycle(bus.LifecycleRegistered, now, func(l *bus.NodeLifecycle) {
		l.NodeType, l.RemoteAddr, l.GatewayID = reg.NodeType, s.remote, s.h.cfg.GatewayID
	})
	return true
}

// refuse answers a registration with accepted:false and a reason; the
// caller then closes the connection.
func (s *Session) refuse(nodeID uint64, reason, outcome string) {
	s.h.d.Metrics.RegistrationsTotal.WithLabelValues(outcome).Inc()
	s.log.Info().Str("outcome", outcome).Str("reason", reason).Msg("registration refused")
	ack, _ := proto.AppendEnvelope(nil, &proto.RegistrationAck{NodeID: nodeID, Accepted: false, Message: reason})
	_ = s.conn.SetWriteDeadline(time.Now().Add(min(refusalWriteTimeout, s.h.cfg.WriteTimeout)))
	_, _ = s.conn.Write(append(ack, '\n'))
}

// loop reads and handles messages until the session must end, and
// returns why.
func (s *Session) loop() string {
	idle := s.h.cfg.IdleTimeout
	for {
		now := time.Now()
		// Re-arm the idle deadline, at most every idle/4 (it is not free).
		if now.Sub(s.deadlineSet) > idle/4 {
			_ = s.conn.SetReadDeadline(now.Add(idle))
			s.deadlineSet = now
		}
		// After re-arming, so a concurrent stop's past deadline wins.
		if r := s.stopped(); r != "" && !s.lingering(now) {
			return r
		}
		if s.node.Lost() {
			return reasonReplaced
		}
		frame, err := s.reader.Next()
		if err != nil {
			return s.readError(err)
		}
		if end := s.handle(frame, time.Now()); end != "" {
			return end
		}
	}
}

func (s *Session) readError(err error) string {
	if r := s.stopped(); r != "" {
		return r
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Info().Dur("idle_timeout", s.h.cfg.IdleTimeout).Msg("node idle for too long")
		return bus.ReasonTimeout
	case errors.Is(err, proto.ErrTooLarge):
		s.h.d.Metrics.DecodeErrorsTotal.WithLabelValues(decodeKind(err)).Inc()
		s.log.Warn().Err(err).Int("limit", s.h.cfg.MaxMessageSize).Msg("message over the size limit: disconnecting")
		return bus.ReasonProtocol
	case errors.Is(err, io.EOF):
	default:
		s.log.Debug().Err(err).Msg("read failed")
	}
	return bus.ReasonClosed
}

// finish closes the connection and, if this session still holds the node,
// records it disconnected.
func (s *Session) finish(reason string, registered bool) {
	if reason == reasonReplaced {
		_ = s.conn.Close()
	}
	s.outMu.Lock()
	s.outClosed = true
	var idle chan struct{}
	if s.writing {
		// It flushes what is queued; each write is bounded by the write timeout.
		idle = make(chan struct{})
		s.writerIdle = idle
	}
	var unsent []outMsg
	if !s.writerStarted {
		unsent, s.out = s.out, nil
	}
	s.outMu.Unlock()
	if idle != nil {
		<-idle
	}
	for _, m := range unsent {
		if m.done != nil {
			m.done(errSessionClosed)
		}
	}
	_ = s.conn.Close()
	if !registered {
		return
	}
	s.h.d.Metrics.DisconnectsTotal.WithLabelValues(reason).Inc()
	if !s.h.release(s) || reason == reasonReplaced || s.node.Lost() {
		s.log.Info().Str("reason", reasonReplaced).Msg("node session closed")
		return
	}
	now := time.Now().UTC()
	s.node.Update(func(r *bus.NodeRecord) {
		r.Connected = false
		r.DisconnectedAt = now
		r.DisconnectReason = reason
		r.LastSeen = s.lastSeen
	})
	s.h.d.Writer.Mark(s.node)
	s.lifecycle(bus.LifecycleDisconnected, now, func(l *bus.NodeLifecycle) { l.Reason = reason })
	s.log.Info().Str("reason", reason).Msg("node disconnected")
}

// send queues data for the node; done (if not nil) is called once with
// the write's outcome.
func (s *Session) send(data []byte, done func(error)) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outClosed {
		return errSessionClosed
	}
	if len(s.out) >= s.h.cfg.WriteQueue {
		return errQueueFull
	}
	s.out = append(s.out, outMsg{data: data, done: done})
	s.startWriter()
	return nil
}

// startWriter starts writeLoop if there is something to write and it may
// be written. s.outMu is held.
func (s *Session) startWriter() {
	if s.writerStarted && !s.writing && len(s.out) > 0 {
		s.writing = true
		go s.writeLoop()
	}
}

// writeLoop writes the queue in order until it is empty, then stops.
func (s *Session) writeLoop() {
	for {
		s.outMu.Lock()
		if len(s.out) == 0 {
			s.out = nil // a session that wrote once does not keep the array
			s.writing = false
			if s.writerIdle != nil {
				close(s.writerIdle)
				s.writerIdle = nil
			}
			s.outMu.Unlock()
			return
		}
		m := s.out[0]
		s.out[0] = outMsg{}
		s.out = s.out[1:]
		broken := s.writeErr
		s.outMu.Unlock()
		if broken == nil {
			if err := s.ctx.Err(); err != nil {
				broken = err
			} else {
				_ = s.conn.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
				if _, err := s.conn.Write(m.data); err != nil {
					broken = err
					s.log.Info().Err(err).Msg("write to node failed: closing")
					s.stop(bus.ReasonClosed)
				}
			}
			if broken != nil {
				s.outMu.Lock()
				s.writeErr = broken
				s.outMu.Unlock()
			}
		}
		if m.done != nil {
			m.done(broken)
		}
	}
}

// lifecycle publishes a node lifecycle message (core NATS, not stored).
func (s *Session) lifecycle(kind string, now time.Time, fill func(*bus.NodeLifecycle)) {
	l := bus.NodeLifecycle{Kind: kind, NodeID: s.nodeID, NodeIDStr: proto.FormatNodeID(s.nodeID), NodeName: s.nodeName, Time: now}
	if fill != nil {
		fill(&l)
	}
	data, err := json.Marshal(l)
	if err == nil {
		err = s.h.d.NC.Publish(s.h.d.Contract.Node(s.nodeID, kind), data)
	}
	if err != nil {
		s.h.d.Metrics.DroppedTotal.WithLabelValues(metrics.DropLifecycle).Inc()
		s.log.Warn().Err(err).Str("kind", kind).Msg("lifecycle message not published")
	}
}

// nextEventID returns a message id unique to this gateway process,
// connection and event.
func (s *Session) nextEventID() string {
	s.evSeq++
	b := make([]byte, 0, len(s.h.cfg.GatewayID)+40)
	b = append(b, s.h.cfg.GatewayID...)
	b = append(b, '-')
	b = append(b, s.h.bootID...)
	b = append(b, '-')
	b = strconv.AppendUint(b, s.connID, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, s.evSeq, 10)
	return string(b)
}

// shouldLog limits the log lines one session can cause by misbehaving:
// the first ten, then one in a thousand.
func (s *Session) shouldLog() bool {
	s.logged++
	return s.logged <= 10 || s.logged%1000 == 0
}

// decodeKind names the proto sentinel err wraps, for metrics.
func decodeKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{proto.ErrTooLarge, "too_large"},
		{proto.ErrInvalidUTF8, "invalid_utf8"},
		{proto.ErrTooDeep, "too_deep"},
		{proto.ErrNotJSON, "not_json"},
		{proto.ErrNotEnvelope, "not_envelope"},
		{proto.ErrUnknownVariant, "unknown_variant"},
		{proto.ErrMissingField, "missing_field"},
		{proto.ErrInvalidField, "invalid_field"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}
