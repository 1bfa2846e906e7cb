package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// State reads node state from the buckets the gateway writes.
type State struct {
	Nodes    jetstream.KeyValue
	Pots     jetstream.KeyValue
	Gateways jetstream.KeyValue
}

// errNodeNotFound is returned when a node has no record.
var errNodeNotFound = errors.New("node not found")

// nodes returns every node record, with Connected set only when the node
// is live (its gateway still heartbeats).
func (s *State) nodes(ctx context.Context) ([]bus.NodeRecord, error) {
	alive, err := s.gatewayAlive(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.Nodes.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch nodes: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []bus.NodeRecord
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("nodes watcher closed")
			}
			if e == nil { // every current value has been delivered
				return out, nil
			}
			var r bus.NodeRecord
			if json.Unmarshal(e.Value(), &r) != nil {
				continue // not ours to fix; the gateway rewrites it
			}
			r.Connected = r.Live(alive)
			out = append(out, r)
		}
	}
}

// node returns one node's record, Connected set as in nodes.
func (s *State) node(ctx context.Context, id uint64) (bus.NodeRecord, error) {
	e, err := s.Nodes.Get(ctx, bus.NodeKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return bus.NodeRecord{}, errNodeNotFound
	}
	if err != nil {
		return bus.NodeRecord{}, fmt.Errorf("get node: %w", err)
	}
	var r bus.NodeRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return bus.NodeRecord{}, fmt.Errorf("node record: %w", err)
	}
	alive, err := s.gatewayAlive(ctx)
	if err != nil {
		return bus.NodeRecord{}, err
	}
	r.Connected = r.Live(alive)
	return r, nil
}

// count returns the number of node records.
func (s *State) count(ctx context.Context) (int, error) {
	l, err := s.Nodes.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("list nodes: %w", err)
	}
	defer func() { _ = l.Stop() }()
	n := 0
	for range l.Keys() {
		n++
	}
	return n, nil
}

// gatewayAlive returns a lookup of the gateways whose heartbeat has not expired.
func (s *State) gatewayAlive(ctx context.Context) (func(string) bool, error) {
	ids, err := s.gateways(ctx)
	if err != nil {
		return nil, err
	}
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return func(id string) bool { _, ok := set[id]; return ok }, nil
}

// gateways returns the ids of the live gateways.
func (s *State) gateways(ctx context.Context) ([]string, error) {
	l, err := s.Gateways.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list gateways: %w", err)
	}
	defer func() { _ = l.Stop() }()
	var ids []string
	for k := range l.Keys() {
		ids = append(ids, k)
	}
	return ids, nil
}

// forget deletes a node's record and the records of its pots.
func (s *State) forget(ctx context.Context, id uint64) error {
	l, err := s.Pots.ListKeysFiltered(ctx, bus.PotKeysOf(id))
	if err != nil {
		return fmt.Errorf("list pots: %w", err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	_ = l.Stop()
	for _, k := range keys {
		if err := s.Pots.Delete(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete pot %s: %w", k, err)
		}
	}
	if err := s.Nodes.Delete(ctx, bus.NodeKey(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete node: %w", err)
	}
	return nil
}
