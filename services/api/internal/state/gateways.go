package state

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Gateways answers whether a gateway is alive: whether its key exists in
// the gateways bucket, whose entries expire unless the gateway refreshes
// them. Answers are cached for a short time so that listing thousands of
// nodes costs one lookup per gateway, not per node. Safe for concurrent
// use.
type Gateways struct {
	kv        jetstream.KeyValue
	maxAge    time.Duration
	timeout   time.Duration
	connected func() bool
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]gwState
}

type gwState struct {
	alive   bool
	checked time.Time
}

// NewGateways checks liveness in kv, caching each answer for maxAge and
// bounding each lookup by timeout. While connected reports false, the last
// answers stand without a lookup.
func NewGateways(kv jetstream.KeyValue, maxAge, timeout time.Duration, connected func() bool) *Gateways {
	return &Gateways{kv: kv, maxAge: maxAge, timeout: timeout, connected: connected, now: time.Now, cache: make(map[string]gwState)}
}

// Alive reports whether gateway id is alive. A lookup that fails for
// another reason than a missing key keeps the previous answer (dead when
// there is none).
func (g *Gateways) Alive(ctx context.Context, id string) bool {
	if id == "" {
		return false
	}
	now := g.now()
	g.mu.Lock()
	st, ok := g.cache[id]
	g.mu.Unlock()
	if ok && now.Sub(st.checked) < g.maxAge || !g.connected() {
		return st.alive
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	_, err := g.kv.Get(ctx, id)
	switch {
	case err == nil:
		st = gwState{alive: true, checked: now}
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		st = gwState{alive: false, checked: now}
	default:
		st.checked = now
	}
	g.mu.Lock()
	if len(g.cache) > 4096 { // gateway ids come from records: bound the cache
		clear(g.cache)
	}
	g.cache[id] = st
	g.mu.Unlock()
	return st.alive
}

// Snapshot resolves the liveness of ids and returns a lookup that does no
// I/O (unknown ids are dead), for use under the view's lock.
func (g *Gateways) Snapshot(ctx context.Context, ids []string) func(id string) bool {
	alive := make(map[string]bool, len(ids))
	for _, id := range ids {
		alive[id] = g.Alive(ctx, id)
	}
	return func(id string) bool { return alive[id] }
}

// Count returns the number of live gateways (keys in the bucket).
func (g *Gateways) Count(ctx context.Context) (int, error) {
	l, err := g.kv.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for range l.Keys() {
		n++
	}
	return n, nil
}
