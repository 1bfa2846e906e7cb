// Package httpapi is the api's HTTP surface: echo routes, middleware
// (request ids, logs, metrics, body limit, bearer-token auth, rate
// limits) and handlers reading the bus through a Backend. The handler is
// safe for concurrent use; it holds no state but its caches.
package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/auth"
	"github.com/honeybee/core/services/api/internal/events"
	"github.com/honeybee/core/services/api/internal/ratelimit"
	"github.com/honeybee/core/services/api/internal/state"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Backend is what the handlers read and write once the bus is reachable.
type Backend struct {
	NC       *nats.Conn
	C        bus.Contract
	View     *state.View
	Gateways *state.Gateways
	Events   *events.Store
	Nodes    jetstream.KeyValue
	Pots     jetstream.KeyValue
	Commands jetstream.KeyValue
	TOTP     jetstream.KeyValue
}

// Options configure the handler.
type Options struct {
	Log zerolog.Logger
	// Tokens are the accepted bearer tokens; with none, every request is
	// allowed (the caller binds loopback only then).
	Tokens auth.Tokens
	// Limiter limits requests per token or client address; nil: none.
	Limiter *ratelimit.Limiter
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// NATSTimeout bounds each key-value read or write.
	NATSTimeout time.Duration
	// CommandTimeout bounds a command request to a gateway.
	CommandTimeout time.Duration
	// BroadcastTimeout bounds gathering broadcast replies.
	BroadcastTimeout time.Duration
	// EventsMaxScan bounds the events one events query examines.
	EventsMaxScan int
	// StatsScan is how many of the newest events the stats look at.
	StatsScan int
	// StatsCacheTTL is how long event statistics are reused; 0: never.
	StatsCacheTTL time.Duration
	// IPExtractor finds the client address (rate limits, logs).
	IPExtractor echo.IPExtractor
	// Registry receives the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Backend returns the bus handles, nil while the bus is not ready.
	Backend func() *Backend
	// Ready reports whether the api can serve (NATS, stream, buckets).
	Ready func(ctx context.Context) error
}

type handler struct {
	Options
	log     zerolog.Logger
	metrics *httpMetrics

	statsMu   sync.Mutex // serializes computing event stats: concurrent callers share one result
	statsAt   time.Time
	statsLast EventStats
}

// New returns the api's HTTP handler.
func New(o Options) http.Handler {
	h := &handler{Options: o, log: o.Log}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = h.errorHandler
	e.IPExtractor = o.IPExtractor
	if e.IPExtractor == nil {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	h.metrics = newHTTPMetrics(o.Registry)

	e.Use(h.requestID, h.logRequests, h.measure, h.recover, h.limitBody, h.authenticate, h.checkQuery)
	h.routes(e)
	return e
}

// route is one documented route; the OpenAPI test checks the document
// against this table and echo's routes.
type route struct {
	method, path string
	handle       echo.HandlerFunc
	open         bool // no token needed
}

func (h *handler) table() []route {
	return []route{
		{http.MethodGet, "/health", h.health, true},
		{http.MethodGet, "/ready", h.ready, true},
		{http.MethodGet, "/metrics", h.serveMetrics, true},
		{http.MethodGet, "/api/v1/openapi.json", h.openAPI, true},
		{http.MethodGet, "/api/v1/nodes", h.listNodes, false},
		{http.MethodGet, "/api/v1/nodes/:node_id", h.getNode, false},
		{http.MethodDelete, "/api/v1/nodes/:node_id", h.deleteNode, false},
		{http.MethodPost, "/api/v1/nodes/:node_id/commands", h.sendCommand, false},
		{http.MethodGet, "/api/v1/honeypots", h.listPots, false},
		{http.MethodPost, "/api/v1/commands/broadcast", h.broadcast, false},
		{http.MethodGet, "/api/v1/commands/:command_id", h.getCommand, false},
		{http.MethodGet, "/api/v1/events", h.listEvents, false},
		{http.MethodGet, "/api/v1/stats", h.stats, false},
		{http.MethodPost, "/api/v1/enrollments", h.createEnrollment, false},
		{http.MethodGet, "/api/v1/enrollments", h.listEnrollments, false},
		{http.MethodDelete, "/api/v1/enrollments/:node_name", h.deleteEnrollment, false},
	}
}

func (h *handler) routes(e *echo.Echo) {
	for _, r := range h.table() {
		e.Add(r.method, r.path, r.handle)
	}
}

// isOpen reports whether path (an echo route path) needs no token.
func (h *handler) isOpen(method, path string) bool {
	switch path {
	case "/health", "/ready", "/metrics", "/api/v1/openapi.json":
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}

// backend returns the bus handles or a 503 while the bus is not ready.
func (h *handler) backend() (*Backend, error) {
	if b := h.Backend(); b != nil {
		return b, nil
	}
	return nil, apiErr(http.StatusServiceUnavailable, CodeNotReady, "the api is not connected to the message bus yet")
}

// online returns the bus handles when NATS is connected right now, else a
// 503 at once (requests would otherwise wait for their timeouts while the
// client reconnects).
func (h *handler) online() (*Backend, error) {
	b, err := h.backend()
	if err != nil {
		return nil, err
	}
	if !b.NC.IsConnected() {
		return nil, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "not connected to the message bus")
	}
	return b, nil
}

// natsCtx bounds one key-value operation of a request.
func (h *handler) natsCtx(c echo.Context) (context.Context, context.CancelFunc) {
	d := h.NATSTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	return context.WithTimeout(c.Request().Context(), d)
}

func (h *handler) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (h *handler) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.Ready(ctx); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: err.Error()}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
