// Package wsproxy is the HoneyBee WebSocket proxy: live attack events and
// node and pot changes on /stream (filters, gap-free resume, slow-client
// isolation), and the Protocol v2 backend protocol on / and /ws for
// dashboards of the reference core.
//
// A replica holds one upstream subscription per kind of data (an ordered
// JetStream consumer on the events stream, core subscriptions on node and
// pot subjects) and fans out in process to its clients. It keeps no state
// of its own: run as many replicas as needed behind a load balancer.
package wsproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/ws-proxy/internal/auth"
	"github.com/honeybee/core/services/ws-proxy/internal/backend"
	"github.com/honeybee/core/services/ws-proxy/internal/hub"
	"github.com/honeybee/core/services/ws-proxy/internal/metrics"
	"github.com/honeybee/core/services/ws-proxy/internal/stream"
)

// Proxy is one ws-proxy replica.
type Proxy struct {
	cfg     Config
	log     zerolog.Logger
	bus     bus.Contract
	tokens  auth.Tokens
	ln      net.Listener
	metrics *metrics.Metrics
	hub     *hub.Hub

	streamH  atomic.Pointer[stream.Handler]
	backendH atomic.Pointer[backend.Handler]
	nc       atomic.Pointer[nats.Conn]
	draining atomic.Bool

	clients  atomic.Int64 // reserved slots, both endpoints
	handlers sync.WaitGroup
	mu       sync.Mutex
	conns    map[*websocket.Conn]struct{}
	closing  *closeMsg // set by closeAll; under mu
}

// closeMsg is the close frame closeAll sent to every client.
type closeMsg struct {
	code   websocket.StatusCode
	reason string
}

// New validates cfg and binds the listener; it does not connect to NATS.
func New(cfg Config, log zerolog.Logger) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, _ := bus.New(cfg.Prefix)
	toks, err := cfg.tokens()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	log = log.With().Str("service", "ws-proxy").Logger()
	if toks.Len() == 0 {
		log.Warn().Str("addr", ln.Addr().String()).Msg("NO TOKENS CONFIGURED: every client has admin rights; serving on loopback only")
	}
	m := metrics.New()
	p := &Proxy{cfg: cfg, log: log, bus: c, tokens: toks, ln: ln, metrics: m, conns: make(map[*websocket.Conn]struct{})}
	p.hub = hub.New(hub.Options{
		QueueSize:    cfg.QueueSize,
		WriteTimeout: cfg.WriteTimeout,
		PingInterval: cfg.PingInterval,
		OnSent:       m.FrameSent,
		OnSlow:       m.Slow.Inc,
	})
	return p, nil
}

// Addr returns the listen address.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Run connects to NATS (retrying forever), attaches to the events stream
// and buckets once the gateway has created them, and serves until ctx is
// done; then it closes every client with "going away", stops the upstream
// subscriptions and drains NATS. It returns nil on a clean shutdown.
func (p *Proxy) Run(ctx context.Context) error {
	closed := make(chan struct{})
	opts := []nats.Option{
		nats.Name("ws-proxy"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) { p.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS connected") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { p.log.Warn().Err(err).Msg("NATS disconnected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { p.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected") }),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { p.log.Warn().Err(err).Msg("NATS error") }),
	}
	nc, err := nats.Connect(p.cfg.NATSURL, append(opts, p.cfg.NATSOptions...)...)
	if err != nil {
		_ = p.ln.Close()
		return fmt.Errorf("connect NATS: %w", err)
	}
	p.nc.Store(nc)
	defer func() {
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
		<-closed
	}()

	subs, err := p.subscribeState(nc)
	if err != nil {
		_ = p.ln.Close()
		return err
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()

	js, err := jetstream.New(nc)
	if err != nil {
		_ = p.ln.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	attachCtx, stopAttach := context.WithCancel(ctx)
	attached := make(chan jetstream.ConsumeContext, 1)
	var attachWG sync.WaitGroup
	attachWG.Add(1)
	go func() {
		defer attachWG.Done()
		if cc := p.attachLoop(attachCtx, nc, js); cc != nil {
			attached <- cc
		}
	}()
	defer func() {
		stopAttach()
		attachWG.Wait()
		select {
		case cc := <-attached:
			cc.Stop()
			<-cc.Closed()
		default:
		}
	}()

	connCtx, cancelConns := context.WithCancel(context.Background())
	defer cancelConns()
	srv := &http.Server{
		Handler:           p.routes(connCtx),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return connCtx },
		ErrorLog:          nil,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(p.ln) }()
	p.log.Info().Str("addr", p.ln.Addr().String()).Msg("ws-proxy listening")

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	}

	// Drain: stop accepting, close clients with "going away" (they come
	// back with since=), then force whatever is left.
	p.draining.Store(true)
	p.metrics.Ready.Set(0)
	shCtx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(shCtx)
	p.closeAll(websocket.StatusGoingAway, "server shutting down")
	done := make(chan struct{})
	go func() { p.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-shCtx.Done():
		p.log.Warn().Msg("shutdown deadline: closing remaining clients")
		cancelConns()
		<-done
	}
	if runErr == nil {
		<-serveErr // http.ErrServerClosed
	}
	p.log.Info().Msg("ws-proxy stopped")
	return runErr
}

// subscribeState subscribes the node lifecycle and pot status subjects.
func (p *Proxy) subscribeState(nc *nats.Conn) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, s := range []struct {
		subject string
		kind    hub.Kind
		build   func([]byte) (*hub.Frame, error)
	}{
		{p.bus.Nodes(), hub.KindNode, hub.NodeFrame},
		{p.bus.Pots(), hub.KindPot, hub.PotFrame},
	} {
		upstream := p.metrics.Upstream.WithLabelValues(s.kind.String())
		invalid := p.metrics.BadUpstream.WithLabelValues(s.kind.String())
		build := s.build
		sub, err := nc.Subscribe(s.subject, func(m *nats.Msg) {
			fr, err := build(m.Data)
			if err != nil {
				invalid.Inc()
				return
			}
			p.hub.Publish(fr)
			upstream.Inc() // after Publish: tests poll it to know a frame is queued
		})
		if err != nil {
			return subs, fmt.Errorf("subscribe %s: %w", s.subject, err)
		}
		_ = sub.SetPendingLimits(-1, 256<<20)
		subs = append(subs, sub)
	}
	return subs, nil
}

// attachLoop looks up the stream and buckets until the gateway has created
// them, then starts the live events consumer and the request handlers.
func (p *Proxy) attachLoop(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) jetstream.ConsumeContext {
	logged := false
	for {
		cc, err := p.attach(ctx, nc, js)
		if err == nil {
			p.log.Info().Uint64("live_after_seq", p.hub.LastSeq()).Msg("attached to the events stream; ready")
			return cc
		}
		if ctx.Err() != nil {
			return nil
		}
		if !logged {
			p.log.Warn().Err(err).Msg("not ready: waiting for the gateway to create the events stream and buckets")
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (p *Proxy) attach(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (jetstream.ConsumeContext, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name := p.bus.EventsStream()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	var kvs [3]jetstream.KeyValue
	for i, b := range []string{p.bus.NodesBucket(), p.bus.PotsBucket(), p.bus.GatewaysBucket()} {
		if kvs[i], err = js.KeyValue(ctx, b); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", b, err)
		}
	}
	// Start right after the last stored event rather than DeliverNew: the
	// hub then knows the exact sequence the live feed starts after, which
	// resumes need.
	last := st.CachedInfo().State.LastSeq
	p.hub.SetLastSeq(last)
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{p.bus.Events()},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    last + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("live consumer: %w", err)
	}
	upstream := p.metrics.Upstream.WithLabelValues("event")
	invalid := p.metrics.BadUpstream.WithLabelValues("event")
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			invalid.Inc()
			return
		}
		fr, err := hub.EventFrame(meta.Sequence.Stream, msg.Data())
		if err != nil {
			invalid.Inc()
			p.hub.Skip(meta.Sequence.Stream)
			return
		}
		p.hub.Publish(fr)
		upstream.Inc()
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		p.log.Warn().Err(err).Msg("live events consumer")
	}))
	if err != nil {
		return nil, fmt.Errorf("consume events: %w", err)
	}
	p.streamH.Store(&stream.Handler{
		Hub:          p.hub,
		JS:           js,
		Bus:          p.bus,
		WriteTimeout: p.cfg.WriteTimeout,
		Log:          p.log,
		Hooks: stream.Hooks{
			Replayed: func(n int) { p.metrics.Replayed.Add(float64(n)) },
			BadInput: func(r string) { p.metrics.BadInput.WithLabelValues("stream", r).Inc() },
			Resumed:  p.metrics.ObserveReplay,
		},
	})
	p.backendH.Store(&backend.Handler{
		NC:             nc,
		State:          &backend.State{Nodes: kvs[0], Pots: kvs[1], Gateways: kvs[2]},
		Bus:            p.bus,
		CommandTimeout: p.cfg.CommandTimeout,
		WriteTimeout:   p.cfg.WriteTimeout,
		PingInterval:   p.cfg.PingInterval,
		MaxMessage:     int(p.cfg.ReadLimit),
		Log:            p.log,
		Hooks: backend.Hooks{
			Request: func(kind string, ok bool) {
				res := "success"
				if !ok {
					res = "failure"
				}
				p.metrics.Backend.WithLabelValues(kind, res).Inc()
			},
			BadInput: func(r string) { p.metrics.BadInput.WithLabelValues("backend", r).Inc() },
		},
	})
	p.metrics.Ready.Set(1)
	return cc, nil
}

// notReady returns why the replica cannot take clients, or "".
func (p *Proxy) notReady() string {
	switch nc := p.nc.Load(); {
	case p.draining.Load():
		return "shutting down"
	case nc == nil || !nc.IsConnected():
		return "NATS not connected"
	case p.streamH.Load() == nil:
		return "waiting for the events stream and buckets"
	}
	return ""
}

// routes returns the HTTP handler. ctx is the life of the WebSocket
// connections: they outlive their HTTP handler (see serveStream).
func (p *Proxy) routes(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if why := p.notReady(); why != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", p.metrics.Handler())
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) { p.serveStream(ctx, w, r) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { p.serveBackend(ctx, w, r) })
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) { p.serveBackend(ctx, w, r) })
	return mux
}

// errorBody is the JSON body of a refused upgrade, as the api writes it.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// admit checks everything that can refuse a client before the upgrade:
// the token, readiness and the client limit. On success the caller owns a
// client slot and must call release.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, endpoint string) (auth.Role, bool) {
	refuse := func(status int, result, code, msg string) (auth.Role, bool) {
		p.metrics.Connections.WithLabelValues(endpoint, result).Inc()
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, status, code, msg)
		return auth.None, false
	}
	role := auth.Admin
	if p.tokens.Len() > 0 {
		if role = p.tokens.Lookup(auth.FromRequest(r)); role == auth.None {
			w.Header().Set("WWW-Authenticate", `Bearer realm="honeybee"`)
			return refuse(http.StatusUnauthorized, "unauthorized", "UNAUTHORIZED", "a valid token is required: Authorization: Bearer <token> or ?token=<token>")
		}
	}
	if why := p.notReady(); why != "" {
		return refuse(http.StatusServiceUnavailable, "not_ready", "NOT_READY", why)
	}
	if p.clients.Add(1) > int64(p.cfg.MaxClients) {
		p.clients.Add(-1)
		return refuse(http.StatusServiceUnavailable, "too_many", "TOO_MANY_CLIENTS",
			fmt.Sprintf("this replica serves at most %d clients; retry later or use another replica", p.cfg.MaxClients))
	}
	return role, true
}

// accept upgrades an admitted request; it answers the request itself on
// failure. The connection gets small buffers (see smallBuffers).
func (p *Proxy) accept(w http.ResponseWriter, r *http.Request, endpoint string) (*websocket.Conn, net.Conn, bool) {
	sb := &smallBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(sb, r, &websocket.AcceptOptions{OriginPatterns: p.cfg.AllowedOrigins})
	if err != nil {
		p.metrics.Connections.WithLabelValues(endpoint, "upgrade_failed").Inc()
		p.log.Debug().Err(err).Str("remote_addr", r.RemoteAddr).Msg("upgrade failed")
		return nil, nil, false
	}
	// Register the connection, unless closeAll has already run: a
	// request admitted just before the drain began is upgraded after
	// closeAll looked at p.conns, and would otherwise stay open until the
	// shutdown deadline. It gets the same close frame as the others.
	p.mu.Lock()
	closing := p.closing
	if closing == nil {
		p.conns[conn] = struct{}{}
	}
	p.mu.Unlock()
	if closing != nil {
		p.metrics.Connections.WithLabelValues(endpoint, "not_ready").Inc()
		_ = conn.Close(closing.code, closing.reason)
		return nil, nil, false
	}
	conn.SetReadLimit(p.cfg.ReadLimit)
	p.metrics.Connections.WithLabelValues(endpoint, "accepted").Inc()
	p.metrics.Clients.WithLabelValues(endpoint).Inc()
	return conn, sb.conn, true
}

func (p *Proxy) finish(conn *websocket.Conn, endpoint string) {
	p.mu.Lock()
	delete(p.conns, conn)
	p.mu.Unlock()
	p.metrics.Clients.WithLabelValues(endpoint).Dec()
	p.clients.Add(-1)
}

// closeAll closes every connection with code and reason; the handlers
// notice and return. Connections upgraded later are closed the same way
// (see accept).
func (p *Proxy) closeAll(code websocket.StatusCode, reason string) {
	p.hub.CloseAll(code, reason)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closing = &closeMsg{code: code, reason: reason}
	for c := range p.conns {
		p.handlers.Add(1)
		go func() {
			defer p.handlers.Done()
			_ = c.Close(code, reason)
		}()
	}
}

// serveStream admits and upgrades a /stream request, then serves the
// connection in a goroutine of its own and returns: the HTTP server's
// goroutine, its deep stack and its per-request state go away, which
// roughly halves the memory of an idle client. ctx ends the connection.
func (p *Proxy) serveStream(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	// Counted from the start: until the hijack, Shutdown waits for this
	// handler, so Run's wait that follows cannot miss the connection.
	p.handlers.Add(1)
	handedOff := false
	defer func() {
		if !handedOff {
			p.handlers.Done()
		}
	}()
	req, err := stream.ParseQuery(r.URL.Query())
	if err != nil {
		p.metrics.Connections.WithLabelValues("stream", "bad_request").Inc()
		p.metrics.BadInput.WithLabelValues("stream", "bad_filter").Inc()
		writeError(w, http.StatusBadRequest, "BAD_FILTER", err.Error())
		return
	}
	if _, ok := p.admit(w, r, "stream"); !ok {
		return
	}
	conn, nc, ok := p.accept(w, r, "stream")
	if !ok {
		p.clients.Add(-1)
		return
	}
	remote := r.RemoteAddr
	handedOff = true
	go func() {
		defer p.handlers.Done()
		defer p.finish(conn, "stream")
		p.log.Debug().Str("remote_addr", remote).Msg("stream client connected")
		p.streamH.Load().Serve(ctx, conn, nc, req)
		p.log.Debug().Str("remote_addr", remote).Msg("stream client gone")
	}()
}

// serveBackend is serveStream for the backend protocol.
func (p *Proxy) serveBackend(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	p.handlers.Add(1)
	handedOff := false
	defer func() {
		if !handedOff {
			p.handlers.Done()
		}
	}()
	role, ok := p.admit(w, r, "backend")
	if !ok {
		return
	}
	conn, _, ok := p.accept(w, r, "backend")
	if !ok {
		p.clients.Add(-1)
		return
	}
	remote := r.RemoteAddr
	handedOff = true
	go func() {
		defer p.handlers.Done()
		defer p.finish(conn, "backend")
		p.log.Debug().Str("remote_addr", remote).Str("role", role.String()).Msg("backend client connected")
		p.backendH.Load().Serve(ctx, conn, role)
		p.log.Debug().Str("remote_addr", remote).Msg("backend client gone")
	}()
}

// smallBuffers gives hijacked connections a 1 KiB read buffer and a 2 KiB
// write buffer instead of net/http's 4 KiB each: clients send little, and
// most frames (an attack event is well under 2 KiB) still go out in one
// write. It matters for many idle clients.
// It keeps the network connection, whose write deadline then bounds the
// stream writer's writes.
type smallBuffers struct {
	http.ResponseWriter
	conn net.Conn
}

// Unwrap lets http.ResponseController see the real writer.
func (s *smallBuffers) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	s.conn = c
	// net/http has flushed its writer. Bytes it has read ahead (a first
	// frame sent with the upgrade) must sit in the new reader's buffer:
	// Accept keeps only buffered bytes when it resets the reader.
	const rsize = 1 << 10
	n := brw.Reader.Buffered()
	if n > rsize {
		return c, brw, nil
	}
	ahead, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), c), rsize)
	if n > 0 {
		if _, err := br.Peek(n); err != nil {
			return nil, nil, err
		}
	}
	return c, bufio.NewReadWriter(br, bufio.NewWriterSize(c, 2<<10)), nil
}
