package edge

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

// Config is the edge proxy's configuration. Every field except Lookup has
// a flag with a HONEYBEE_EDGE_* environment twin.
type Config struct {
	// Listen is the client-facing address (HONEYBEE_EDGE_LISTEN, -listen).
	Listen string
	// AdminListen serves /healthz (process alive) and /readyz (at least one
	// upstream replica ready) (HONEYBEE_EDGE_ADMIN_LISTEN, -admin-listen).
	AdminListen string
	// Upstream is host:port of the replicated service. The host is resolved
	// to every replica address, e.g. a Compose service name or a Kubernetes
	// headless Service (HONEYBEE_EDGE_UPSTREAM, -upstream).
	Upstream string
	// ResolveInterval is how often Upstream is resolved again and every
	// replica probed (HONEYBEE_EDGE_RESOLVE_INTERVAL, -resolve-interval).
	ResolveInterval time.Duration
	// HealthPath is the readiness path probed on each replica; a replica
	// answering anything but 2xx gets no new connections. Empty disables
	// probing: every resolved replica is used until a dial to it fails
	// (HONEYBEE_EDGE_HEALTH_PATH, -health-path).
	HealthPath string
	// DialTimeout bounds a connection attempt to one replica; on failure the
	// next replica is tried (HONEYBEE_EDGE_DIAL_TIMEOUT, -dial-timeout).
	DialTimeout time.Duration
	// ShutdownTimeout bounds the drain of open connections on shutdown
	// (HONEYBEE_EDGE_SHUTDOWN_TIMEOUT, -shutdown-timeout).
	ShutdownTimeout time.Duration
	// Lookup resolves a host name to addresses; nil means
	// net.DefaultResolver.LookupHost. Not a flag: tests inject it.
	Lookup func(ctx context.Context, host string) ([]string, error)

	envErr error // a malformed environment value seen by RegisterFlags
}

// DefaultConfig returns the settings used in compose.yaml.
func DefaultConfig() Config {
	return Config{
		Listen:          ":9003",
		AdminListen:     ":9080",
		Upstream:        "ws-proxy:9003",
		ResolveInterval: 2 * time.Second,
		HealthPath:      "/ready",
		DialTimeout:     time.Second,
		ShutdownTimeout: 10 * time.Second,
	}
}

// ErrInvalidConfig is returned (wrapped, naming the setting) by Validate.
var ErrInvalidConfig = errors.New("invalid configuration")

// RegisterFlags registers a flag per field; a flag's default comes from
// its environment twin when that is set.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	str(fs, &c.Listen, "listen", "HONEYBEE_EDGE_LISTEN", "client-facing listen address")
	str(fs, &c.AdminListen, "admin-listen", "HONEYBEE_EDGE_ADMIN_LISTEN", "admin listen address (/healthz, /readyz)")
	str(fs, &c.Upstream, "upstream", "HONEYBEE_EDGE_UPSTREAM", "host:port of the replicas; the host resolves to every replica")
	c.dur(fs, &c.ResolveInterval, "resolve-interval", "HONEYBEE_EDGE_RESOLVE_INTERVAL", "how often to resolve and probe the replicas")
	str(fs, &c.HealthPath, "health-path", "HONEYBEE_EDGE_HEALTH_PATH", "readiness path probed on each replica (empty: no probing)")
	c.dur(fs, &c.DialTimeout, "dial-timeout", "HONEYBEE_EDGE_DIAL_TIMEOUT", "timeout of one connection attempt to a replica")
	c.dur(fs, &c.ShutdownTimeout, "shutdown-timeout", "HONEYBEE_EDGE_SHUTDOWN_TIMEOUT", "drain deadline on shutdown")
}

// Validate reports the first bad setting.
func (c Config) Validate() error {
	bad := func(env, flag, why string) error {
		return fmt.Errorf("%w: %s (-%s): %s", ErrInvalidConfig, env, flag, why)
	}
	if c.envErr != nil {
		return c.envErr
	}
	if c.Listen == "" {
		return bad("HONEYBEE_EDGE_LISTEN", "listen", "must not be empty")
	}
	if _, port, err := net.SplitHostPort(c.Upstream); err != nil || port == "" {
		return bad("HONEYBEE_EDGE_UPSTREAM", "upstream", "must be host:port")
	}
	if c.ResolveInterval <= 0 {
		return bad("HONEYBEE_EDGE_RESOLVE_INTERVAL", "resolve-interval", "must be > 0")
	}
	if c.HealthPath != "" && c.HealthPath[0] != '/' {
		return bad("HONEYBEE_EDGE_HEALTH_PATH", "health-path", "must start with /")
	}
	if c.DialTimeout <= 0 {
		return bad("HONEYBEE_EDGE_DIAL_TIMEOUT", "dial-timeout", "must be > 0")
	}
	if c.ShutdownTimeout <= 0 {
		return bad("HONEYBEE_EDGE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "must be > 0")
	}
	return nil
}

func str(fs *flag.FlagSet, p *string, name, env, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		*p = v
	}
	fs.StringVar(p, name, *p, usage+" ("+env+")")
}

// dur registers a duration flag. A malformed environment value is kept
// in c.envErr and reported by Validate rather than silently replaced by
// the default.
func (c *Config) dur(fs *flag.FlagSet, p *time.Duration, name, env, usage string) {
	if s, ok := os.LookupEnv(env); ok {
		v, err := time.ParseDuration(s)
		if err != nil && c.envErr == nil {
			c.envErr = fmt.Errorf("%w: %s (-%s): %v", ErrInvalidConfig, env, name, err)
		}
		if err == nil {
			*p = v
		}
	}
	fs.DurationVar(p, name, *p, usage+" ("+env+")")
}
