package sim

import (
	"context"
	"time"
)

// Pump sends attack events until ctx ends or a write fails: at rate
// events per second, or as fast as the socket accepts them when rate <= 0
// (then the core's backpressure paces it). Events go out in writes of at
// most batch events (a late paced node catches up in such bursts). A
// blocked write is not interrupted by ctx; it finishes when the core reads.
// It returns nil when ctx ends.
func (n *Node) Pump(ctx context.Context, rate float64, batch int) error {
	if batch < 1 {
		batch = 1
	}
	if rate <= 0 {
		for ctx.Err() == nil {
			if _, err := n.SendEvents(batch); err != nil {
				return err
			}
		}
		return nil
	}
	interval := time.Duration(float64(time.Second) / rate)
	if interval <= 0 {
		interval = 1
	}
	// Spread the nodes' phases over the interval so they do not send in step.
	phase := time.Duration(uint64(n.cfg.Index) * 0x9E3779B97F4A7C15 % uint64(interval))
	start := time.Now().Add(phase)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var done uint64
	for {
		if ctx.Err() != nil {
			return nil
		}
		elapsed := time.Since(start)
		if elapsed >= 0 {
			if due := uint64(elapsed/interval) + 1; due > done {
				k := int(min(due-done, uint64(batch)))
				if _, err := n.SendEvents(k); err != nil {
					return err
				}
				done += uint64(k)
				continue
			}
		}
		timer.Reset(time.Until(start.Add(time.Duration(done) * interval)))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}
