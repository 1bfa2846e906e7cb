package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Node is a node record owned by one session. The first write takes the
// record unconditionally (a registration wins); every later write is a
// compare-and-set on the revision this Node last wrote. On a conflict the
// record is re-read: if it still names this gateway and this session's
// connected_since (e.g. another gateway's sweeper marked it lost while this
// gateway was cut off from NATS), it is ours and is rewritten; otherwise
// another session owns the node and this Node stops writing for good.
type Node struct {
	kv  jetstream.KeyValue
	key string
	log zerolog.Logger

	mu   sync.Mutex
	rec  bus.NodeRecord
	rev  uint64
	lost bool
}

// NewNode returns the record rec (not yet written) in kv.
func NewNode(kv jetstream.KeyValue, rec bus.NodeRecord, log zerolog.Logger) *Node {
	return &Node{kv: kv, key: bus.NodeKey(rec.NodeID), rec: rec, log: log}
}

// Key implements Record.
func (n *Node) Key() string { return "nodes/" + n.key }

// Update changes the record in memory; Mark it to write it.
func (n *Node) Update(fn func(r *bus.NodeRecord)) {
	n.mu.Lock()
	fn(&n.rec)
	n.mu.Unlock()
}

// Record returns a copy of the record.
func (n *Node) Record() bus.NodeRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rec
}

// Lost reports whether another session took the record over.
func (n *Node) Lost() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lost
}

// Flush implements Record.
func (n *Node) Flush(ctx context.Context) error {
	for range 8 {
		n.mu.Lock()
		rec, rev, lost := n.rec, n.rev, n.lost
		n.mu.Unlock()
		if lost {
			return nil
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode node record: %w", err)
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = n.kv.Put(ctx, n.key, data)
		} else {
			newRev, err = n.kv.Update(ctx, n.key, data, rev)
		}
		if err == nil {
			n.mu.Lock()
			n.rev = newRev
			n.mu.Unlock()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		// Someone else wrote the record: is it still ours?
		entry, err := n.kv.Get(ctx, n.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			n.giveUp("node record was deleted")
			return nil
		}
		if err != nil {
			return err
		}
		var cur bus.NodeRecord
		if json.Unmarshal(entry.Value(), &cur) != nil ||
			cur.GatewayID != rec.GatewayID || !cur.ConnectedSince.Equal(rec.ConnectedSince) {
			n.giveUp("another session holds the node")
			return nil
		}
		n.mu.Lock()
		n.rev = entry.Revision()
		n.mu.Unlock()
	}
	return errors.New("node record: too many concurrent writers")
}

func (n *Node) giveUp(why string) {
	n.mu.Lock()
	n.lost = true
	n.mu.Unlock()
	n.log.Info().Str("reason", why).Msg("node record no longer owned by this session; not writing it")
}

// Pot is a pot record, written with Put (the last report wins).
type Pot struct {
	kv  jetstream.KeyValue
	key string

	mu        sync.Mutex
	rec       bus.PotRecord
	typeKnown bool
}

// NewPot returns the record of pot potID of node in kv.
func NewPot(kv jetstream.KeyValue, node uint64, potID string) *Pot {
	return &Pot{kv: kv, key: bus.PotKey(node, potID)}
}

// Key implements Record.
func (p *Pot) Key() string { return "pots/" + p.key }

// Set replaces the record in memory. An empty PotType keeps the one
// already known (here or in the bucket).
func (p *Pot) Set(rec bus.PotRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rec.PotType == "" {
		rec.PotType = p.rec.PotType
	} else {
		p.typeKnown = true
	}
	p.rec = rec
}

// Record returns a copy of the record.
func (p *Pot) Record() bus.PotRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec
}

// Flush implements Record.
func (p *Pot) Flush(ctx context.Context) error {
	p.mu.Lock()
	rec, typeKnown := p.rec, p.typeKnown
	p.mu.Unlock()
	if rec.PotType == "" && !typeKnown {
		// The node left the type out; keep the one recorded earlier.
		if e, err := p.kv.Get(ctx, p.key); err == nil {
			var old bus.PotRecord
			if json.Unmarshal(e.Value(), &old) == nil && old.PotType != "" {
				rec.PotType = old.PotType
				p.mu.Lock()
				if p.rec.PotType == "" {
					p.rec.PotType = old.PotType
				}
				p.mu.Unlock()
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			return err
		}
		p.mu.Lock()
		p.typeKnown = true
		p.mu.Unlock()
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode pot record: %w", err)
	}
	_, err = p.kv.Put(ctx, p.key, data)
	return err
}

// Command is a command record, written with Put.
type Command struct {
	kv jetstream.KeyValue

	mu  sync.Mutex
	rec bus.CommandRecord
}

// NewCommand returns the record rec in kv.
func NewCommand(kv jetstream.KeyValue, rec bus.CommandRecord) *Command {
	return &Command{kv: kv, rec: rec}
}

// Key implements Record.
func (c *Command) Key() string { return "commands/" + c.rec.CommandID }

// Update changes the record in memory; Mark it to write it.
func (c *Command) Update(fn func(r *bus.CommandRecord)) {
	c.mu.Lock()
	fn(&c.rec)
	c.mu.Unlock()
}

// Record returns a copy of the record (Progress shared; do not modify).
func (c *Command) Record() bus.CommandRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// Flush implements Record.
func (c *Command) Flush(ctx context.Context) error {
	c.mu.Lock()
	data, err := json.Marshal(c.rec)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode command record: %w", err)
	}
	_, err = c.kv.Put(ctx, bus.EscapeToken(c.rec.CommandID), data)
	return err
}
