package api

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/auth"
	"github.com/nats-io/nats.go"
)

// DefaultAddr is the api's default listen address. Without tokens it is
// served on loopback only.
const DefaultAddr = ":9002"

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid api configuration")

// Config configures the api. Every field has a flag and a HONEYBEE_*
// environment twin (see RegisterFlags).
type Config struct {
	// Addr is the HTTP listen address (HONEYBEE_API_ADDR, -addr). Without
	// tokens, an address with no host is served on 127.0.0.1 only, and an
	// explicit non-loopback host is refused.
	Addr string
	// NATSURL is the NATS server to use (HONEYBEE_NATS_URL, -nats-url).
	NATSURL string
	// NATSOptions are extra connection options (not a flag; the embedded
	// core passes nats.InProcessServer).
	NATSOptions []nats.Option
	// Prefix is the bus subject prefix (HONEYBEE_PREFIX, -prefix).
	Prefix string
	// Tokens is a comma-separated list of role:token pairs, role read or
	// admin (HONEYBEE_TOKENS, -tokens). Never logged.
	Tokens string
	// TokensFile names a file with one role:token per line and # comments
	// (HONEYBEE_TOKENS_FILE, -tokens-file). Its tokens add to Tokens.
	TokensFile string
	// RateLimit is the sustained requests per second allowed per token or,
	// without a valid token, per client address; 0 disables rate limiting
	// (HONEYBEE_API_RATE_LIMIT, -rate-limit).
	RateLimit float64
	// RateBurst is the burst allowed above RateLimit
	// (HONEYBEE_API_RATE_BURST, -rate-burst).
	RateBurst int
	// RateLimitClients bounds how many clients the rate limiter tracks
	// (HONEYBEE_API_RATE_LIMIT_CLIENTS, -rate-limit-clients).
	RateLimitClients int
	// TrustedProxies are comma-separated CIDRs of reverse proxies whose
	// X-Forwarded-For names the client (HONEYBEE_API_TRUSTED_PROXIES,
	// -trusted-proxies). Empty: the client is the peer address.
	TrustedProxies string
	// MaxBodyBytes bounds request bodies; larger ones get 413
	// (HONEYBEE_API_MAX_BODY_BYTES, -max-body-bytes).
	MaxBodyBytes int64
	// CommandTimeout bounds waiting for a gateway's answer to a command;
	// then the api answers 504 (HONEYBEE_API_COMMAND_TIMEOUT, -command-timeout).
	CommandTimeout time.Duration
	// BroadcastTimeout bounds gathering the gateways' broadcast replies
	// (HONEYBEE_API_BROADCAST_TIMEOUT, -broadcast-timeout).
	BroadcastTimeout time.Duration
	// EventsMaxScan bounds how many stored events one events query
	// examines before it returns a partial page with a cursor
	// (HONEYBEE_API_EVENTS_MAX_SCAN, -events-max-scan).
	EventsMaxScan int
	// StatsScan is how many of the newest events of the last day the stats
	// break down by type and source address (HONEYBEE_API_STATS_SCAN,
	// -stats-scan).
	StatsScan int
	// StatsCacheTTL is how long a replica reuses its event statistics
	// (the node and pot counts are always current); 0 disables the cache
	// (HONEYBEE_API_STATS_CACHE_TTL, -stats-cache-ttl).
	StatsCacheTTL time.Duration
	// NATSTimeout bounds each read from NATS (HONEYBEE_API_NATS_TIMEOUT,
	// -nats-timeout).
	NATSTimeout time.Duration
	// ShutdownTimeout bounds finishing in-flight requests at shutdown
	// (HONEYBEE_API_SHUTDOWN_TIMEOUT, -shutdown-timeout).
	ShutdownTimeout time.Duration

	envErrs []error
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Addr:             DefaultAddr,
		NATSURL:          nats.DefaultURL,
		Prefix:           bus.DefaultPrefix,
		RateLimit:        50,
		RateBurst:        100,
		RateLimitClients: 10000,
		MaxBodyBytes:     1 << 20,
		CommandTimeout:   5 * time.Second,
		BroadcastTimeout: 3 * time.Second,
		EventsMaxScan:    20000,
		StatsScan:        10000,
		StatsCacheTTL:    5 * time.Second,
		NATSTimeout:      5 * time.Second,
		ShutdownTimeout:  10 * time.Second,
	}
}

// RegisterFlags registers a flag per field; each default comes from the
// field's HONEYBEE_* environment variable when set (tokens also from
// HONEYBEE_TOKENS_FILE). A malformed environment value is reported by
// Validate, naming the variable.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	str := func(p *string, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" ("+env+")")
	}
	str(&c.Addr, "addr", "HONEYBEE_API_ADDR", "HTTP listen address; without tokens only loopback is served")
	str(&c.NATSURL, "nats-url", "HONEYBEE_NATS_URL", "NATS server URL")
	str(&c.Prefix, "prefix", "HONEYBEE_PREFIX", "bus subject prefix")
	if v, ok := os.LookupEnv("HONEYBEE_TOKENS"); ok {
		c.Tokens = v
	}
	fs.Var((*secretValue)(&c.Tokens), "tokens", "comma-separated role:token pairs, role read or admin (HONEYBEE_TOKENS)")
	str(&c.TokensFile, "tokens-file", "HONEYBEE_TOKENS_FILE", "file with one role:token per line")
	str(&c.TrustedProxies, "trusted-proxies", "HONEYBEE_API_TRUSTED_PROXIES", "comma-separated CIDRs of proxies trusted for X-Forwarded-For")
	envVar(c, fs, &floatValue{&c.RateLimit}, "rate-limit", "HONEYBEE_API_RATE_LIMIT", "requests per second per token or client address; 0 disables")
	envVar(c, fs, &intValue{&c.RateBurst}, "rate-burst", "HONEYBEE_API_RATE_BURST", "request burst above the rate limit")
	envVar(c, fs, &intValue{&c.RateLimitClients}, "rate-limit-clients", "HONEYBEE_API_RATE_LIMIT_CLIENTS", "most clients the rate limiter tracks")
	envVar(c, fs, &int64Value{&c.MaxBodyBytes}, "max-body-bytes", "HONEYBEE_API_MAX_BODY_BYTES", "largest request body accepted")
	envVar(c, fs, &durationValue{&c.CommandTimeout}, "command-timeout", "HONEYBEE_API_COMMAND_TIMEOUT", "wait for a gateway's answer to a command")
	envVar(c, fs, &durationValue{&c.BroadcastTimeout}, "broadcast-timeout", "HONEYBEE_API_BROADCAST_TIMEOUT", "wait for the gateways' broadcast replies")
	envVar(c, fs, &intValue{&c.EventsMaxScan}, "events-max-scan", "HONEYBEE_API_EVENTS_MAX_SCAN", "most stored events one events query examines")
	envVar(c, fs, &intValue{&c.StatsScan}, "stats-scan", "HONEYBEE_API_STATS_SCAN", "newest events the stats break down")
	envVar(c, fs, &durationValue{&c.StatsCacheTTL}, "stats-cache-ttl", "HONEYBEE_API_STATS_CACHE_TTL", "reuse event statistics for this long; 0 disables")
	envVar(c, fs, &durationValue{&c.NATSTimeout}, "nats-timeout", "HONEYBEE_API_NATS_TIMEOUT", "timeout of each NATS read")
	envVar(c, fs, &durationValue{&c.ShutdownTimeout}, "shutdown-timeout", "HONEYBEE_API_SHUTDOWN_TIMEOUT", "time to finish requests at shutdown")
}

func envVar(c *Config, fs *flag.FlagSet, v flag.Value, name, env, usage string) {
	if s, ok := os.LookupEnv(env); ok {
		if err := v.Set(s); err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%w: %s (-%s): %q: %w", ErrInvalidConfig, env, name, s, err))
		}
	}
	fs.Var(v, name, usage+" ("+env+")")
}

// Validate checks every setting; the error names the first bad one.
func (c Config) Validate() error {
	if len(c.envErrs) > 0 {
		return c.envErrs[0]
	}
	bad := func(env, flagName, format string, args ...any) error {
		return fmt.Errorf("%w: %s (-%s): %s", ErrInvalidConfig, env, flagName, fmt.Sprintf(format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("HONEYBEE_API_ADDR", "addr", "%q is not host:port", c.Addr)
	}
	if c.NATSURL == "" && len(c.NATSOptions) == 0 {
		return bad("HONEYBEE_NATS_URL", "nats-url", "must not be empty")
	}
	if _, err := bus.New(c.Prefix); err != nil {
		return bad("HONEYBEE_PREFIX", "prefix", "%v", err)
	}
	if _, err := c.tokens(); err != nil {
		return err
	}
	if _, err := parseCIDRs(c.TrustedProxies); err != nil {
		return bad("HONEYBEE_API_TRUSTED_PROXIES", "trusted-proxies", "%v", err)
	}
	switch {
	case c.RateLimit < 0:
		return bad("HONEYBEE_API_RATE_LIMIT", "rate-limit", "must be >= 0")
	case c.RateBurst < 1:
		return bad("HONEYBEE_API_RATE_BURST", "rate-burst", "must be >= 1")
	case c.RateLimitClients < 1:
		return bad("HONEYBEE_API_RATE_LIMIT_CLIENTS", "rate-limit-clients", "must be >= 1")
	case c.MaxBodyBytes < 1024:
		return bad("HONEYBEE_API_MAX_BODY_BYTES", "max-body-bytes", "must be >= 1024")
	case c.CommandTimeout <= 0:
		return bad("HONEYBEE_API_COMMAND_TIMEOUT", "command-timeout", "must be > 0")
	case c.BroadcastTimeout <= 0:
		return bad("HONEYBEE_API_BROADCAST_TIMEOUT", "broadcast-timeout", "must be > 0")
	case c.EventsMaxScan < 1000:
		return bad("HONEYBEE_API_EVENTS_MAX_SCAN", "events-max-scan", "must be >= 1000")
	case c.StatsScan < 1:
		return bad("HONEYBEE_API_STATS_SCAN", "stats-scan", "must be >= 1")
	case c.StatsCacheTTL < 0:
		return bad("HONEYBEE_API_STATS_CACHE_TTL", "stats-cache-ttl", "must be >= 0")
	case c.NATSTimeout <= 0:
		return bad("HONEYBEE_API_NATS_TIMEOUT", "nats-timeout", "must be > 0")
	case c.ShutdownTimeout <= 0:
		return bad("HONEYBEE_API_SHUTDOWN_TIMEOUT", "shutdown-timeout", "must be > 0")
	}
	return nil
}

// tokens parses Tokens and TokensFile.
func (c Config) tokens() (auth.Tokens, error) {
	var file string
	if c.TokensFile != "" {
		b, err := os.ReadFile(c.TokensFile)
		if err != nil {
			return auth.Tokens{}, fmt.Errorf("%w: HONEYBEE_TOKENS_FILE (-tokens-file): %w", ErrInvalidConfig, err)
		}
		file = string(b)
	}
	if _, err := auth.Parse(c.Tokens, ""); err != nil {
		return auth.Tokens{}, fmt.Errorf("%w: HONEYBEE_TOKENS (-tokens): %w", ErrInvalidConfig, err)
	}
	if _, err := auth.Parse("", file); err != nil {
		return auth.Tokens{}, fmt.Errorf("%w: HONEYBEE_TOKENS_FILE (-tokens-file): %w", ErrInvalidConfig, err)
	}
	t, err := auth.Parse(c.Tokens, file)
	if err != nil {
		return auth.Tokens{}, fmt.Errorf("%w: HONEYBEE_TOKENS, HONEYBEE_TOKENS_FILE: %w", ErrInvalidConfig, err)
	}
	return t, nil
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// listenAddr decides where to listen: without tokens, only on loopback.
// It reports whether it narrowed the address to loopback.
func (c Config) listenAddr(haveTokens bool) (addr string, narrowed bool, err error) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "", false, err
	}
	if haveTokens {
		return c.Addr, false, nil
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), true, nil
	}
	if host == "localhost" {
		return c.Addr, false, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return c.Addr, false, nil
	}
	return "", false, fmt.Errorf("%w: HONEYBEE_API_ADDR (-addr): %q is not a loopback address and no tokens are configured: set HONEYBEE_TOKENS or HONEYBEE_TOKENS_FILE", ErrInvalidConfig, c.Addr)
}

// secretValue is a string flag whose value is never printed (-help shows
// no default for it).
type secretValue string

func (s *secretValue) String() string     { return "" }
func (s *secretValue) Set(v string) error { *s = secretValue(v); return nil }

type intValue struct{ p *int }

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not an integer")
	}
	*v.p = n
	return nil
}

type int64Value struct{ p *int64 }

func (v *int64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}
func (v *int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	*v.p = n
	return nil
}

type floatValue struct{ p *float64 }

func (v *floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}
func (v *floatValue) Set(s string) error {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("not a number")
	}
	*v.p = n
	return nil
}

type durationValue struct{ p *time.Duration }

func (v *durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration such as 5s")
	}
	*v.p = d
	return nil
}
