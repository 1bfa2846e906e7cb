// Package ratelimit keeps one token bucket per client key (a token name or
// a client address) in a map bounded in size. A Limiter is safe for
// concurrent use.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter limits requests per key.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter allowing perSecond requests per key with bursts of
// burst, tracking at most maxKeys keys. perSecond <= 0 disables limiting.
func New(perSecond float64, burst, maxKeys int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if maxKeys < 1 {
		maxKeys = 1
	}
	return &Limiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		maxKeys: maxKeys,
		now:     time.Now,
		buckets: make(map[string]*bucket),
	}
}

// Allow takes one request for key. When it is refused, retryAfter is how
// long until a request would be allowed (rounded up to whole seconds, at
// least 1 s), for the Retry-After header.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil || l.limit <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	l.mu.Unlock()
	if !r.OK() {
		return false, time.Second
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return true, 0
	}
	r.CancelAt(now)
	return false, time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// Len is the number of tracked keys.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// evict makes room: first every key whose bucket has refilled (it is
// indistinguishable from a new one), then, if none has, the key seen least
// recently. Called with mu held.
func (l *Limiter) evict(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
	var oldestKey string
	var oldest time.Time
	for k, b := range l.buckets {
		if now.Sub(b.seen) >= full {
			delete(l.buckets, k)
			continue
		}
		if oldestKey == "" || b.seen.Before(oldest) {
			oldestKey, oldest = k, b.seen
		}
	}
	if len(l.buckets) >= l.maxKeys && oldestKey != "" {
		delete(l.buckets, oldestKey)
	}
}
