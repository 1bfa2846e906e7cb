package session

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/honeybee/core/services/node-gateway/internal/state"
)

// maxCachedPots bounds the pot records one session keeps in memory; pots
// beyond it are still written, just not cached.
const maxCachedPots = 256

// cachedPot is a pot record a session keeps. A node runs a handful of pots
// and reports their status rarely, so a slice searched in order costs less
// memory than a map and no noticeable time.
type cachedPot struct {
	id  string
	pot *state.Pot
}

// handle decodes and dispatches one frame. It returns a disconnect reason
// when the session must end, else "".
func (s *Session) handle(frame []byte, now time.Time) string {
	env, err := s.dec.Decode(frame)
	if err != nil {
		return s.badMessage(err, decodeKind(err), now)
	}
	if env.Version != proto.Version {
		return s.badMessage(fmt.Errorf("unsupported protocol version %d in a %s", env.Version, env.Message.Variant()), "version", now)
	}
	m := s.h.d.Metrics
	s.h.countMessage(env.Message.Variant())
	s.touch(now)

	switch msg := env.Message.(type) {
	case *proto.PotEvent:
		if !s.ownID(msg.NodeID, msg.Variant()) {
			return ""
		}
		if len(msg.PotID) > MaxPotIDLen {
			return s.badMessage(errPotIDTooLong, "invalid_field", now)
		}
		s.publishEvent(bus.NewAttackEvent(s.nextEventID(), s.who, msg, now), now)
	case *proto.PotStatusUpdate:
		if !s.ownID(msg.NodeID, msg.Variant()) {
			return ""
		}
		if len(msg.PotID) > MaxPotIDLen {
			return s.badMessage(errPotIDTooLong, "invalid_field", now)
		}
		if !msg.IsState() {
			// The deployed Go node's quirk: an attack event in disguise.
			// It must not touch the pot's recorded status.
			s.publishEvent(bus.NewQuirkEvent(s.nextEventID(), s.who, msg, now), now)
			return ""
		}
		s.potStatus(msg, now)
	case *proto.NodeStatusUpdate:
		if !s.ownID(msg.NodeID, msg.Variant()) {
			return ""
		}
		changed := false
		s.node.Update(func(r *bus.NodeRecord) {
			changed = r.Status != msg.Status
			r.Status = msg.Status
			r.LastSeen = now.UTC()
		})
		s.lastSeenWritten = now
		s.h.d.Writer.Mark(s.node)
		if changed {
			s.lifecycle(bus.LifecycleStatus, now.UTC(), func(l *bus.NodeLifecycle) { l.Status = msg.Status })
		}
		s.onNodeStatus(msg.Status, now)
	case *proto.NodeEvent:
		ev := *msg
		s.lifecycle(bus.LifecycleEvent, now.UTC(), func(l *bus.NodeLifecycle) { l.Event = &ev })
		if msg.Type == proto.NodeEventError {
			s.onNodeError(msg, now)
		}
	case *proto.NodeDrop:
		return bus.ReasonDrop
	case *proto.NodeRegistration:
		m.DroppedTotal.WithLabelValues(metrics.DropReregistration).Inc()
		if s.shouldLog() {
			s.log.Warn().Uint64("sent_node_id", msg.NodeID).Msg("second NodeRegistration on a registered session: dropped")
		}
	default:
		m.DroppedTotal.WithLabelValues(metrics.DropUnexpected).Inc()
		return s.badMessage(fmt.Errorf("%s is not a node message", env.Message.Variant()), "unexpected_variant", now)
	}
	return ""
}

// ownID reports whether a message's node_id is the session's; a message
// that speaks for another node is dropped and counted.
func (s *Session) ownID(id uint64, variant string) bool {
	if id == s.nodeID {
		return true
	}
	s.h.d.Metrics.DroppedTotal.WithLabelValues(metrics.DropIdentity).Inc()
	if s.shouldLog() {
		s.log.Warn().Uint64("sent_node_id", id).Str("type", variant).Msg("message for another node_id: dropped")
	}
	return false
}

// badMessage logs and counts a message that could not be used. More than
// BadMessageLimit of them within BadMessageWindow end the session.
func (s *Session) badMessage(err error, kind string, now time.Time) string {
	s.h.d.Metrics.DecodeErrorsTotal.WithLabelValues(kind).Inc()
	if s.shouldLog() {
		s.log.Warn().Err(err).Str("kind", kind).Msg("bad message: dropped")
	}
	cutoff := now.Add(-s.h.cfg.BadMessageWindow)
	keep := s.bad[:0]
	for _, t := range s.bad {
		if t.After(cutoff) {
			keep = append(keep, t)
		}
	}
	s.bad = append(keep, now)
	if len(s.bad) > s.h.cfg.BadMessageLimit {
		s.log.Warn().Int("limit", s.h.cfg.BadMessageLimit).Dur("window", s.h.cfg.BadMessageWindow).
			Msg("too many bad messages: disconnecting")
		return bus.ReasonProtocol
	}
	return ""
}

// touch records that the node was heard from, writing last_seen at most
// every LastSeenInterval.
func (s *Session) touch(now time.Time) {
	s.lastSeen = now.UTC()
	if now.Sub(s.lastSeenWritten) < s.h.cfg.LastSeenInterval {
		return
	}
	s.lastSeenWritten = now
	s.node.Update(func(r *bus.NodeRecord) { r.LastSeen = now.UTC() })
	s.h.d.Writer.Mark(s.node)
}

// publishEvent hands an attack event to the publisher, waiting for room in
// the unacknowledged window: while it waits the socket is not read.
func (s *Session) publishEvent(ev bus.AttackEvent, now time.Time) {
	data := ev.AppendJSON(make([]byte, 0, 320+len(ev.Data)+len(ev.PotID)))
	subject := s.h.d.Contract.Event(s.nodeID, ev.PotID)
	if _, err := s.h.d.Publisher.Publish(s.ctx, subject, ev.EventID, data, now); err != nil {
		// Only when the drain deadline passed or the publisher closed.
		s.h.d.Metrics.DroppedTotal.WithLabelValues(metrics.DropShutdown).Inc()
		s.log.Error().Err(err).Str("pot_id", ev.PotID).Str("event_id", ev.EventID).Msg("attack event not accepted: dropped")
	}
}

func (s *Session) potStatus(msg *proto.PotStatusUpdate, now time.Time) {
	var pot *state.Pot
	for _, c := range s.pots {
		if c.id == msg.PotID {
			pot = c.pot
			break
		}
	}
	if pot == nil {
		pot = state.NewPot(s.h.d.Pots, s.nodeID, msg.PotID)
		if len(s.pots) < maxCachedPots {
			s.pots = append(s.pots, cachedPot{msg.PotID, pot})
		}
	}
	var text string
	if msg.Message != nil {
		text = *msg.Message
	}
	pot.Set(bus.PotRecord{
		NodeID:    s.nodeID,
		NodeIDStr: proto.FormatNodeID(s.nodeID),
		PotID:     msg.PotID,
		PotType:   msg.PotType,
		Status:    msg.Status,
		Message:   text,
		UpdatedAt: now.UTC(),
	})
	s.h.d.Writer.Mark(pot)
	data, err := json.Marshal(pot.Record())
	if err == nil {
		err = s.h.d.NC.Publish(s.h.d.Contract.Pot(s.nodeID, msg.PotID), data)
	}
	if err != nil {
		s.h.d.Metrics.DroppedTotal.WithLabelValues(metrics.DropLifecycle).Inc()
		s.log.Warn().Err(err).Str("pot_id", msg.PotID).Msg("pot status message not published")
	}
	s.onPotStatus(msg.PotID, msg.Status, text, now)
}
