package api_test

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/services/api"
	"github.com/honeybee/core/services/api/internal/testbus"
	"github.com/rs/zerolog"
)

func TestHealthAndReady(t *testing.T) {
	e := start(t, noBus)
	// Liveness needs nothing; readiness waits for the gateway's stream and buckets.
	var h map[string]string
	e.do("GET", "/health", "", "").wantStatus(t, http.StatusOK).decode(t, &h)
	if h["status"] != "ok" {
		t.Errorf("health = %v", h)
	}
	e.do("GET", "/ready", "", "").wantError(t, http.StatusServiceUnavailable, "NOT_READY")
	e.get("/api/v1/nodes").wantError(t, http.StatusServiceUnavailable, "NOT_READY")

	b := testbus.MustCreate(t, e.nc, e.c)
	e.bus = b
	e.waitReady()
	e.get("/api/v1/nodes").wantStatus(t, http.StatusOK)
}

func TestAuth(t *testing.T) {
	e := start(t)
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   string
		want   int
		code   string
	}{
		{name: "health open", method: "GET", path: "/health", want: 200},
		{name: "ready open", method: "GET", path: "/ready", want: 200},
		{name: "metrics open", method: "GET", path: "/metrics", want: 200},
		{name: "openapi open", method: "GET", path: "/api/v1/openapi.json", want: 200},
		{name: "no token", method: "GET", path: "/api/v1/nodes", want: 401, code: "UNAUTHORIZED"},
		{name: "wrong token", method: "GET", path: "/api/v1/nodes", token: "nope", want: 401, code: "UNAUTHORIZED"},
		{name: "token prefix", method: "GET", path: "/api/v1/nodes", token: readToken[:5], want: 401, code: "UNAUTHORIZED"},
		{name: "read get", method: "GET", path: "/api/v1/nodes", token: readToken, want: 200},
		{name: "admin get", method: "GET", path: "/api/v1/stats", token: adminToken, want: 200},
		{name: "read post", method: "POST", path: "/api/v1/enrollments", token: readToken, body: `{"node_name":"x"}`, want: 403, code: "FORBIDDEN"},
		{name: "read delete", method: "DELETE", path: "/api/v1/nodes/1", token: readToken, want: 403, code: "FORBIDDEN"},
		{name: "read command", method: "POST", path: "/api/v1/nodes/1/commands", token: readToken, body: `{"Restart":{}}`, want: 403, code: "FORBIDDEN"},
		{name: "admin delete unknown", method: "DELETE", path: "/api/v1/nodes/1", token: adminToken, want: 404, code: "NODE_NOT_FOUND"},
		{name: "unknown route needs token", method: "GET", path: "/api/v1/nope", want: 401, code: "UNAUTHORIZED"},
		{name: "unknown route", method: "GET", path: "/api/v1/nope", token: readToken, want: 404, code: "NOT_FOUND"},
		{name: "wrong method", method: "PUT", path: "/api/v1/nodes", token: adminToken, want: 405, code: "METHOD_NOT_ALLOWED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.token, tt.body)
			if tt.code != "" {
				r.wantError(t, tt.want, tt.code)
			} else {
				r.wantStatus(t, tt.want)
			}
			if tt.want == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Tokens never reach the logs.
	if logs := e.logs.String(); strings.Contains(logs, readToken) || strings.Contains(logs, adminToken) {
		t.Error("a token was logged")
	}
}

func TestNoTokensLoopbackOnly(t *testing.T) {
	srv := testbus.Server(t)
	tests := []struct {
		name     string
		give     string
		wantHost string
		wantErr  string
	}{
		{name: "no host narrows to loopback", give: ":0", wantHost: "127.0.0.1"},
		{name: "loopback v4", give: "127.0.0.1:0", wantHost: "127.0.0.1"},
		{name: "loopback v6", give: "[::1]:0", wantHost: "::1"},
		{name: "all interfaces refused", give: "0.0.0.0:0", wantErr: "HONEYBEE_TOKENS"},
		{name: "other host refused", give: "192.0.2.1:0", wantErr: "HONEYBEE_API_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := api.DefaultConfig()
			cfg.Addr, cfg.NATSURL = tt.give, srv.ClientURL()
			var logs syncBuffer
			s, err := api.New(cfg, zerolog.New(&logs))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				if strings.Contains(err.Error(), "cannot assign") || strings.Contains(err.Error(), "address not available") {
					t.Skip("no IPv6 loopback here")
				}
				t.Fatal(err)
			}
			host, _, _ := net.SplitHostPort(s.Addr().String())
			if host != tt.wantHost {
				t.Errorf("listening on %s, want host %s", s.Addr(), tt.wantHost)
			}
			if !strings.Contains(logs.String(), "NO API TOKENS") {
				t.Error("no loud warning without tokens")
			}
			// Close the listener by running and stopping the server.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNoTokensServesEverything(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.Tokens = "" }))
	e.do("GET", "/api/v1/nodes", "", "").wantStatus(t, http.StatusOK)
	e.do("POST", "/api/v1/enrollments", "", `{"node_name":"n1"}`).wantStatus(t, http.StatusCreated)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give func(*api.Config)
		want string
	}{
		{"addr", func(c *api.Config) { c.Addr = "nope" }, "HONEYBEE_API_ADDR"},
		{"prefix", func(c *api.Config) { c.Prefix = "a.b" }, "HONEYBEE_PREFIX"},
		{"tokens", func(c *api.Config) { c.Tokens = "root:x" }, "HONEYBEE_TOKENS"},
		{"tokens file missing", func(c *api.Config) { c.TokensFile = "/nonexistent/tokens" }, "HONEYBEE_TOKENS_FILE"},
		{"proxies", func(c *api.Config) { c.TrustedProxies = "10.0.0.0/99" }, "HONEYBEE_API_TRUSTED_PROXIES"},
		{"rate", func(c *api.Config) { c.RateLimit = -1 }, "HONEYBEE_API_RATE_LIMIT"},
		{"burst", func(c *api.Config) { c.RateBurst = 0 }, "HONEYBEE_API_RATE_BURST"},
		{"clients", func(c *api.Config) { c.RateLimitClients = 0 }, "HONEYBEE_API_RATE_LIMIT_CLIENTS"},
		{"body", func(c *api.Config) { c.MaxBodyBytes = 10 }, "HONEYBEE_API_MAX_BODY_BYTES"},
		{"command timeout", func(c *api.Config) { c.CommandTimeout = 0 }, "HONEYBEE_API_COMMAND_TIMEOUT"},
		{"broadcast timeout", func(c *api.Config) { c.BroadcastTimeout = 0 }, "HONEYBEE_API_BROADCAST_TIMEOUT"},
		{"max scan", func(c *api.Config) { c.EventsMaxScan = 1 }, "HONEYBEE_API_EVENTS_MAX_SCAN"},
		{"stats scan", func(c *api.Config) { c.StatsScan = 0 }, "HONEYBEE_API_STATS_SCAN"},
		{"stats cache", func(c *api.Config) { c.StatsCacheTTL = -1 }, "HONEYBEE_API_STATS_CACHE_TTL"},
		{"nats timeout", func(c *api.Config) { c.NATSTimeout = 0 }, "HONEYBEE_API_NATS_TIMEOUT"},
		{"shutdown", func(c *api.Config) { c.ShutdownTimeout = 0 }, "HONEYBEE_API_SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := api.DefaultConfig()
			tt.give(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, api.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if err := api.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestRegisterFlagsFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# ops\nadmin:file-token-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HONEYBEE_API_ADDR", "127.0.0.1:9999")
	t.Setenv("HONEYBEE_TOKENS", "read:env-token-123")
	t.Setenv("HONEYBEE_TOKENS_FILE", file)
	t.Setenv("HONEYBEE_API_COMMAND_TIMEOUT", "7s")
	t.Setenv("HONEYBEE_API_RATE_LIMIT", "2.5")
	cfg := api.DefaultConfig()
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-stats-scan", "5"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" || cfg.Tokens != "read:env-token-123" || cfg.TokensFile != file ||
		cfg.CommandTimeout != 7*time.Second || cfg.RateLimit != 2.5 || cfg.StatsScan != 5 {
		t.Errorf("config = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// -help never shows a token.
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if strings.Contains(help.String(), "env-token-123") {
		t.Error("-help shows the token")
	}

	t.Setenv("HONEYBEE_API_BROADCAST_TIMEOUT", "soon")
	bad := api.DefaultConfig()
	bad.RegisterFlags(flag.NewFlagSet("api", flag.ContinueOnError))
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "HONEYBEE_API_BROADCAST_TIMEOUT") {
		t.Errorf("Validate = %v, want an error naming HONEYBEE_API_BROADCAST_TIMEOUT", err)
	}
}

func TestRunStopsWhileWaitingForNATS(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = "nats://127.0.0.1:1" // nothing listens: Run keeps retrying
	cfg.Tokens = "admin:" + adminToken
	s, err := api.New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr().String()
	testbus.Eventually(t, func() bool {
		res, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	http.DefaultClient.CloseIdleConnections()
}
