// Package jsbench measures the raw JetStream async publish rate of a NATS
// server for a given message size and stream setup: the ceiling the
// core's end-to-end ingest is compared with. It is the equivalent of
// `nats bench js pub async` in a few lines of nats.go. Run is safe to call
// from one goroutine at a time per stream name.
package jsbench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config describes one publish run.
type Config struct {
	// URL of the NATS server.
	URL string
	// Options are extra connection options (e.g. nats.InProcessServer).
	Options []nats.Option
	// Stream is the name of the throw-away stream (default LOADBENCH); it
	// is created (or replaced) before and deleted after the run.
	Stream string
	// Subject prefix of the stream (default "loadbench"); messages go to
	// <prefix>.<i mod Subjects>.
	Subject string
	// Subjects spreads messages over this many subjects (default 100, like
	// events of many nodes and pots).
	Subjects int
	// Msgs is how many messages to publish (default 200,000).
	Msgs int
	// Payload is the message body (its length is the message size).
	Payload []byte
	// MsgID sets a unique Nats-Msg-Id on every message, as the gateway
	// does, so the server's de-duplication runs as it does for events.
	MsgID bool
	// MaxPending bounds unacknowledged async publishes per publisher
	// (default 4,000).
	MaxPending int
	// Publishers is how many connections publish in parallel (default 1).
	Publishers int
	// Storage is the stream's storage (default file, like the events stream).
	Storage jetstream.StorageType
	// Duplicates is the stream's de-duplication window (default 2 min).
	Duplicates time.Duration
}

// Result is the outcome of a run.
type Result struct {
	Msgs       int     `json:"msgs"`
	Size       int     `json:"msg_bytes"`
	Publishers int     `json:"publishers"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	Stored     uint64  `json:"stored"`
	Errors     int64   `json:"errors"`
}

func (c *Config) defaults() {
	if c.Stream == "" {
		c.Stream = "LOADBENCH"
	}
	if c.Subject == "" {
		c.Subject = "loadbench"
	}
	if c.Subjects <= 0 {
		c.Subjects = 100
	}
	if c.Msgs <= 0 {
		c.Msgs = 200_000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4000
	}
	if c.Publishers <= 0 {
		c.Publishers = 1
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 2 * time.Minute
	}
}

// Run creates the stream, publishes cfg.Msgs messages asynchronously,
// waits for every acknowledgement, reads the stream's message count, and
// deletes the stream.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	if len(cfg.Payload) == 0 {
		return Result{}, errors.New("jsbench: empty payload")
	}
	admin, err := nats.Connect(cfg.URL, append([]nats.Option{nats.Name("load-jsbench")}, cfg.Options...)...)
	if err != nil {
		return Result{}, fmt.Errorf("jsbench: connect: %w", err)
	}
	defer admin.Close()
	ajs, err := jetstream.New(admin)
	if err != nil {
		return Result{}, err
	}
	_ = ajs.DeleteStream(ctx, cfg.Stream)
	_, err = ajs.CreateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{cfg.Subject + ".>"}, Storage: cfg.Storage,
		Duplicates: cfg.Duplicates, AllowDirect: true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("jsbench: create stream: %w", err)
	}
	defer ajs.DeleteStream(context.WithoutCancel(ctx), cfg.Stream)

	var errs atomic.Int64
	subjects := make([]string, cfg.Subjects)
	for i := range subjects {
		subjects[i] = cfg.Subject + "." + strconv.Itoa(i)
	}
	type pub struct {
		nc *nats.Conn
		js jetstream.JetStream
		n  int
	}
	pubs := make([]pub, cfg.Publishers)
	for i := range pubs {
		nc, err := nats.Connect(cfg.URL, append([]nats.Option{nats.Name("load-jsbench")}, cfg.Options...)...)
		if err != nil {
			return Result{}, fmt.Errorf("jsbench: connect: %w", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
			jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { errs.Add(1) }))
		if err != nil {
			return Result{}, err
		}
		pubs[i] = pub{nc: nc, js: js, n: cfg.Msgs / cfg.Publishers}
	}
	pubs[0].n += cfg.Msgs % cfg.Publishers

	start := time.Now()
	var wg sync.WaitGroup
	for p, pb := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range pb.n {
				if ctx.Err() != nil {
					return
				}
				m := &nats.Msg{Subject: subjects[i%len(subjects)], Data: cfg.Payload}
				// A full window waits for acks instead of failing.
				opts := []jetstream.PublishOpt{jetstream.WithStallWait(30 * time.Second)}
				if cfg.MsgID {
					opts = append(opts, jetstream.WithMsgID("jsb-"+strconv.Itoa(p)+"-"+strconv.Itoa(i)))
				}
				if _, err := pb.js.PublishMsgAsync(m, opts...); err != nil {
					errs.Add(1)
				}
			}
			select {
			case <-pb.js.PublishAsyncComplete():
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res := Result{Msgs: cfg.Msgs, Size: len(cfg.Payload), Publishers: cfg.Publishers, Seconds: elapsed.Seconds(), Errors: errs.Load()}
	res.MsgsPerSec = float64(cfg.Msgs) / elapsed.Seconds()
	res.MBPerSec = res.MsgsPerSec * float64(len(cfg.Payload)) / 1e6
	st, err := ajs.Stream(ctx, cfg.Stream)
	if err != nil {
		return res, fmt.Errorf("jsbench: stream info: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("jsbench: stream info: %w", err)
	}
	res.Stored = info.State.Msgs
	return res, nil
}
