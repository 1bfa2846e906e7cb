package session

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/honeybee/core/services/node-gateway/internal/state"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// Command bookkeeping limits.
const (
	// MaxCommandIDLen bounds caller-chosen command ids.
	MaxCommandIDLen = 128
	// maxTracked is how many unfinished commands a session follows.
	maxTracked = 64
	// maxProgress bounds the updates kept in one command record.
	maxProgress = 32
	// broadcastWait bounds how long a broadcast waits for its writes.
	broadcastWait = 2 * time.Second
	// recordWait bounds how long a command's reply waits for its record to
	// be stored, so that a GET right after the reply finds it.
	recordWait = 2 * time.Second
)

// Command outcomes (label "outcome" of CommandsTotal).
const (
	cmdDelivered    = "delivered"
	cmdInvalid      = "invalid"
	cmdNotConnected = "not_connected"
	cmdDraining     = "draining"
	cmdQueueFull    = "queue_full"
	cmdWriteFailed  = "write_failed"
	cmdDisconnect   = "disconnect"
)

// tracked is a delivered command whose outcome the node has not reported.
type tracked struct {
	rec       *state.Command
	kind      proto.CommandKind
	pot       string
	autoStart bool
}

// serviceError is a micro-style error reply.
type serviceError struct {
	code, reason, outcome string
}

func (e *serviceError) Error() string { return e.code + " " + e.reason }

func invalid(reason string) *serviceError {
	return &serviceError{code: bus.CodeInvalidCommand, reason: reason, outcome: cmdInvalid}
}

// Run answers command requests for held nodes until ctx is done.
func (h *Hub) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-h.cmdCh:
			h.handleCommand(msg)
		}
	}
}

func (h *Hub) handleCommand(msg *nats.Msg) {
	m := h.d.Metrics
	reply := func(v any) {
		data, _ := json.Marshal(v)
		if err := msg.Respond(data); err != nil {
			h.d.Log.Warn().Err(err).Str("subject", msg.Subject).Msg("command reply not sent")
		}
	}
	fail := func(e *serviceError) {
		m.CommandsTotal.WithLabelValues(e.outcome).Inc()
		r := nats.NewMsg(msg.Reply)
		r.Header.Set(micro.ErrorCodeHeader, e.code)
		r.Header.Set(micro.ErrorHeader, e.reason)
		r.Data = []byte(`{"error":` + quote(e.reason) + `}`)
		if err := msg.RespondMsg(r); err != nil {
			h.d.Log.Warn().Err(err).Str("subject", msg.Subject).Msg("command error reply not sent")
		}
	}
	if msg.Reply == "" {
		return
	}
	nodeID, err := proto.ParseNodeID(strings.TrimPrefix(msg.Subject, strings.TrimSuffix(h.d.Contract.Command(0), "0")))
	if err != nil {
		fail(invalid("bad command subject"))
		return
	}
	var req bus.CommandRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		fail(invalid("request is not a CommandRequest: " + err.Error()))
		return
	}
	if h.Draining() {
		fail(&serviceError{code: bus.CodeDraining, reason: "gateway is draining", outcome: cmdDraining})
		return
	}
	s := h.held(nodeID)
	if s == nil {
		fail(&serviceError{code: bus.CodeNotConnected, reason: "node " + proto.FormatNodeID(nodeID) + " is not connected to this gateway", outcome: cmdNotConnected})
		return
	}
	cmdID, serr := commandID(req.CommandID)
	if serr != nil {
		fail(serr)
		return
	}
	if req.Disconnect {
		s.log.Info().Str("command_id", cmdID).Msg("disconnect requested: closing the session")
		s.stop(bus.ReasonRemoved)
		m.CommandsTotal.WithLabelValues(cmdDisconnect).Inc()
		reply(bus.CommandReply{CommandID: cmdID, NodeID: nodeID, NodeIDStr: proto.FormatNodeID(nodeID), Delivered: true})
		return
	}
	cmd, err := proto.ParseCommand(req.Command)
	if err != nil {
		fail(invalid(err.Error()))
		return
	}
	s.deliver(cmdID, cmd, true, func(err error) {
		if err != nil {
			fail(deliveryError(err))
			return
		}
		m.CommandsTotal.WithLabelValues(cmdDelivered).Inc()
		reply(bus.CommandReply{CommandID: cmdID, NodeID: nodeID, NodeIDStr: proto.FormatNodeID(nodeID), Delivered: true})
	})
}

func deliveryError(err error) *serviceError {
	if errors.Is(err, errQueueFull) {
		return &serviceError{code: bus.CodeDraining, reason: "node write queue full, retry later", outcome: cmdQueueFull}
	}
	return &serviceError{code: bus.CodeNotConnected, reason: "node connection lost before delivery: " + err.Error(), outcome: cmdWriteFailed}
}

// commandID returns id, or a fresh one when it is empty. Ids are used as
// key-value keys, so only letters, digits, '-' and '_' are accepted.
func commandID(id string) (string, *serviceError) {
	if id == "" {
		return nuid.Next(), nil
	}
	if len(id) > MaxCommandIDLen || bus.EscapeToken(id) != id {
		return "", invalid("command_id: use at most 128 letters, digits, '-' and '_'")
	}
	return id, nil
}

// deliver writes cmd to the node and records it; done gets the write's
// outcome (nil: written to the socket). With stored, done(nil) is called
// only once the record is in the commands bucket (or recordWait passed),
// so whoever gets the reply can read the command at once.
func (s *Session) deliver(cmdID string, cmd proto.Command, stored bool, done func(error)) {
	data, err := proto.AppendEnvelope(nil, &proto.NodeCommand{NodeID: s.nodeID, Command: cmd})
	if err != nil {
		done(err)
		return
	}
	data = append(data, '\n')
	wire, _ := json.Marshal(cmd)
	now := time.Now().UTC()
	rec := state.NewCommand(s.h.d.Commands, bus.CommandRecord{
		CommandID: cmdID,
		NodeID:    s.nodeID,
		NodeIDStr: proto.FormatNodeID(s.nodeID),
		NodeName:  s.nodeName,
		Kind:      string(cmd.Kind),
		PotID:     cmd.PotID,
		Command:   wire,
		SentAt:    now,
		State:     bus.CommandPending,
		Progress:  []bus.CommandUpdate{},
		UpdatedAt: now,
	})
	t := &tracked{rec: rec, kind: cmd.Kind, pot: cmd.PotID, autoStart: cmd.Install != nil && cmd.Install.AutoStart}
	// Track before writing: a fast node may answer before the write returns.
	s.track(t)
	err = s.send(data, func(err error) {
		if err != nil {
			s.untrack(t)
			rec.Update(func(r *bus.CommandRecord) {
				r.State = bus.CommandFailed
				r.UpdatedAt = time.Now().UTC()
				r.Progress = append(r.Progress, bus.CommandUpdate{At: r.UpdatedAt, Source: "gateway", Status: "write_failed", Message: err.Error()})
			})
			s.h.d.Writer.Mark(rec)
			done(err)
			return
		}
		rec.Update(func(r *bus.CommandRecord) { r.Delivered = true })
		s.log.Info().Str("command_id", cmdID).Str("kind", string(cmd.Kind)).Str("pot_id", cmd.PotID).Msg("command delivered")
		if !stored {
			s.h.d.Writer.Mark(rec)
			done(nil)
			return
		}
		// Off the writer goroutine: the node's socket must not wait on NATS.
		// Bounded by recordWait; it ends by sending the reply.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), recordWait)
			defer cancel()
			if err := rec.Flush(ctx); err != nil {
				s.log.Warn().Err(err).Str("command_id", cmdID).Msg("command record not stored before the reply; the background writer retries")
			}
			// Mark after our Put, so the writer's later Put carries any
			// progress that raced with it.
			s.h.d.Writer.Mark(rec)
			done(nil)
		}()
	})
	if err != nil {
		s.untrack(t)
		if errors.Is(err, errQueueFull) {
			s.h.d.Metrics.DroppedTotal.WithLabelValues(metrics.DropCommandQueue).Inc()
			s.log.Warn().Str("command_id", cmdID).Msg("command refused: node write queue full")
		}
		done(err)
	}
}

func (s *Session) track(t *tracked) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	if len(s.active) >= maxTracked {
		s.active = append(s.active[:0], s.active[1:]...)
	}
	s.active = append(s.active, t)
}

func (s *Session) untrack(t *tracked) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	for i, a := range s.active {
		if a == t {
			s.active = append(s.active[:i], s.active[i+1:]...)
			return
		}
	}
}

// report applies a node's report to the tracked commands: decide returns
// a command's new state and whether the report concerns it at all.
// Commands that reached an end state stop being tracked.
func (s *Session) report(source, status, message string, now time.Time, decide func(t *tracked, first bool) (string, bool)) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	keep := s.active[:0]
	for i, t := range s.active {
		st, ok := decide(t, i == 0)
		if ok {
			t.rec.Update(func(r *bus.CommandRecord) {
				r.State = st
				r.UpdatedAt = now.UTC()
				if len(r.Progress) < maxProgress {
					r.Progress = append(r.Progress, bus.CommandUpdate{At: now.UTC(), Source: source, Status: status, Message: message})
				}
			})
			s.h.d.Writer.Mark(t.rec)
			if st == bus.CommandSucceeded || st == bus.CommandFailed {
				continue
			}
		}
		keep = append(keep, t)
	}
	clear(s.active[len(keep):])
	s.active = keep
}

// onPotStatus: Installing -> in_progress; the expected end state ->
// succeeded; Failed -> failed. GetInstalledPots succeeds at the first
// pot report.
func (s *Session) onPotStatus(pot string, st proto.PotStatus, message string, now time.Time) {
	s.report("pot_status", string(st), message, now, func(t *tracked, _ bool) (string, bool) {
		if t.kind == proto.CmdGetInstalledPots {
			return bus.CommandSucceeded, true
		}
		if t.pot == "" || t.pot != pot {
			return "", false
		}
		query := t.kind == proto.CmdGetPotStatus || t.kind == proto.CmdGetPotLogs || t.kind == proto.CmdGetPotMetrics || t.kind == proto.CmdGetPotInfo
		switch {
		case st == proto.PotFailed:
			return bus.CommandFailed, true
		case query:
			return bus.CommandSucceeded, true
		case st == proto.PotInstalling:
			return bus.CommandInProgress, true
		case st == proto.PotRunning && t.kind != proto.CmdStopPot:
			return bus.CommandSucceeded, true
		case st == proto.PotStopped && (t.kind == proto.CmdStopPot || t.kind == proto.CmdInstallPot && !t.autoStart):
			return bus.CommandSucceeded, true
		}
		return bus.CommandInProgress, true
	})
}

// onNodeError fails the oldest unfinished command: nodes answer an unknown
// or failed command with a NodeEvent Error and handle commands in order.
func (s *Session) onNodeError(ev *proto.NodeEvent, now time.Time) {
	text := ev.Message
	if text == "" {
		text = ev.Description
	}
	s.report("node_event", string(ev.Type), text, now, func(_ *tracked, first bool) (string, bool) {
		return bus.CommandFailed, first
	})
}

// onNodeStatus: a status report after a Restart means the node is back.
func (s *Session) onNodeStatus(st proto.NodeStatus, now time.Time) {
	s.report("node_status", string(st), "", now, func(t *tracked, _ bool) (string, bool) {
		return bus.CommandSucceeded, t.kind == proto.CmdRestart
	})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
