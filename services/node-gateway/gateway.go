// Package gateway is the HoneyBee node gateway: it owns the sockets of
// Protocol v2 honeypot nodes (TCP, TLS 1.3 or mutual TLS), registers and
// authenticates them, publishes everything they report onto NATS (attack
// events durably into JetStream, node and pot state into key-value
// buckets, lifecycle messages on core subjects), and delivers commands to
// the nodes it holds.
//
// New binds the listeners; Run connects to NATS, serves until its context
// ends, then drains. A Gateway runs once.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/ingest"
	"github.com/honeybee/core/services/node-gateway/internal/liveness"
	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/honeybee/core/services/node-gateway/internal/session"
	"github.com/honeybee/core/services/node-gateway/internal/state"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ServiceName is the "service" field of every log line and the NATS
// connection name's prefix.
const ServiceName = "node-gateway"

// ErrAlreadyRun is returned by a second call of Run.
var ErrAlreadyRun = errors.New("gateway: Run called twice")

// Gateway is a node gateway. Create it with New.
type Gateway struct {
	cfg      Config
	contract bus.Contract
	mode     totp.Mode
	log      zerolog.Logger
	metrics  *metrics.Metrics

	ln      net.Listener
	adminLn net.Listener
	ran     atomic.Bool
	// sweepEvery overrides how often vanished gateways are looked for
	// (tests); 0 means bus.GatewayHeartbeat.
	sweepEvery time.Duration

	// Set by Run once NATS is set up; read by the admin handlers.
	mu    sync.Mutex
	nc    *nats.Conn
	js    jetstream.JetStream
	hub   *session.Hub
	ready bool
}

// New validates cfg and binds the node listener (and the admin listener
// when configured), so that ":0" works and Addr is known before Run. It
// does not connect to NATS.
func New(cfg Config, log zerolog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	contract, _ := bus.New(cfg.Prefix)
	mode, _ := totp.ParseMode(cfg.TOTPMode)
	g := &Gateway{
		cfg:      cfg,
		contract: contract,
		mode:     mode,
		log:      log.With().Str("service", ServiceName).Str("gateway_id", cfg.GatewayID).Logger(),
		metrics:  metrics.New(),
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: HONEYBEE_GATEWAY_LISTEN (-listen): %w", ErrInvalidConfig, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	g.ln = ln
	if cfg.AdminListen != "" {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: HONEYBEE_GATEWAY_ADMIN_LISTEN (-admin-listen): %w", ErrInvalidConfig, err)
		}
		g.adminLn = aln
	}
	return g, nil
}

// tlsConfig loads the certificate files; nil means plain TCP.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: HONEYBEE_TLS_CERT/HONEYBEE_TLS_KEY (-tls-cert/-tls-key): %w", ErrInvalidConfig, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	if c.TLSClientCAFile != "" {
		pem, err := os.ReadFile(c.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: HONEYBEE_TLS_CLIENT_CA (-tls-client-ca): %w", ErrInvalidConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: HONEYBEE_TLS_CLIENT_CA (-tls-client-ca): no PEM certificate in %s", ErrInvalidConfig, c.TLSClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Addr returns the address nodes connect to.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// AdminAddr returns the admin HTTP address, or nil when disabled.
func (g *Gateway) AdminAddr() net.Addr {
	if g.adminLn == nil {
		return nil
	}
	return g.adminLn.Addr()
}

// Run connects to NATS (retrying forever), creates or updates the events
// stream and the key-value buckets, serves nodes until ctx is done, then
// drains: it stops accepting, refuses registrations, lets every session
// finish publishing what it read, records held nodes disconnected (reason
// shutdown), flushes to NATS and closes, all within DrainTimeout. It
// returns nil after a clean shutdown.
func (g *Gateway) Run(ctx context.Context) error {
	if g.ran.Swap(true) {
		return ErrAlreadyRun
	}
	defer g.ln.Close()

	var admin *http.Server
	adminDone := make(chan struct{})
	if g.adminLn != nil {
		admin = &http.Server{Handler: g.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			defer close(adminDone)
			if err := admin.Serve(g.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error().Err(err).Msg("admin HTTP server failed")
			}
		}()
	} else {
		close(adminDone)
	}
	defer func() {
		if admin != nil {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = admin.Shutdown(sctx)
			cancel()
		}
		<-adminDone
	}()

	reconnected := make(chan struct{}, 1)
	nc, err := g.connect(reconnected)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("gateway: jetstream: %w", err)
	}
	g.mu.Lock()
	g.nc, g.js = nc, js
	g.mu.Unlock()

	b, err := g.setup(ctx, js)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before NATS was ever ready: nothing to drain
		}
		return err
	}
	return g.serve(ctx, nc, js, b, reconnected)
}

// connect dials NATS; with RetryOnFailedConnect it returns at once and
// keeps trying in the background, forever.
func (g *Gateway) connect(reconnected chan<- struct{}) (*nats.Conn, error) {
	log := g.log
	opts := []nats.Option{
		nats.Name(ServiceName + "/" + g.cfg.GatewayID),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(20 * time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			g.metrics.NATSConnected.Set(1)
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("connected to NATS")
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			g.metrics.NATSConnected.Set(0)
			if nc.IsClosed() {
				return // our own Close at shutdown
			}
			log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			g.metrics.NATSConnected.Set(1)
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS")
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			g.metrics.NATSConnected.Set(0)
			log.Info().Msg("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS asynchronous error")
		}),
	}
	if g.cfg.NATSToken != "" {
		opts = append(opts, nats.Token(g.cfg.NATSToken))
	}
	if g.cfg.NATSCredsFile != "" {
		opts = append(opts, nats.UserCredentials(g.cfg.NATSCredsFile))
	}
	opts = append(opts, g.cfg.NATSOptions...)
	nc, err := nats.Connect(g.cfg.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("gateway: NATS %s: %w", g.cfg.NATSURL, err)
	}
	if nc.IsConnected() {
		g.metrics.NATSConnected.Set(1)
	}
	return nc, nil
}

// serve runs the gateway once NATS is set up, and drains when ctx ends.
func (g *Gateway) serve(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, b buckets, reconnected <-chan struct{}) error {
	cfg := g.cfg
	window := ingest.NewWindow(cfg.MaxUnackedBytes)
	pub, err := ingest.NewPublisher(nc, window, g.log, g.metrics)
	if err != nil {
		return err
	}
	writer := state.NewWriter(nc, 4, g.log, g.metrics)
	deps := session.Deps{
		NC: nc, Contract: g.contract, Publisher: pub, Writer: writer,
		Nodes: b.nodes, Pots: b.pots, Commands: b.commands,
		Metrics: g.metrics, Log: g.log,
	}
	if g.mode != totp.Off {
		auth := totp.NewAuthenticator(g.mode, b.totp, g.log)
		deps.Auth = auth.Check
		deps.AuthReason = totp.Reason
	}
	hub := session.NewHub(session.Config{
		GatewayID:           cfg.GatewayID,
		RegistrationTimeout: cfg.RegistrationTimeout,
		IdleTimeout:         cfg.IdleTimeout,
		WriteTimeout:        cfg.WriteTimeout,
		WriteQueue:          cfg.WriteQueue,
		MaxMessageSize:      cfg.MaxMessageSize,
		MaxDepth:            cfg.MaxDepth,
		BadMessageLimit:     cfg.BadMessageLimit,
		BadMessageWindow:    cfg.BadMessageWindow,
		LastSeenInterval:    cfg.LastSeenInterval,
	}, deps)
	started := time.Now()
	hb := &liveness.Heartbeat{KV: b.gateways, GatewayID: cfg.GatewayID, StartedAt: started,
		Nodes: func() int { return len(hub.NodeIDs()) }, Restored: hub.Resync, Log: g.log}
	sweeper := &liveness.Sweeper{Nodes: b.nodes, Gateways: b.gateways, NC: nc, Contract: g.contract,
		GatewayID: cfg.GatewayID, Log: g.log, Interval: g.sweepEvery}

	// Before accepting nodes: clear records our previous run left
	// connected, and announce ourselves so no sweeper takes our nodes.
	if err := retry(ctx, g.log, "initial sweep", func(ctx context.Context) error {
		n, err := sweeper.Sweep(ctx, true)
		if n > 0 {
			g.log.Info().Int("nodes", n).Msg("marked nodes of vanished gateways disconnected")
		}
		return err
	}); err != nil {
		return nil // ctx done
	}
	if err := retry(ctx, g.log, "first heartbeat", func(ctx context.Context) error {
		_, err := hb.Beat(ctx)
		return err
	}); err != nil {
		return nil
	}
	svc, err := hub.AddService(nc)
	if err != nil {
		return fmt.Errorf("gateway: micro service: %w", err)
	}

	g.mu.Lock()
	g.hub, g.ready = hub, true
	g.mu.Unlock()

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = pub.Run(bg) })
	wg.Go(func() { _ = writer.Run(bg) })
	wg.Go(func() { _ = hub.Run(bg) })
	wg.Go(func() { _ = hb.Run(bg) })
	wg.Go(func() { _ = sweeper.Run(bg) })
	wg.Go(func() {
		for {
			select {
			case <-bg.Done():
				return
			case <-reconnected:
			}
			// The server may have restarted with an empty store.
			_ = retry(bg, g.log, "re-create stream and buckets", func(ctx context.Context) error {
				_, err := g.ensure(ctx, js)
				return err
			})
			hub.Resync()
		}
	})
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		g.accept(hub)
	}()
	g.log.Info().Str("addr", g.Addr().String()).Bool("tls", cfg.TLSCertFile != "").
		Bool("mtls", cfg.TLSClientCAFile != "").Str("totp_mode", string(g.mode)).Msg("gateway serving nodes")

	<-ctx.Done()
	g.drain(hub, pub, writer, hb, svc, acceptDone)
	stopBG()
	wg.Wait()
	hub.Close()
	if err := nc.FlushTimeout(time.Second); err != nil {
		g.log.Warn().Err(err).Msg("final NATS flush failed")
	}
	g.log.Info().Msg("gateway stopped")
	return nil
}

type stopper interface{ Stop() error }

// drain performs the shutdown sequence within DrainTimeout.
func (g *Gateway) drain(hub *session.Hub, pub *ingest.Publisher, writer *state.Writer, hb *liveness.Heartbeat, svc stopper, acceptDone <-chan struct{}) {
	g.log.Info().Dur("timeout", g.cfg.DrainTimeout).Msg("draining")
	g.mu.Lock()
	g.ready = false
	g.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.Background(), g.cfg.DrainTimeout)
	defer cancel()

	_ = g.ln.Close()
	<-acceptDone
	hub.Drain(g.cfg.DrainTimeout / 2)
	if err := hub.Wait(dctx); err != nil {
		g.log.Warn().Int("sessions", hub.Connections()).Msg("drain deadline: aborting sessions still waiting")
		hub.Abort()
		actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = hub.Wait(actx)
		acancel()
	}
	if err := pub.Flush(dctx); err != nil {
		n := pub.Close()
		g.metrics.DroppedTotal.WithLabelValues(metrics.DropShutdown).Add(float64(n))
		g.log.Error().Int("events", n).Msg("drain deadline: attack events not acknowledged by JetStream are lost")
	}
	pub.Close()
	if err := writer.Flush(dctx); err != nil {
		g.log.Warn().Int("records", writer.Pending()).Msg("drain deadline: some node/pot/command records not written")
	}
	_ = svc.Stop()
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	_ = hb.Remove(rctx)
	rcancel()
}

// accept hands connections to the hub until the listener closes.
func (g *Gateway) accept(hub *session.Hub) {
	var backoff time.Duration
	refused := 0
	for {
		conn, err := g.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if g.cfg.MaxConnections > 0 && hub.Connections() >= g.cfg.MaxConnections {
			g.metrics.DroppedTotal.WithLabelValues(metrics.DropOverCapacity).Inc()
			if refused++; refused == 1 || refused%1000 == 0 {
				g.log.Warn().Int("max_connections", g.cfg.MaxConnections).Int("refused", refused).
					Str("remote_addr", conn.RemoteAddr().String()).Msg("connection refused: at HONEYBEE_MAX_CONNECTIONS")
			}
			_ = conn.Close()
			continue
		}
		hub.Serve(conn)
	}
}

// retry calls f until it succeeds or ctx is done, backing off up to 5 s.
func retry(ctx context.Context, log zerolog.Logger, what string, f func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn().Err(err).Int("attempt", attempt).Msg(what + " failed; retrying")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
