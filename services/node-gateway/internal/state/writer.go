// Package state keeps the gateway's records in JetStream key-value buckets
// (nodes, pots, commands) without making node sessions wait on NATS.
//
// Sessions change records in memory and Mark them; a Writer's workers write
// the latest value of every marked record, coalescing many changes into one
// write and retrying failed writes until NATS takes them. Each key is always
// written by the same worker, so writes of one key never race. Node records
// are owned: a gateway writes one only while it still holds the node (a
// compare-and-set on the record's revision), so a stale session can never
// overwrite the record of the session that replaced it.
//
// Writer, Node, Pot and Command are safe for concurrent use.
package state

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Record is a value the Writer can write: its latest state, under a key
// that is unique across buckets.
type Record interface {
	// Key identifies the record, e.g. "nodes/42".
	Key() string
	// Flush writes the record's current value. An error means "retry".
	Flush(ctx context.Context) error
}

// WriteTimeout bounds one key-value write.
const WriteTimeout = 5 * time.Second

// Writer writes marked records in the background.
type Writer struct {
	nc      *nats.Conn
	log     zerolog.Logger
	m       *metrics.Metrics
	workers []*worker
}

type worker struct {
	mu    sync.Mutex
	dirty map[string]Record
	busy  bool
	wake  chan struct{} // cap 1
}

// NewWriter returns a writer with n workers (n >= 1).
func NewWriter(nc *nats.Conn, n int, log zerolog.Logger, m *metrics.Metrics) *Writer {
	w := &Writer{nc: nc, log: log, m: m}
	for range max(n, 1) {
		w.workers = append(w.workers, &worker{dirty: make(map[string]Record), wake: make(chan struct{}, 1)})
	}
	return w
}

// Mark schedules r to be written. Marking a record that is already waiting
// costs nothing; the newest Record for a key wins.
func (w *Writer) Mark(r Record) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(r.Key()))
	wk := w.workers[h.Sum32()%uint32(len(w.workers))]
	wk.mu.Lock()
	wk.dirty[r.Key()] = r
	wk.mu.Unlock()
	select {
	case wk.wake <- struct{}{}:
	default:
	}
}

// Run writes marked records until ctx is done.
func (w *Writer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, wk := range w.workers {
		wg.Go(func() { w.runWorker(ctx, wk) })
	}
	wg.Wait()
	return nil
}

func (w *Writer) runWorker(ctx context.Context, wk *worker) {
	backoff := time.Duration(0)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wk.wake:
		case <-retry.C:
		}
		if w.nc.Status() != nats.CONNECTED {
			retry.Reset(100 * time.Millisecond)
			continue
		}
		wk.mu.Lock()
		batch := wk.dirty
		wk.dirty = make(map[string]Record, len(batch))
		wk.busy = len(batch) > 0
		wk.mu.Unlock()

		var failed []Record
		for _, r := range batch {
			if len(failed) > 0 || ctx.Err() != nil {
				failed = append(failed, r)
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, WriteTimeout)
			err := r.Flush(wctx)
			cancel()
			if err != nil {
				w.m.StateWriteErrorTotal.Inc()
				w.log.Warn().Err(err).Str("key", r.Key()).Msg("key-value write failed; will retry")
				failed = append(failed, r)
			}
		}
		wk.mu.Lock()
		for _, r := range failed {
			if _, newer := wk.dirty[r.Key()]; !newer {
				wk.dirty[r.Key()] = r
			}
		}
		wk.busy = false
		wk.mu.Unlock()
		if len(failed) > 0 {
			backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
			retry.Reset(backoff)
		} else {
			backoff = 0
		}
	}
}

// Pending returns how many records wait to be written.
func (w *Writer) Pending() int {
	n := 0
	for _, wk := range w.workers {
		wk.mu.Lock()
		n += len(wk.dirty)
		if wk.busy {
			n++
		}
		wk.mu.Unlock()
	}
	return n
}

// Flush waits until every marked record is written, or ctx is done. Run
// must be running for it to finish.
func (w *Writer) Flush(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for w.Pending() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
