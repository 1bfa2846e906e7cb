// Package idle holds many idle connections to the core, node connections
// to the gateway or WebSocket clients to ws-proxy, and measures the
// resident memory each one costs the core process. Connections can be
// split over child processes of the load tool, so that no process needs
// more open files than its limit allows.
//
// Hold owns the connections and their goroutines until its context ends;
// Measure owns its children and waits for them.
package idle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/scripts/load/internal/sim"
	"github.com/honeybee/core/scripts/load/internal/wsclient"
)

// Kind is what is held.
type Kind string

// Kinds.
const (
	Nodes Kind = "nodes" // registered node connections to the gateway
	WS    Kind = "ws"    // WebSocket clients of ws-proxy's /stream
)

// Config describes the connections.
type Config struct {
	Kind  Kind `json:"kind"`
	Count int  `json:"count"`
	// Procs is how many processes hold the connections (1: this one).
	Procs int `json:"procs"`

	GatewayAddr string        `json:"gateway_addr,omitempty"`
	Heartbeat   time.Duration `json:"heartbeat_ns,omitempty"`
	WSURL       string        `json:"ws_url,omitempty"`
	WSToken     string        `json:"-"`

	SrcIPs       int `json:"src_ips"`
	DialParallel int `json:"dial_parallel"`
	// SourceIP picks the source address of connection i (nil: default).
	SourceIP func(i int) net.IP `json:"-"`
}

// Ready is what a holder reports once every connection was attempted.
type Ready struct {
	Connected int      `json:"connected"`
	Failed    int      `json:"failed"`
	Errors    []string `json:"errors,omitempty"`
}

// Hold opens n connections numbered offset.. offset+n-1, reports through
// ready, and keeps them open until ctx ends; then it closes them (nodes
// say NodeDrop) and returns how many were lost meanwhile.
func Hold(ctx context.Context, cfg Config, n, offset int, ready func(Ready)) (dropped int, err error) {
	var (
		wg            sync.WaitGroup
		lost          atomic.Int64
		failed        atomic.Int64
		ok            atomic.Int64
		mu            sync.Mutex
		errs          []string
		holdCtx, stop = context.WithCancel(context.WithoutCancel(ctx))
	)
	defer stop()
	addErr := func(err error) {
		failed.Add(1)
		mu.Lock()
		if len(errs) < 10 {
			errs = append(errs, err.Error())
		}
		mu.Unlock()
	}
	sem := make(chan struct{}, max(cfg.DialParallel, 1))
	var dialWG sync.WaitGroup
	for i := offset; i < offset+n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		dialWG.Add(1)
		go func() {
			defer dialWG.Done()
			defer func() { <-sem }()
			var src net.IP
			if cfg.SourceIP != nil {
				src = cfg.SourceIP(i)
			}
			run, err := dial(ctx, cfg, i, src)
			if err != nil {
				addErr(err)
				return
			}
			ok.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := run(holdCtx); err != nil {
					lost.Add(1)
				}
			}()
		}()
	}
	dialWG.Wait()
	mu.Lock()
	r := Ready{Connected: int(ok.Load()), Failed: int(failed.Load()), Errors: errs}
	mu.Unlock()
	ready(r)
	<-ctx.Done()
	stop()
	wg.Wait()
	if r.Connected == 0 && n > 0 {
		return 0, errors.New("no connection succeeded")
	}
	return int(lost.Load()), nil
}

// dial opens connection i and returns the function that holds it.
func dial(ctx context.Context, cfg Config, i int, src net.IP) (func(context.Context) error, error) {
	switch cfg.Kind {
	case Nodes:
		n, err := sim.Dial(ctx, sim.Config{Addr: cfg.GatewayAddr, LocalIP: src, Index: uint32(i),
			NodeID: rand.Uint64() | 1, NodeName: fmt.Sprintf("idle-%06d-%04x", i, rand.Uint32()&0xffff), Pots: 1, BufSize: 512})
		if err != nil {
			return nil, err
		}
		if err := n.Announce(); err != nil {
			n.Close()
			return nil, err
		}
		hb := cfg.Heartbeat
		return func(ctx context.Context) error { return n.Run(ctx, hb) }, nil
	case WS:
		c, err := wsclient.DialIdle(ctx, wsclient.Config{URL: cfg.WSURL, Token: cfg.WSToken, LocalIP: src})
		if err != nil {
			return nil, err
		}
		return c.Run, nil
	}
	return nil, fmt.Errorf("unknown kind %q", cfg.Kind)
}
