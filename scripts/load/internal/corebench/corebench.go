// Package corebench runs the real node-gateway and ws-proxy in-process on
// an embedded NATS server, for `go test -bench` benchmarks of the core's
// hot paths with pprof profiles (-cpuprofile, -memprofile): the services
// expose no pprof endpoint. Core.Close stops everything Start started.
package corebench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/honeybee/core/proto/bus"
	gateway "github.com/honeybee/core/services/node-gateway"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Core is an embedded NATS server with a gateway and, optionally, a
// ws-proxy, each on a loopback port chosen by the kernel.
type Core struct {
	NS      *server.Server
	NC      *nats.Conn
	JS      jetstream.JetStream
	Stream  jetstream.Stream
	Gateway *gateway.Gateway
	WS      *wsproxy.Proxy
	Bus     bus.Contract

	cancel context.CancelFunc
	done   []chan error
	dir    string
}

// Options choose what Start runs.
type Options struct {
	// WS starts ws-proxy too.
	WS bool
	// WSQueue is ws-proxy's per-client queue (0: its default). A
	// throughput benchmark that publishes in bursts sets it high, so it
	// measures delivery and not the slow-consumer policy.
	WSQueue int
}

// Start starts NATS (JetStream in a temporary directory), the gateway and,
// with opts.WS, ws-proxy, and waits until the events stream exists and
// ws-proxy reports ready.
func Start(opts Options) (*Core, error) {
	dir, err := os.MkdirTemp("", "corebench-")
	if err != nil {
		return nil, err
	}
	c := &Core{dir: dir, Bus: bus.Default()}
	c.NS, err = server.NewServer(&server.Options{Port: -1, Host: "127.0.0.1", JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		c.Close()
		return nil, err
	}
	go c.NS.Start()
	if !c.NS.ReadyForConnections(10 * time.Second) {
		c.Close()
		return nil, errors.New("nats-server not ready")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	log := zerolog.Nop()

	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.AdminListen, gcfg.NATSURL, gcfg.GatewayID = "127.0.0.1:0", "", c.NS.ClientURL(), "bench"
	c.Gateway, err = gateway.New(gcfg, log)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	c.run(ctx, c.Gateway.Run)

	c.NC, err = nats.Connect(c.NS.ClientURL())
	if err != nil {
		c.Close()
		return nil, err
	}
	c.JS, _ = jetstream.New(c.NC)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.Stream, err = c.JS.Stream(ctx, c.Bus.EventsStream())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			c.Close()
			return nil, fmt.Errorf("events stream never appeared: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if opts.WS {
		wcfg := wsproxy.DefaultConfig()
		wcfg.Addr, wcfg.NATSURL, wcfg.MaxClients = "127.0.0.1:0", c.NS.ClientURL(), 100000
		if opts.WSQueue > 0 {
			wcfg.QueueSize = opts.WSQueue
		}
		c.WS, err = wsproxy.New(wcfg, log)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("ws-proxy: %w", err)
		}
		c.run(ctx, c.WS.Run)
		if err := waitReady("http://" + c.WS.Addr().String() + "/ready"); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Core) run(ctx context.Context, f func(context.Context) error) {
	done := make(chan error, 1)
	c.done = append(c.done, done)
	go func() { done <- f(ctx) }()
}

// GatewayAddr is the gateway's node listener.
func (c *Core) GatewayAddr() string { return c.Gateway.Addr().String() }

// StreamURL is ws-proxy's /stream URL.
func (c *Core) StreamURL() string { return "ws://" + c.WS.Addr().String() + "/stream" }

// LastSeq returns the events stream's last sequence.
func (c *Core) LastSeq(ctx context.Context) (uint64, error) {
	info, err := c.Stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Close stops the services (in reverse order), NATS, and removes the data.
func (c *Core) Close() error {
	var errs []error
	if c.cancel != nil {
		c.cancel()
	}
	for i := len(c.done) - 1; i >= 0; i-- {
		if err := <-c.done[i]; err != nil {
			errs = append(errs, err)
		}
	}
	if c.NC != nil {
		c.NC.Close()
	}
	if c.NS != nil {
		c.NS.Shutdown()
		c.NS.WaitForShutdown()
	}
	os.RemoveAll(c.dir)
	return errors.Join(errs...)
}
