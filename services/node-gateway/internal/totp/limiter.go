package totp

import (
	"net"
	"sync"
	"time"
)

// limiter counts failed attempts per remote address in a sliding window.
// Memory is bounded: at most max addresses are tracked, each with at most
// limit timestamps; entries whose failures have all left the window are
// swept, and when the table is still full an arbitrary entry is evicted
// (an attacker with more addresses than the cap could evade a per-address
// limit anyway). No background goroutine: sweeping happens on writes.
type limiter struct {
	limit  int           // failures allowed per window; <= 0 disables
	window time.Duration // sliding window length
	max    int           // tracked addresses cap

	mu        sync.Mutex
	addrs     map[string]*failures
	lastSweep time.Time
}

// failures is a ring of the most recent failure times of one address.
type failures struct {
	times []time.Time // len <= limit, oldest at next once full
	next  int
}

func newLimiter(limit int, window time.Duration, max int) *limiter {
	return &limiter{limit: limit, window: window, max: max, addrs: make(map[string]*failures)}
}

// addrKey reduces "host:port" to host, so every connection from one
// address shares a budget; a bare IP (v4 or v6) is used as is.
func addrKey(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// recent returns how many of f's failures are within the window before now.
func (l *limiter) recent(f *failures, now time.Time) int {
	n := 0
	for _, t := range f.times {
		if now.Sub(t) < l.window {
			n++
		}
	}
	return n
}

// blocked reports whether addr has reached the failure limit at now.
func (l *limiter) blocked(addr string, now time.Time) bool {
	if l.limit <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.addrs[addrKey(addr)]
	return ok && l.recent(f, now) >= l.limit
}

// fail records a failed attempt by addr at now.
func (l *limiter) fail(addr string, now time.Time) {
	if l.limit <= 0 {
		return
	}
	key := addrKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.addrs[key]
	if !ok {
		// Sweep once per window, and when full at most 16 times per
		// window, so a flood of new addresses costs O(1) per failure
		// between sweeps.
		since := now.Sub(l.lastSweep)
		if since >= l.window || len(l.addrs) >= l.max && since >= l.window/16 {
			l.sweep(now)
		}
		if len(l.addrs) >= l.max {
			for k := range l.addrs { // arbitrary victim
				delete(l.addrs, k)
				break
			}
		}
		f = &failures{times: make([]time.Time, 0, l.limit)}
		l.addrs[key] = f
	}
	if len(f.times) < l.limit {
		f.times = append(f.times, now)
		return
	}
	f.times[f.next] = now
	f.next = (f.next + 1) % l.limit
}

// sweep drops addresses with no failure inside the window. Caller holds mu.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, f := range l.addrs {
		if l.recent(f, now) == 0 {
			delete(l.addrs, k)
		}
	}
}

// len returns the number of tracked addresses.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}
