package wsproxy

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/ws-proxy/internal/auth"
)

// Config is the configuration of a ws-proxy replica. Every field but
// NATSOptions has a flag and a HONEYBEE_* environment twin.
type Config struct {
	// Addr is the listen address of the WebSocket and HTTP endpoints
	// (HONEYBEE_WS_ADDR, -addr). Without tokens only a loopback address
	// is accepted.
	Addr string
	// NATSURL is the NATS server (HONEYBEE_NATS_URL, -nats-url).
	NATSURL string
	// NATSOptions are extra NATS options (not a flag; the embedded core
	// passes nats.InProcessServer).
	NATSOptions []nats.Option
	// Prefix is the bus prefix of every subject, stream and bucket
	// (HONEYBEE_PREFIX, -prefix).
	Prefix string
	// Tokens are comma-separated role:token pairs, role read or admin
	// (HONEYBEE_TOKENS, -tokens).
	Tokens string
	// TokensFile is a file of role:token lines, # comments
	// (HONEYBEE_TOKENS_FILE, -tokens-file). Its tokens add to Tokens.
	TokensFile string
	// AllowedOrigins are host patterns (path.Match syntax, e.g.
	// "dash.example.com", "*.example.com") of browser pages allowed to
	// connect from another origin (HONEYBEE_WS_ALLOWED_ORIGINS,
	// -allowed-origins, comma-separated). Same-origin pages and
	// non-browser clients (no Origin header) are always allowed.
	AllowedOrigins []string
	// MaxClients is the most WebSocket clients of this replica, both
	// endpoints together; beyond it the upgrade is refused with HTTP 503
	// (HONEYBEE_WS_MAX_CLIENTS, -max-clients).
	MaxClients int
	// ReadLimit is the largest frame a client may send, in bytes; a larger
	// one closes the connection with status 1009 (HONEYBEE_WS_READ_LIMIT,
	// -read-limit).
	ReadLimit int64
	// QueueSize is the most frames waiting for one /stream client; a
	// client that falls further behind is closed as a slow consumer
	// (HONEYBEE_WS_QUEUE_SIZE, -queue-size).
	QueueSize int
	// WriteTimeout bounds every write and ping to a client
	// (HONEYBEE_WS_WRITE_TIMEOUT, -write-timeout).
	WriteTimeout time.Duration
	// PingInterval is how often clients are pinged to find dead peers
	// (HONEYBEE_WS_PING_INTERVAL, -ping-interval).
	PingInterval time.Duration
	// CommandTimeout bounds a command's request to the gateway, and the
	// gathering of broadcast replies (HONEYBEE_WS_COMMAND_TIMEOUT,
	// -command-timeout).
	CommandTimeout time.Duration
	// ShutdownTimeout bounds the drain at shutdown
	// (HONEYBEE_WS_SHUTDOWN_TIMEOUT, -shutdown-timeout).
	ShutdownTimeout time.Duration

	envErrs []error
}

// DefaultConfig returns the defaults: loopback port 9003 (set Addr to
// ":9003" and configure tokens to serve other hosts).
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:9003",
		NATSURL:         nats.DefaultURL,
		Prefix:          bus.DefaultPrefix,
		MaxClients:      10000,
		ReadLimit:       64 << 10,
		QueueSize:       4096,
		WriteTimeout:    10 * time.Second,
		PingInterval:    30 * time.Second,
		CommandTimeout:  5 * time.Second,
		ShutdownTimeout: 10 * time.Second,
	}
}

// flagEnv pairs each flag with its environment twin.
var flagEnv = []struct{ flag, env string }{
	{"addr", "HONEYBEE_WS_ADDR"},
	{"nats-url", "HONEYBEE_NATS_URL"},
	{"prefix", "HONEYBEE_PREFIX"},
	{"tokens", "HONEYBEE_TOKENS"},
	{"tokens-file", "HONEYBEE_TOKENS_FILE"},
	{"allowed-origins", "HONEYBEE_WS_ALLOWED_ORIGINS"},
	{"max-clients", "HONEYBEE_WS_MAX_CLIENTS"},
	{"read-limit", "HONEYBEE_WS_READ_LIMIT"},
	{"queue-size", "HONEYBEE_WS_QUEUE_SIZE"},
	{"write-timeout", "HONEYBEE_WS_WRITE_TIMEOUT"},
	{"ping-interval", "HONEYBEE_WS_PING_INTERVAL"},
	{"command-timeout", "HONEYBEE_WS_COMMAND_TIMEOUT"},
	{"shutdown-timeout", "HONEYBEE_WS_SHUTDOWN_TIMEOUT"},
}

func envName(flagName string) string {
	for _, fe := range flagEnv {
		if fe.flag == flagName {
			return fe.env
		}
	}
	return ""
}

// RegisterFlags registers a flag per field. A flag's value starts from its
// HONEYBEE_* environment twin when that is set; a bad environment value is
// reported by Validate (never silently replaced by the default).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address of /stream, /, /ws, /health, /ready, /metrics")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS server URL")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "bus prefix of subjects, stream and buckets")
	fs.StringVar(&c.Tokens, "tokens", c.Tokens, "comma-separated role:token pairs (role read or admin); prefer the environment")
	fs.StringVar(&c.TokensFile, "tokens-file", c.TokensFile, "file of role:token lines")
	fs.Func("allowed-origins", "comma-separated host patterns of browser origins allowed to connect", func(s string) error {
		c.AllowedOrigins = splitComma(s)
		return nil
	})
	fs.IntVar(&c.MaxClients, "max-clients", c.MaxClients, "most WebSocket clients of this replica")
	fs.Int64Var(&c.ReadLimit, "read-limit", c.ReadLimit, "largest frame a client may send, bytes")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "most frames waiting for one /stream client before it is closed as a slow consumer")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "timeout of every write and ping")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "interval of pings to clients")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", c.CommandTimeout, "timeout of a command request to the gateway")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "drain deadline at shutdown")
	for _, fe := range flagEnv {
		v, ok := os.LookupEnv(fe.env)
		if !ok {
			continue
		}
		if err := fs.Set(fe.flag, v); err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s (-%s): %w", fe.env, fe.flag, err))
		}
	}
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ErrInvalidConfig is wrapped by every error of Validate.
var ErrInvalidConfig = errors.New("invalid configuration")

func bad(flagName, format string, args ...any) error {
	return fmt.Errorf("%w: %s (-%s): %s", ErrInvalidConfig, envName(flagName), flagName, fmt.Sprintf(format, args...))
}

// Validate checks every setting; the error names the first bad one.
func (c Config) Validate() error {
	if len(c.envErrs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, c.envErrs[0])
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return bad("addr", "%v", err)
	}
	if c.NATSURL == "" {
		return bad("nats-url", "must not be empty")
	}
	if _, err := bus.New(c.Prefix); err != nil {
		return bad("prefix", "%v", err)
	}
	toks, err := c.tokens()
	if err != nil {
		return err
	}
	if toks.Len() == 0 && !isLoopback(host) {
		return bad("tokens", "no tokens configured: set HONEYBEE_TOKENS or HONEYBEE_TOKENS_FILE, or listen on a loopback address (now %q)", c.Addr)
	}
	switch {
	case c.MaxClients <= 0:
		return bad("max-clients", "must be > 0")
	case c.ReadLimit < 512:
		return bad("read-limit", "must be >= 512")
	case c.QueueSize <= 0:
		return bad("queue-size", "must be > 0")
	case c.WriteTimeout <= 0:
		return bad("write-timeout", "must be > 0")
	case c.PingInterval <= 0:
		return bad("ping-interval", "must be > 0")
	case c.CommandTimeout <= 0:
		return bad("command-timeout", "must be > 0")
	case c.ShutdownTimeout <= 0:
		return bad("shutdown-timeout", "must be > 0")
	}
	for _, o := range c.AllowedOrigins {
		if strings.TrimSpace(o) == "" {
			return bad("allowed-origins", "empty pattern")
		}
	}
	return nil
}

// tokens reads Tokens and TokensFile; errors never contain a token.
func (c Config) tokens() (auth.Tokens, error) {
	t, err := auth.Parse(c.Tokens)
	if err != nil {
		return auth.Tokens{}, bad("tokens", "%v", err)
	}
	if c.TokensFile != "" {
		ft, err := auth.ParseFile(c.TokensFile)
		if err != nil {
			return auth.Tokens{}, bad("tokens-file", "%v", err)
		}
		t = t.Merge(ft)
	}
	return t, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
