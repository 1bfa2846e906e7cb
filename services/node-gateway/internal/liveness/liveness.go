// Package liveness keeps the gateways bucket honest: each gateway puts its
// heartbeat there (the bucket's entries expire), and sweeps node records
// that claim to be connected through a gateway whose heartbeat vanished,
// marking them disconnected with reason gateway_lost. Sweeps use
// compare-and-set, so when several gateways sweep at once exactly one
// writes each record, and a record rewritten by its gateway meanwhile is
// left alone.
//
// Heartbeat and Sweeper each run in one goroutine (their Run); their
// methods are not meant to be called concurrently with Run except where
// documented.
package liveness

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Heartbeat puts this gateway's GatewayRecord every bus.GatewayHeartbeat.
type Heartbeat struct {
	KV        jetstream.KeyValue
	GatewayID string
	StartedAt time.Time
	// Nodes returns how many nodes the gateway holds.
	Nodes func() int
	// Restored is called after a beat that found the key gone (it had
	// expired: other gateways may have swept this gateway's nodes) or
	// followed failed beats.
	Restored func()
	Log      zerolog.Logger
	// Interval overrides bus.GatewayHeartbeat (tests).
	Interval time.Duration

	rev    uint64
	failed bool
}

// Beat writes the record once. It reports whether the key had vanished
// (or never existed) before this write.
func (h *Heartbeat) Beat(ctx context.Context) (restored bool, err error) {
	rec := bus.GatewayRecord{GatewayID: h.GatewayID, StartedAt: h.StartedAt.UTC(), Heartbeat: time.Now().UTC()}
	if h.Nodes != nil {
		rec.Nodes = h.Nodes()
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	key := bus.EscapeToken(h.GatewayID)
	if h.rev != 0 {
		rev, err := h.KV.Update(ctx, key, data, h.rev)
		if err == nil {
			h.rev = rev
			return false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, err
		}
	}
	rev, err := h.KV.Put(ctx, key, data)
	if err != nil {
		return false, err
	}
	h.rev = rev
	return true, nil
}

// Run beats until ctx is done.
func (h *Heartbeat) Run(ctx context.Context) error {
	every := h.Interval
	if every <= 0 {
		every = bus.GatewayHeartbeat
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, every)
		restored, err := h.Beat(bctx)
		cancel()
		if err != nil {
			if !h.failed {
				h.Log.Warn().Err(err).Msg("gateway heartbeat failed")
			}
			h.failed = true
			continue
		}
		if (restored || h.failed) && h.Restored != nil {
			h.Log.Info().Bool("key_was_gone", restored).Msg("gateway heartbeat restored; rewriting held node records")
			h.Restored()
		}
		h.failed = false
	}
}

// Remove deletes the heartbeat (at shutdown, after the gateway's nodes are
// recorded disconnected).
func (h *Heartbeat) Remove(ctx context.Context) error {
	return h.KV.Delete(ctx, bus.EscapeToken(h.GatewayID))
}

// Sweeper marks the nodes of dead gateways disconnected.
type Sweeper struct {
	Nodes     jetstream.KeyValue
	Gateways  jetstream.KeyValue
	NC        *nats.Conn
	Contract  bus.Contract
	GatewayID string
	Log       zerolog.Logger
	// Interval is how often the gateways bucket is checked for vanished
	// heartbeats (default bus.GatewayHeartbeat).
	Interval time.Duration
	// FullEvery is how often every node record is checked even when no
	// gateway vanished (default 5 minutes).
	FullEvery time.Duration

	known map[string]bool
}

// alive returns the ids of the gateways with a heartbeat.
func (s *Sweeper) alive(ctx context.Context) (map[string]bool, error) {
	lister, err := s.Gateways.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lister.Stop() }()
	out := make(map[string]bool)
	for k := range lister.Keys() {
		if id, err := bus.UnescapeToken(k); err == nil {
			out[id] = true
		}
	}
	return out, nil
}

// Sweep checks every node record once and marks those held by a gateway
// without a heartbeat. When selfDead is set this gateway counts as dead
// too (at start, before it holds any node: records left by its previous
// run). It returns how many records it marked.
func (s *Sweeper) Sweep(ctx context.Context, selfDead bool) (int, error) {
	alive, err := s.alive(ctx)
	if err != nil {
		return 0, err
	}
	if selfDead {
		delete(alive, s.GatewayID)
	} else {
		alive[s.GatewayID] = true
	}
	s.known = alive
	lister, err := s.Nodes.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	marked := 0
	for _, k := range keys {
		entry, err := s.Nodes.Get(ctx, k)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
				continue
			}
			return marked, err
		}
		var rec bus.NodeRecord
		if json.Unmarshal(entry.Value(), &rec) != nil || !rec.Connected || alive[rec.GatewayID] {
			continue
		}
		now := time.Now().UTC()
		rec.Connected = false
		rec.DisconnectedAt = now
		rec.DisconnectReason = bus.ReasonGatewayLost
		data, err := json.Marshal(rec)
		if err != nil {
			continue
		}
		if _, err := s.Nodes.Update(ctx, k, data, entry.Revision()); err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // its gateway, or another sweeper, wrote it meanwhile
			}
			return marked, err
		}
		marked++
		s.Log.Info().Uint64("node_id", rec.NodeID).Str("node_name", rec.NodeName).Str("lost_gateway_id", rec.GatewayID).
			Msg("node of a vanished gateway marked disconnected")
		l := bus.NodeLifecycle{Kind: bus.LifecycleDisconnected, NodeID: rec.NodeID, NodeIDStr: proto.FormatNodeID(rec.NodeID),
			NodeName: rec.NodeName, Time: now, Reason: bus.ReasonGatewayLost}
		if b, err := json.Marshal(l); err == nil {
			_ = s.NC.Publish(s.Contract.Node(rec.NodeID, bus.LifecycleDisconnected), b)
		}
	}
	return marked, nil
}

// Run sweeps whenever a gateway's heartbeat disappears, and every
// FullEvery, until ctx is done.
func (s *Sweeper) Run(ctx context.Context) error {
	every, full := s.Interval, s.FullEvery
	if every <= 0 {
		every = bus.GatewayHeartbeat
	}
	if full <= 0 {
		full = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastFull := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, every)
		alive, err := s.alive(cctx)
		cancel()
		if err != nil {
			continue
		}
		vanished := false
		for id := range s.known {
			if !alive[id] {
				vanished = true
			}
		}
		s.known = alive
		if !vanished && time.Since(lastFull) < full {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := s.Sweep(sctx, false); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Msg("sweep of node records failed; will retry")
			s.known = nil // retry at the next tick
			lastFull = time.Time{}
		} else {
			lastFull = time.Now()
		}
		cancel()
	}
}
