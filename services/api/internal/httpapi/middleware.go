package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/honeybee/core/services/api/internal/auth"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	headerRequestID = "X-Request-Id"
	ctxRequestID    = "request_id"
	ctxToken        = "token"
)

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// requestID takes a sane X-Request-Id from the client or makes one, and
// echoes it in the response.
func (h *handler) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(headerRequestID)
		if !saneRequestID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(headerRequestID, id)
		return next(c)
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}

// logRequests logs each request once it is answered. It never logs
// headers or query strings (tokens travel in the first, and the second is
// client input).
func (h *handler) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // answer now, so the status below is the real one
		}
		ev := h.log.Info()
		status := c.Response().Status
		if status >= 500 {
			ev = h.log.Warn()
		}
		ev = ev.Str("method", c.Request().Method).
			Str("path", c.Request().URL.Path).
			Str("route", c.Path()).
			Int("status", status).
			Dur("latency", time.Since(start)).
			Str("request_id", requestID(c)).
			Str("remote_ip", c.RealIP()).
			Int64("bytes_out", c.Response().Size)
		if tok, ok := c.Get(ctxToken).(auth.Token); ok {
			ev = ev.Str("token", tok.Name)
		}
		ev.Msg("request")
		return nil
	}
}

// recover turns a handler panic into a 500 instead of a dropped
// connection.
func (h *handler) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error",
					Err: fmt.Errorf("panic: %v", r)}
			}
		}()
		return next(c)
	}
}

// limitBody refuses bodies over MaxBodyBytes with 413, by Content-Length
// up front or while reading (readBody maps the reader's error).
func (h *handler) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > h.MaxBodyBytes {
			return bodyTooLarge(h.MaxBodyBytes)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, h.MaxBodyBytes)
		return next(c)
	}
}

func bodyTooLarge(limit int64) *Error {
	return apiErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "request body is larger than %d bytes", limit)
}

// checkQuery refuses a query string that does not parse (echo would
// silently drop the bad pairs).
func (h *handler) checkQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
			return badRequest(CodeInvalidParameter, "the query string is malformed")
		}
		return next(c)
	}
}

// authenticate checks the bearer token and role and applies the rate
// limit: per token when one is presented and valid, else per client
// address (so guessing tokens is limited too).
func (h *handler) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		method, path := c.Request().Method, c.Path()
		if h.isOpen(method, path) {
			return next(c)
		}
		var tok auth.Token
		var valid bool
		presented, hasBearer := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if h.Tokens.Len() > 0 && hasBearer {
			tok, valid = h.Tokens.Lookup(presented)
		}
		key := "ip:" + c.RealIP()
		if valid {
			key = "token:" + tok.Name
			c.Set(ctxToken, tok)
		}
		if ok, retry := h.Limiter.Allow(key); !ok {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
			h.metrics.rateLimited.Inc()
			return apiErr(http.StatusTooManyRequests, CodeRateLimited, "too many requests, retry in %s", retry)
		}
		if h.Tokens.Len() == 0 {
			return next(c) // loopback only: see api.New
		}
		if !valid {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="honeybee"`)
			if !hasBearer {
				return apiErr(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token")
			}
			return apiErr(http.StatusUnauthorized, CodeUnauthorized, "invalid bearer token")
		}
		if !tok.Role.Allows(method) {
			return apiErr(http.StatusForbidden, CodeForbidden, "a %s token may not %s", tok.Role, method)
		}
		return next(c)
	}
}

type httpMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited prometheus.Counter
	handler     http.Handler
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "honeybee", Subsystem: "api", Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "honeybee", Subsystem: "api", Name: "http_request_duration_seconds",
			Help: "HTTP request latency, by method and route.", Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "honeybee", Subsystem: "api", Name: "rate_limited_total",
			Help: "Requests refused by the rate limit.",
		}),
	}
	// Registering twice (a second handler on one registry) is a caller bug.
	reg.MustRegister(m.requests, m.duration, m.rateLimited)
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// measure records every answered request under its route template (not
// the raw path, which would make a label per node id).
func (h *handler) measure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || c.Response().Status == http.StatusNotFound && isUnmatched(c) {
			route = "unmatched"
		}
		method := c.Request().Method
		h.metrics.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		h.metrics.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}

func isUnmatched(c echo.Context) bool {
	for _, r := range c.Echo().Routes() {
		if r.Path == c.Path() {
			return false
		}
	}
	return true
}

func (h *handler) serveMetrics(c echo.Context) error {
	h.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// errBodyTooLarge reports whether a body read failed on the size limit.
func errBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
