package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if cfg.Listen != ":9001" || cfg.AdminListen != ":9101" || cfg.RegistrationTimeout != 10*time.Second ||
		cfg.IdleTimeout != 90*time.Second || cfg.MaxMessageSize != 64<<10 || cfg.TOTPMode != "off" ||
		cfg.Prefix != "honeybee" || cfg.NATSURL != "nats://127.0.0.1:4222" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

// TestValidateNamesTheBadSetting: each bad value is reported with its
// environment variable and flag.
func TestValidateNamesTheBadSetting(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{"listen", func(c *Config) { c.Listen = "nine thousand" }, "HONEYBEE_GATEWAY_LISTEN (-listen)"},
		{"admin listen", func(c *Config) { c.AdminListen = "x" }, "HONEYBEE_GATEWAY_ADMIN_LISTEN (-admin-listen)"},
		{"cert without key", func(c *Config) { c.TLSCertFile = "cert.pem" }, "HONEYBEE_TLS_CERT (-tls-cert)"},
		{"client CA without cert", func(c *Config) { c.TLSClientCAFile = "ca.pem" }, "HONEYBEE_TLS_CLIENT_CA (-tls-client-ca)"},
		{"registration timeout", func(c *Config) { c.RegistrationTimeout = 0 }, "HONEYBEE_REGISTRATION_TIMEOUT (-registration-timeout): must be > 0"},
		{"idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "HONEYBEE_IDLE_TIMEOUT (-idle-timeout): must be > 0"},
		{"write timeout", func(c *Config) { c.WriteTimeout = 0 }, "HONEYBEE_WRITE_TIMEOUT (-write-timeout)"},
		{"write queue", func(c *Config) { c.WriteQueue = 0 }, "HONEYBEE_WRITE_QUEUE (-write-queue)"},
		{"max message size", func(c *Config) { c.MaxMessageSize = 10 }, "HONEYBEE_MAX_MESSAGE_SIZE (-max-message-size)"},
		{"max depth", func(c *Config) { c.MaxDepth = 0 }, "HONEYBEE_MAX_DEPTH (-max-depth)"},
		{"bad message limit", func(c *Config) { c.BadMessageLimit = -1 }, "HONEYBEE_BAD_MESSAGE_LIMIT (-bad-message-limit)"},
		{"bad message window", func(c *Config) { c.BadMessageWindow = 0 }, "HONEYBEE_BAD_MESSAGE_WINDOW (-bad-message-window)"},
		{"unacked window below message size", func(c *Config) { c.MaxUnackedBytes = 1000 }, "HONEYBEE_MAX_UNACKED_BYTES (-max-unacked-bytes)"},
		{"max connections", func(c *Config) { c.MaxConnections = -1 }, "HONEYBEE_MAX_CONNECTIONS (-max-connections)"},
		{"last seen interval", func(c *Config) { c.LastSeenInterval = 0 }, "HONEYBEE_LAST_SEEN_INTERVAL (-last-seen-interval)"},
		{"totp mode", func(c *Config) { c.TOTPMode = "maybe" }, `HONEYBEE_TOTP_MODE (-totp-mode): want off, tofu or enrolled, got "maybe"`},
		{"gateway id", func(c *Config) { c.GatewayID = "gw.1" }, "HONEYBEE_GATEWAY_ID (-gateway-id)"},
		{"empty gateway id", func(c *Config) { c.GatewayID = "" }, "HONEYBEE_GATEWAY_ID (-gateway-id)"},
		{"prefix", func(c *Config) { c.Prefix = "honey.bee" }, "HONEYBEE_PREFIX (-prefix)"},
		{"nats url", func(c *Config) { c.NATSURL = " " }, "HONEYBEE_NATS_URL (-nats-url)"},
		{"stream max age", func(c *Config) { c.StreamMaxAge = time.Second }, "HONEYBEE_STREAM_MAX_AGE (-stream-max-age)"},
		{"stream max bytes", func(c *Config) { c.StreamMaxBytes = 0 }, "HONEYBEE_STREAM_MAX_BYTES (-stream-max-bytes)"},
		{"stream replicas", func(c *Config) { c.StreamReplicas = 7 }, "HONEYBEE_STREAM_REPLICAS (-stream-replicas)"},
		{"kv replicas", func(c *Config) { c.KVReplicas = 0 }, "HONEYBEE_KV_REPLICAS (-kv-replicas)"},
		{"drain timeout", func(c *Config) { c.DrainTimeout = 0 }, "HONEYBEE_DRAIN_TIMEOUT (-drain-timeout)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.give(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := New(cfg, testLogger(t)); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New accepted an invalid config: %v", err)
			}
		})
	}
}

// TestFlagsAndEnvironment: every flag defaults to its HONEYBEE_* twin;
// flags override; secrets come from *_FILE; bad environment values are
// reported by Validate with the variable's name.
func TestFlagsAndEnvironment(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HONEYBEE_IDLE_TIMEOUT", "45s")
	t.Setenv("HONEYBEE_MAX_MESSAGE_SIZE", "131072")
	t.Setenv("HONEYBEE_TOTP_MODE", "tofu")
	t.Setenv("HONEYBEE_STREAM_MAX_BYTES", "-1")
	t.Setenv("HONEYBEE_GATEWAY_ID", "gw-env")
	t.Setenv("HONEYBEE_NATS_TOKEN_FILE", tokenFile)
	t.Setenv("HONEYBEE_PREFIX", "hive")

	cfg := DefaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-prefix", "swarm", "-kv-replicas", "3"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.IdleTimeout != 45*time.Second || cfg.MaxMessageSize != 131072 || cfg.TOTPMode != "tofu" ||
		cfg.StreamMaxBytes != -1 || cfg.GatewayID != "gw-env" || cfg.NATSToken != "s3cret" {
		t.Errorf("environment not applied: %+v", cfg)
	}
	if cfg.Prefix != "swarm" || cfg.KVReplicas != 3 {
		t.Errorf("flags did not override: prefix %q, kv replicas %d", cfg.Prefix, cfg.KVReplicas)
	}
	// Every setting (exported field but NATSOptions) has a flag.
	n, fields := 0, 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	for f := range reflect.TypeFor[Config]().Fields() {
		if f.IsExported() && f.Name != "NATSOptions" {
			fields++
		}
	}
	if n != fields {
		t.Errorf("%d flags registered for %d settings", n, fields)
	}

	t.Run("bad environment values", func(t *testing.T) {
		t.Setenv("HONEYBEE_REGISTRATION_TIMEOUT", "soon")
		t.Setenv("HONEYBEE_WRITE_QUEUE", "many")
		t.Setenv("HONEYBEE_NATS_TOKEN", "also-set")
		cfg := DefaultConfig()
		cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
		err := cfg.Validate()
		for _, want := range []string{`HONEYBEE_REGISTRATION_TIMEOUT: invalid duration "soon"`, `HONEYBEE_WRITE_QUEUE: invalid integer "many"`,
			"HONEYBEE_NATS_TOKEN and HONEYBEE_NATS_TOKEN_FILE: set only one"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate() = %v, want it to mention %q", err, want)
			}
		}
	})
}

func TestSanitizeHostname(t *testing.T) {
	tests := []struct{ give, want string }{
		{"gw-1", "gw-1"},
		{"node.example.com", "node-example-com"},
		{"héllo wörld", "h--llo-w--rld"},
	}
	for _, tt := range tests {
		if got := sanitizeID(tt.give); got != tt.want {
			t.Errorf("sanitizeID(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestAdminEndpoints: /healthz answers at once; /readyz is 503 until NATS
// is reachable and the stream and buckets exist, then 200; /metrics
// exposes the gateway's series.
func TestAdminEndpoints(t *testing.T) {
	// NATS is not there yet: the gateway keeps retrying.
	ns := startNATS(t)
	url := ns.ClientURL()
	ns.stop()
	cfg := testConfig(url)
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	base := "http://" + g.AdminAddr().String()
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	eventually(t, "/healthz", func() bool { code, _ := get("/healthz"); return code == http.StatusOK })
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body["reason"] != "NATS not connected" {
		t.Errorf("/readyz without NATS = %d %v", code, body)
	}

	ns.start(t) // same port: the gateway connects and sets up
	eventually(t, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{"honeybee_gateway_connections", "honeybee_gateway_nodes", "honeybee_gateway_unacked_bytes",
		"honeybee_gateway_publish_latency_seconds", "honeybee_gateway_backpressure_seconds_total", "honeybee_gateway_nats_connected 1", "go_goroutines"} {
		if !strings.Contains(string(body), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("admin server still up after Run returned")
	}
}

// TestRunStopsWhileNATSUnreachable: cancelling Run before NATS ever
// answered returns nil promptly.
func TestRunStopsWhileNATSUnreachable(t *testing.T) {
	cfg := testConfig("nats://127.0.0.1:1")
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	eventually(t, "admin server up and not ready", func() bool {
		resp, err := http.Get("http://" + g.AdminAddr().String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := g.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}
}
