// Package state keeps an in-memory view of the nodes and pots buckets,
// current by watching them, and checks gateway liveness against the
// gateways bucket. The view is rebuilt from the buckets at every start, so
// api replicas stay stateless; it is safe for concurrent use: Run writes,
// every other method reads.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// View is the current nodes and pots.
type View struct {
	log zerolog.Logger

	mu       sync.RWMutex
	nodes    map[uint64]bus.NodeRecord
	ids      []uint64 // sorted keys of nodes
	gwRefs   map[string]int
	pots     map[uint64]map[string]bus.PotRecord // node -> pot key token -> record
	potCount int

	// nodeRev and potRev are the bucket revisions (stream sequences) applied
	// last; changed, when not nil, is closed at the next apply so CatchUp
	// callers wake up.
	nodeRev, potRev uint64
	changed         chan struct{}

	syncOnce sync.Once
	synced   chan struct{}
}

// New returns an empty view; Run fills it.
func New(log zerolog.Logger) *View {
	return &View{
		log:    log,
		nodes:  make(map[uint64]bus.NodeRecord),
		gwRefs: make(map[string]int),
		pots:   make(map[uint64]map[string]bus.PotRecord),
		synced: make(chan struct{}),
	}
}

// Synced is closed once the view holds every entry the buckets held when
// Run started.
func (v *View) Synced() <-chan struct{} { return v.synced }

// Run watches both buckets until ctx is done and returns nil then, or an
// error if a watch cannot start.
func (v *View) Run(ctx context.Context, nodes, pots jetstream.KeyValue) error {
	nw, err := nodes.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer nw.Stop()
	pw, err := pots.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer pw.Stop()
	nodesDone, potsDone := false, false
	nu, pu := nw.Updates(), pw.Updates()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-nu:
			if !ok {
				return v.ended(ctx)
			}
			if e == nil {
				nodesDone = true
			} else {
				v.applyNode(e)
			}
		case e, ok := <-pu:
			if !ok {
				return v.ended(ctx)
			}
			if e == nil {
				potsDone = true
			} else {
				v.applyPot(e)
			}
		}
		if nodesDone && potsDone {
			v.syncOnce.Do(func() { close(v.synced) })
		}
	}
}

func (v *View) applyNode(e jetstream.KeyValueEntry) {
	id, err := strconv.ParseUint(e.Key(), 10, 64)
	if err != nil {
		v.log.Warn().Str("key", e.Key()).Msg("ignoring nodes bucket key that is not a node id")
		v.mu.Lock()
		v.applied(&v.nodeRev, e.Revision())
		v.mu.Unlock()
		return
	}
	var rec bus.NodeRecord
	put := e.Operation() == jetstream.KeyValuePut
	if put {
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			v.log.Warn().Err(err).Str("key", e.Key()).Msg("ignoring malformed node record")
			put = false
		} else {
			rec.NodeID = id // the key is authoritative
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.applied(&v.nodeRev, e.Revision())
	old, had := v.nodes[id]
	if had && old.Connected {
		v.unref(old.GatewayID)
	}
	if !put {
		if had {
			delete(v.nodes, id)
			if i, ok := slices.BinarySearch(v.ids, id); ok {
				v.ids = slices.Delete(v.ids, i, i+1)
			}
		}
		return
	}
	v.nodes[id] = rec
	if rec.Connected {
		v.gwRefs[rec.GatewayID]++
	}
	if !had {
		i, _ := slices.BinarySearch(v.ids, id)
		v.ids = slices.Insert(v.ids, i, id)
	}
}

// applied records a bucket revision as applied and wakes CatchUp callers.
// v.mu is held.
func (v *View) applied(rev *uint64, r uint64) {
	if r > *rev {
		*rev = r
	}
	if v.changed != nil {
		close(v.changed)
		v.changed = nil
	}
}

// CatchUp blocks until the view has applied the nodes bucket up to revision
// nodeRev and the pots bucket up to potRev, or ctx ends. A handler that has
// just written the buckets calls it with their last revisions so that its
// caller reads its own write from the view.
func (v *View) CatchUp(ctx context.Context, nodeRev, potRev uint64) error {
	for {
		v.mu.Lock()
		if v.nodeRev >= nodeRev && v.potRev >= potRev {
			v.mu.Unlock()
			return nil
		}
		if v.changed == nil {
			v.changed = make(chan struct{})
		}
		ch := v.changed
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (v *View) unref(gw string) {
	if v.gwRefs[gw] <= 1 {
		delete(v.gwRefs, gw)
	} else {
		v.gwRefs[gw]--
	}
}

func (v *View) applyPot(e jetstream.KeyValueEntry) {
	nodeTok, potTok, ok := strings.Cut(e.Key(), ".")
	id, err := strconv.ParseUint(nodeTok, 10, 64)
	if !ok || err != nil {
		v.log.Warn().Str("key", e.Key()).Msg("ignoring pots bucket key that is not node.pot")
		v.mu.Lock()
		v.applied(&v.potRev, e.Revision())
		v.mu.Unlock()
		return
	}
	var rec bus.PotRecord
	put := e.Operation() == jetstream.KeyValuePut
	if put {
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			v.log.Warn().Err(err).Str("key", e.Key()).Msg("ignoring malformed pot record")
			put = false
		} else {
			rec.NodeID = id
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.applied(&v.potRev, e.Revision())
	m := v.pots[id]
	_, had := m[potTok]
	if !put {
		if had {
			delete(m, potTok)
			v.potCount--
			if len(m) == 0 {
				delete(v.pots, id)
			}
		}
		return
	}
	if m == nil {
		m = make(map[string]bus.PotRecord)
		v.pots[id] = m
	}
	m[potTok] = rec
	if !had {
		v.potCount++
	}
}

// Node returns a node's record and its pots sorted by pot id.
func (v *View) Node(id uint64) (bus.NodeRecord, []bus.PotRecord, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	rec, ok := v.nodes[id]
	if !ok {
		return bus.NodeRecord{}, nil, false
	}
	return rec, v.potsOf(id), true
}

func (v *View) potsOf(id uint64) []bus.PotRecord {
	m := v.pots[id]
	out := make([]bus.PotRecord, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b bus.PotRecord) int { return strings.Compare(a.PotID, b.PotID) })
	return out
}

// Nodes returns up to limit nodes in node id order, starting after the
// node id after (when hasAfter), that keep accepts; more tells whether
// further nodes were accepted past the page. keep runs under the view's
// read lock: it must not block.
func (v *View) Nodes(after uint64, hasAfter bool, limit int, keep func(*bus.NodeRecord) bool) (out []bus.NodeRecord, more bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	i := 0
	if hasAfter {
		var found bool
		i, found = slices.BinarySearch(v.ids, after)
		if found {
			i++
		}
	}
	out = make([]bus.NodeRecord, 0, min(limit, len(v.ids)-i))
	for ; i < len(v.ids); i++ {
		rec := v.nodes[v.ids[i]]
		if !keep(&rec) {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, rec)
	}
	return out, false
}

// EachNode calls f for every node under the read lock; f must not block.
func (v *View) EachNode(f func(*bus.NodeRecord)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, id := range v.ids {
		rec := v.nodes[id]
		f(&rec)
	}
}

// PotCursor is a position in the pots order (node id, then pot key).
type PotCursor struct {
	NodeID uint64
	PotKey string // bus.EscapeToken of the pot id
}

// Pots returns up to limit pots in (node id, pot key) order after the
// cursor (when non-nil), that keep accepts, and the cursor of the last one
// returned when more were accepted past the page.
func (v *View) Pots(after *PotCursor, limit int, keep func(*bus.PotRecord) bool) (out []bus.PotRecord, next *PotCursor) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	nodes := make([]uint64, 0, len(v.pots))
	for id := range v.pots {
		if after == nil || id >= after.NodeID {
			nodes = append(nodes, id)
		}
	}
	slices.Sort(nodes)
	var last PotCursor
	for _, id := range nodes {
		m := v.pots[id]
		keys := make([]string, 0, len(m))
		for k := range m {
			if after != nil && id == after.NodeID && k <= after.PotKey {
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			rec := m[k]
			if !keep(&rec) {
				continue
			}
			if len(out) == limit {
				return out, &last
			}
			out = append(out, rec)
			last = PotCursor{NodeID: id, PotKey: k}
		}
	}
	return out, nil
}

// EachPot calls f for every pot under the read lock; f must not block.
func (v *View) EachPot(f func(*bus.PotRecord)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, m := range v.pots {
		for _, p := range m {
			f(&p)
		}
	}
}

// Counts returns the number of nodes and pots.
func (v *View) Counts() (nodes, pots int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.nodes), v.potCount
}

// GatewayIDs returns the gateways that connected nodes name.
func (v *View) GatewayIDs() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]string, 0, len(v.gwRefs))
	for id := range v.gwRefs {
		out = append(out, id)
	}
	return out
}

var errWatchEnded = errors.New("bucket watch ended")

// ended is what Run returns when a watch's channel closes. The watches
// subscribe with ctx, so cancelling ctx also closes their channels; which of
// ctx.Done and the closed channel the select sees first is chance, and a
// cancelled ctx is a clean stop either way.
func (v *View) ended(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	return errWatchEnded
}

// ErrNotSynced is returned by Wait when ctx ends before the view synced.
var ErrNotSynced = errors.New("state view not synced")

// Wait blocks until the view is synced or ctx is done.
func (v *View) Wait(ctx context.Context) error {
	select {
	case <-v.synced:
		return nil
	case <-ctx.Done():
		return ErrNotSynced
	}
}
