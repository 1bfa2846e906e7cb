// Package api is HoneyBee Core's REST API (port 9002): it shows nodes,
// honeypots and attack events from the bus (key-value buckets and the
// events stream the node gateway writes) and sends commands to nodes by
// NATS request-reply. It keeps no state of its own, so any number of
// replicas can run. A Server is used by one Run call.
package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/events"
	"github.com/honeybee/core/services/api/internal/httpapi"
	"github.com/honeybee/core/services/api/internal/ratelimit"
	"github.com/honeybee/core/services/api/internal/state"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ServiceName is the NATS connection name and the log "service" field.
const ServiceName = "honeybee-api"

// Server is the api.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	c       bus.Contract
	ln      net.Listener
	http    *http.Server
	backend atomic.Pointer[httpapi.Backend]
	nc      atomic.Pointer[nats.Conn]
	stream  atomic.Pointer[jetstream.Stream]
	ran     atomic.Bool
}

// New validates cfg and binds the listener; it does not connect to NATS.
// Without tokens it serves loopback only (and says so loudly), and it
// refuses an explicit non-loopback address.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With().Str("service", "api").Logger()
	tokens, err := cfg.tokens()
	if err != nil {
		return nil, err
	}
	addr, narrowed, err := cfg.listenAddr(tokens.Len() > 0)
	if err != nil {
		return nil, err
	}
	c, _ := bus.New(cfg.Prefix)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", addr, err)
	}
	if tokens.Len() == 0 {
		log.Warn().Str("addr", ln.Addr().String()).Bool("narrowed_to_loopback", narrowed).
			Msg("NO API TOKENS CONFIGURED: every request is allowed, so the api serves on loopback only; set HONEYBEE_TOKENS or HONEYBEE_TOKENS_FILE to serve other hosts")
	}
	s := &Server{cfg: cfg, log: log, c: c, ln: ln}
	ipx := echo.ExtractIPDirect()
	if cidrs, _ := parseCIDRs(cfg.TrustedProxies); len(cidrs) > 0 {
		var opts []echo.TrustOption
		opts = append(opts, echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))
		for _, p := range cidrs {
			_, n, _ := net.ParseCIDR(p.String())
			opts = append(opts, echo.TrustIPRange(n))
		}
		ipx = echo.ExtractIPFromXFFHeader(opts...)
	}
	h := httpapi.New(httpapi.Options{
		Log:              log,
		Tokens:           tokens,
		Limiter:          ratelimit.New(cfg.RateLimit, cfg.RateBurst, cfg.RateLimitClients),
		MaxBodyBytes:     cfg.MaxBodyBytes,
		NATSTimeout:      cfg.NATSTimeout,
		CommandTimeout:   cfg.CommandTimeout,
		BroadcastTimeout: cfg.BroadcastTimeout,
		EventsMaxScan:    cfg.EventsMaxScan,
		StatsScan:        cfg.StatsScan,
		StatsCacheTTL:    cfg.StatsCacheTTL,
		IPExtractor:      ipx,
		Registry:         prometheus.NewRegistry(),
		Backend:          s.backend.Load,
		Ready:            s.ready,
	})
	s.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	return s, nil
}

// Addr is the address the api listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run connects to NATS (retrying forever), serves HTTP until ctx is done,
// then stops accepting, finishes in-flight requests within
// ShutdownTimeout and drains the NATS connection. It returns nil on a
// clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("api: Run called twice")
	}
	opts := append([]nats.Option{
		nats.Name(ServiceName),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) { s.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("connected to NATS") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { s.log.Warn().Err(err).Msg("disconnected from NATS") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := s.log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS error")
		}),
	}, s.cfg.NATSOptions...)
	nc, err := nats.Connect(s.cfg.NATSURL, opts...)
	if err != nil {
		_ = s.ln.Close()
		return fmt.Errorf("api: connect to NATS: %w", err)
	}
	s.nc.Store(nc)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.log.Info().Str("addr", s.ln.Addr().String()).Msg("api listening")
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		s.attach(runCtx, nc)
	}()

	<-runCtx.Done()
	s.log.Info().Msg("api shutting down")
	shCtx, shCancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer shCancel()
	if err := s.http.Shutdown(shCtx); err != nil {
		s.log.Warn().Err(err).Msg("HTTP shutdown incomplete")
		_ = s.http.Close()
	}
	cancel()
	if !nc.IsConnected() {
		// Nothing to drain to: close now, so that stopping the bucket
		// watchers does not wait for a server that is gone.
		nc.Close()
	}
	wg.Wait()
	if !nc.IsClosed() {
		closed := make(chan struct{})
		nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := nc.Drain(); err != nil {
			nc.Close()
		} else {
			select {
			case <-closed:
			case <-shCtx.Done():
				nc.Close()
			}
		}
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("api: serve: %w", err)
	default:
		return nil
	}
}

// attach waits until the events stream and every bucket exist (the gateway
// creates them), then keeps the state view current until ctx is done.
func (s *Server) attach(ctx context.Context, nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if err != nil {
		s.log.Error().Err(err).Msg("JetStream context")
		return
	}
	var b *httpapi.Backend
	var stream jetstream.Stream
	var nodes, pots jetstream.KeyValue
	logged := false
	for b == nil {
		b, stream, nodes, pots, err = s.lookup(ctx, js, nc)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if !logged {
			s.log.Warn().Err(err).Msg("waiting for the events stream and buckets (the node gateway creates them)")
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	s.stream.Store(&stream)
	view := b.View
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			err := view.Run(ctx, nodes, pots)
			if ctx.Err() != nil {
				return
			}
			s.log.Warn().Err(err).Msg("watching the nodes and pots buckets failed; retrying")
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	select {
	case <-view.Synced():
		s.backend.Store(b)
		n, p := view.Counts()
		s.log.Info().Int("nodes", n).Int("pots", p).Msg("api ready: state view synced")
	case <-ctx.Done():
	}
	<-done
}

func (s *Server) lookup(ctx context.Context, js jetstream.JetStream, nc *nats.Conn) (*httpapi.Backend, jetstream.Stream, jetstream.KeyValue, jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.NATSTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, s.c.EventsStream())
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("stream %s: %w", s.c.EventsStream(), err)
	}
	kvs := map[string]jetstream.KeyValue{}
	for _, name := range []string{s.c.NodesBucket(), s.c.PotsBucket(), s.c.GatewaysBucket(), s.c.CommandsBucket(), s.c.TOTPBucket()} {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("bucket %s: %w", name, err)
		}
		kvs[name] = kv
	}
	b := &httpapi.Backend{
		NC:       nc,
		C:        s.c,
		View:     state.New(s.log),
		Gateways: state.NewGateways(kvs[s.c.GatewaysBucket()], time.Second, s.cfg.NATSTimeout, nc.IsConnected),
		Events:   events.New(nc, stream, s.c, s.cfg.NATSTimeout),
		Nodes:    kvs[s.c.NodesBucket()],
		Pots:     kvs[s.c.PotsBucket()],
		Commands: kvs[s.c.CommandsBucket()],
		TOTP:     kvs[s.c.TOTPBucket()],
	}
	return b, stream, b.Nodes, b.Pots, nil
}

// ready reports whether requests can be served: NATS connected, the view
// synced, and the events stream answering.
func (s *Server) ready(ctx context.Context) error {
	nc := s.nc.Load()
	if nc == nil || !nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if s.backend.Load() == nil {
		return errors.New("waiting for the events stream and buckets")
	}
	st := s.stream.Load()
	if st == nil {
		return errors.New("waiting for the events stream")
	}
	if _, err := (*st).Info(ctx); err != nil {
		return fmt.Errorf("events stream: %w", err)
	}
	return nil
}
