// Package edge is a small HTTP and WebSocket reverse proxy for a service
// run as several replicas behind one name (docker compose --scale, or a
// Kubernetes headless Service). It resolves the name to every replica
// address, probes each replica's readiness path, and hands each new
// connection to the next ready replica in turn, skipping replicas that
// refuse connections. WebSocket upgrades pass through unchanged, so a
// client whose replica dies reconnects through the same port and lands
// on a live one.
//
// A Proxy is created by New and served by Run, which blocks until its
// context is done and then drains; Run may be called once.
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Proxy is the edge proxy.
type Proxy struct {
	cfg   Config
	log   zerolog.Logger
	pool  *pool
	ln    net.Listener
	admin net.Listener
}

// New validates cfg and binds both listeners.
func New(cfg Config, log zerolog.Logger) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With().Str("service", "edge").Logger()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("HONEYBEE_EDGE_LISTEN (-listen): %w", err)
	}
	p := &Proxy{cfg: cfg, log: log, pool: newPool(cfg, log), ln: ln}
	if cfg.AdminListen != "" {
		p.admin, err = net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("HONEYBEE_EDGE_ADMIN_LISTEN (-admin-listen): %w", err)
		}
	}
	return p, nil
}

// Addr is the client-facing listener's address.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// AdminAddr is the admin listener's address, nil when disabled.
func (p *Proxy) AdminAddr() net.Addr {
	if p.admin == nil {
		return nil
	}
	return p.admin.Addr()
}

// Run serves until ctx is done, then stops accepting, gives open
// connections (WebSockets included) ShutdownTimeout to finish, and closes
// the rest. It returns nil on a clean shutdown.
func (p *Proxy) Run(ctx context.Context) error {
	// connCtx outlives ctx by the drain: cancelling it closes the upstream
	// side of every proxied WebSocket, which ends its handler.
	connCtx, closeConns := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConns()

	var handlers sync.WaitGroup
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: p.cfg.Upstream})
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext: p.pool.dial,
			// One connection per request, so that every request and every
			// WebSocket is balanced on its own.
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: 30 * time.Second,
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			if errors.Is(err, context.Canceled) {
				status = 499 // client went away; nobody reads this
			}
			p.log.Warn().Err(err).Str("remote_addr", r.RemoteAddr).Str("path", r.URL.Path).Msg("proxy error")
			writeJSON(w, status, map[string]string{"error": "upstream unavailable", "upstream": p.cfg.Upstream})
		},
	}
	front := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers.Add(1)
			defer handlers.Done()
			proxy.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return connCtx },
		ReadHeaderTimeout: 10 * time.Second,
	}

	var servers []*http.Server
	errc := make(chan error, 2)
	serve := func(s *http.Server, ln net.Listener) {
		servers = append(servers, s)
		go func() {
			if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	poolCtx, stopPool := context.WithCancel(ctx)
	poolDone := make(chan struct{})
	go func() {
		defer close(poolDone)
		p.pool.run(poolCtx)
	}()
	serve(front, p.ln)
	if p.admin != nil {
		serve(&http.Server{Handler: p.adminHandler(), ReadHeaderTimeout: 5 * time.Second}, p.admin)
	}
	p.log.Info().Str("listen", p.ln.Addr().String()).Str("upstream", p.cfg.Upstream).Msg("edge proxy started")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		// One server failed; fall through to shut the other down.
	}
	stopPool()
	sctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx) // plain requests drain here; hijacked WebSockets do not
	}
	// Give proxied WebSockets the rest of the deadline, then cut them.
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		closeConns()
		<-done
	}
	<-poolDone
	for range servers {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	p.log.Info().Msg("edge proxy stopped")
	return runErr
}

func (p *Proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		usable, total := p.pool.usable()
		status := http.StatusOK
		if usable == 0 {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"upstream": p.cfg.Upstream, "ready_replicas": usable, "replicas": total})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
