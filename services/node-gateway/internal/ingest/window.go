// Package ingest publishes attack events to JetStream without ever losing
// one it accepted: every event waits in a bounded window of unacknowledged
// bytes and is republished with the same message id (so JetStream
// de-duplicates) until the stream stores it, across NATS outages.
//
// A full window blocks Publish, which blocks the session reading that
// node's socket: TCP backpressure instead of unbounded buffering.
// Window and Publisher are safe for concurrent use.
package ingest

import (
	"context"
	"sync"
	"time"
)

// Window is a byte budget: Acquire blocks while the bytes in use would
// exceed the maximum. A single request larger than the maximum is let in
// when nothing else is in use, so it cannot block forever.
type Window struct {
	max int64

	mu      sync.Mutex
	used    int64
	waiters int
	// wake is closed (and replaced) when bytes are released while someone
	// waits.
	wake chan struct{}
}

// NewWindow returns a window of max bytes.
func NewWindow(max int64) *Window {
	return &Window{max: max, wake: make(chan struct{})}
}

// Acquire takes n bytes, waiting for room until ctx is done. It returns
// how long it waited.
func (w *Window) Acquire(ctx context.Context, n int64) (time.Duration, error) {
	var start time.Time
	for {
		w.mu.Lock()
		if w.used+n <= w.max || w.used == 0 {
			w.used += n
			w.mu.Unlock()
			if start.IsZero() {
				return 0, nil
			}
			return time.Since(start), nil
		}
		wake := w.wake
		w.waiters++
		w.mu.Unlock()
		if start.IsZero() {
			start = time.Now()
		}
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.waiters--
			w.mu.Unlock()
			return time.Since(start), ctx.Err()
		case <-wake:
			w.mu.Lock()
			w.waiters--
			w.mu.Unlock()
		}
	}
}

// TryAcquire takes n bytes if there is room now.
func (w *Window) TryAcquire(n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.used+n <= w.max || w.used == 0 {
		w.used += n
		return true
	}
	return false
}

// Release returns n bytes.
func (w *Window) Release(n int64) {
	w.mu.Lock()
	w.used -= n
	if w.used < 0 {
		w.used = 0
	}
	if w.waiters > 0 {
		close(w.wake)
		w.wake = make(chan struct{})
	}
	w.mu.Unlock()
}

// Used returns the bytes in use.
func (w *Window) Used() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.used
}

// Max returns the window size.
func (w *Window) Max() int64 { return w.max }
