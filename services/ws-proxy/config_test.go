package wsproxy_test

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give func(*wsproxy.Config)
		want string // substring of the error; "" for valid
	}{
		{"defaults", func(*wsproxy.Config) {}, ""},
		{"public without tokens", func(c *wsproxy.Config) { c.Addr = ":9003" }, "HONEYBEE_TOKENS (-tokens)"},
		{"public with tokens", func(c *wsproxy.Config) { c.Addr = ":9003"; c.Tokens = "read:x" }, ""},
		{"bad addr", func(c *wsproxy.Config) { c.Addr = "nope" }, "HONEYBEE_WS_ADDR (-addr)"},
		{"bad token", func(c *wsproxy.Config) { c.Tokens = "root:x" }, "HONEYBEE_TOKENS (-tokens): entry 1"},
		{"missing tokens file", func(c *wsproxy.Config) { c.TokensFile = "/nonexistent" }, "HONEYBEE_TOKENS_FILE (-tokens-file)"},
		{"bad prefix", func(c *wsproxy.Config) { c.Prefix = "a.b" }, "HONEYBEE_PREFIX (-prefix)"},
		{"max clients", func(c *wsproxy.Config) { c.MaxClients = 0 }, "HONEYBEE_WS_MAX_CLIENTS (-max-clients): must be > 0"},
		{"read limit", func(c *wsproxy.Config) { c.ReadLimit = 10 }, "HONEYBEE_WS_READ_LIMIT (-read-limit)"},
		{"queue", func(c *wsproxy.Config) { c.QueueSize = -1 }, "HONEYBEE_WS_QUEUE_SIZE (-queue-size)"},
		{"write timeout", func(c *wsproxy.Config) { c.WriteTimeout = 0 }, "HONEYBEE_WS_WRITE_TIMEOUT (-write-timeout)"},
		{"ping", func(c *wsproxy.Config) { c.PingInterval = 0 }, "HONEYBEE_WS_PING_INTERVAL"},
		{"command timeout", func(c *wsproxy.Config) { c.CommandTimeout = -time.Second }, "HONEYBEE_WS_COMMAND_TIMEOUT"},
		{"shutdown timeout", func(c *wsproxy.Config) { c.ShutdownTimeout = 0 }, "HONEYBEE_WS_SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := wsproxy.DefaultConfig()
			tt.give(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, wsproxy.ErrInvalidConfig) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "x\"") {
				t.Fatalf("error shows a token: %v", err)
			}
			if _, err := wsproxy.New(cfg, zerolog.New(io.Discard)); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestEnvTwins(t *testing.T) {
	t.Setenv("HONEYBEE_WS_ADDR", ":7003")
	t.Setenv("HONEYBEE_TOKENS", "admin:s3cret")
	t.Setenv("HONEYBEE_WS_ALLOWED_ORIGINS", "a.example, *.b.example")
	t.Setenv("HONEYBEE_WS_QUEUE_SIZE", "99")
	t.Setenv("HONEYBEE_WS_PING_INTERVAL", "7s")
	cfg := wsproxy.DefaultConfig()
	fs := flag.NewFlagSet("ws-proxy", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-queue-size", "5"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7003" || cfg.Tokens != "admin:s3cret" || cfg.QueueSize != 5 || cfg.PingInterval != 7*time.Second ||
		strings.Join(cfg.AllowedOrigins, "|") != "a.example|*.b.example" {
		t.Fatalf("got %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	// A bad environment value is an error, not a silent default.
	t.Setenv("HONEYBEE_WS_MAX_CLIENTS", "many")
	cfg = wsproxy.DefaultConfig()
	cfg.RegisterFlags(flag.NewFlagSet("ws-proxy", flag.ContinueOnError))
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "HONEYBEE_WS_MAX_CLIENTS (-max-clients)") {
		t.Fatalf("got %v", err)
	}
}
