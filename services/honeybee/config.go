package honeybee

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	api "github.com/honeybee/core/services/api"
	gateway "github.com/honeybee/core/services/node-gateway"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

// Config is the embedded core's configuration: its own settings plus each
// service's Config. The services' NATS settings are ignored: they reach
// the embedded server in process.
type Config struct {
	// DataDir holds the JetStream store (events, node and pot state,
	// commands, TOTP secrets); a restart with the same directory keeps
	// them (HONEYBEE_DATA_DIR, -data-dir).
	DataDir string
	// NATSListen is the embedded NATS server's client address, for the
	// NATS CLI and for services run outside this process
	// (HONEYBEE_NATS_LISTEN, -nats-listen). Empty: in-process only. The
	// server has no authentication: keep it on loopback.
	NATSListen string
	// NATSMonitorListen is the NATS monitoring HTTP address (/varz, /jsz,
	// /healthz) (HONEYBEE_NATS_MONITOR_LISTEN, -nats-monitor-listen);
	// empty disables it.
	NATSMonitorListen string

	// Gateway, API and WS are the services' settings; their flags are
	// registered with the prefixes "gateway.", "api." and "ws.", and each
	// reads its own HONEYBEE_* environment twins.
	Gateway gateway.Config
	API     api.Config
	WS      wsproxy.Config

	// Out receives the start-up summary (where everything listens and how
	// to point a node at it); nil prints nothing. Not a flag.
	Out io.Writer
}

// Defaults of the embedded core's own settings.
const (
	DefaultDataDir    = "./data"
	DefaultNATSListen = "127.0.0.1:4222"
)

// DefaultConfig returns the defaults: nodes on :9001, the gateway's admin
// HTTP on :9101, the api on :9002 and the WebSocket stream on
// 127.0.0.1:9003 (both loopback-only until tokens are configured), NATS
// on 127.0.0.1:4222, data in ./data.
func DefaultConfig() Config {
	return Config{
		DataDir:    DefaultDataDir,
		NATSListen: DefaultNATSListen,
		Gateway:    gateway.DefaultConfig(),
		API:        api.DefaultConfig(),
		WS:         wsproxy.DefaultConfig(),
	}
}

// ErrInvalidConfig is wrapped by Validate's errors, which name the setting.
var ErrInvalidConfig = errors.New("invalid configuration")

// RegisterFlags registers the embedded core's flags and, under a prefix,
// every service's flags. Defaults come from the HONEYBEE_* environment
// twins when set.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	str := func(p *string, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" ("+env+")")
	}
	str(&c.DataDir, "data-dir", "HONEYBEE_DATA_DIR", "directory of the JetStream store (events and state)")
	str(&c.NATSListen, "nats-listen", "HONEYBEE_NATS_LISTEN", "embedded NATS client address for the NATS CLI (empty: in-process only)")
	str(&c.NATSMonitorListen, "nats-monitor-listen", "HONEYBEE_NATS_MONITOR_LISTEN", "embedded NATS monitoring HTTP address (empty: off)")

	sub := func(prefix string, register func(*flag.FlagSet)) {
		s := flag.NewFlagSet(prefix, flag.ContinueOnError)
		register(s)
		s.VisitAll(func(f *flag.Flag) {
			switch f.Name {
			case "nats-url", "nats-token", "nats-creds":
				return // the services reach the embedded server in process
			case "prefix", "tokens", "tokens-file":
				return // shared: registered once below
			}
			fs.Var(f.Value, prefix+"."+f.Name, f.Usage)
		})
	}
	sub("gateway", c.Gateway.RegisterFlags)
	sub("api", c.API.RegisterFlags)
	sub("ws", c.WS.RegisterFlags)
	// The services read the same environment variables for these; one
	// flag sets them all.
	fs.Var(shared{&c.Gateway.Prefix, &c.API.Prefix, &c.WS.Prefix}, "prefix", "bus prefix of subjects, stream and buckets (HONEYBEE_PREFIX)")
	fs.Var(shared{&c.API.TokensFile, &c.WS.TokensFile}, "tokens-file", "api and WebSocket tokens: a file with one role:token per line (HONEYBEE_TOKENS_FILE)")
	fs.Var(secretShared{&c.API.Tokens, &c.WS.Tokens}, "tokens", "api and WebSocket tokens: comma-separated role:token pairs (HONEYBEE_TOKENS)")
}

// shared is a flag that sets the same setting of several services.
type shared []*string

func (s shared) String() string {
	if len(s) == 0 || s[0] == nil {
		return ""
	}
	return *s[0]
}

func (s shared) Set(v string) error {
	for _, p := range s {
		*p = v
	}
	return nil
}

// secretShared is a shared flag whose value is never printed.
type secretShared []*string

func (s secretShared) String() string { return "" }

func (s secretShared) Set(v string) error { return shared(s).Set(v) }

// Validate reports the first bad setting of the embedded core itself; the
// services validate their own in New.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: HONEYBEE_DATA_DIR (-data-dir): must not be empty", ErrInvalidConfig)
	}
	if c.NATSListen != "" {
		if _, _, err := hostPort(c.NATSListen); err != nil {
			return fmt.Errorf("%w: HONEYBEE_NATS_LISTEN (-nats-listen): %v", ErrInvalidConfig, err)
		}
	}
	if c.NATSMonitorListen != "" {
		if _, _, err := hostPort(c.NATSMonitorListen); err != nil {
			return fmt.Errorf("%w: HONEYBEE_NATS_MONITOR_LISTEN (-nats-monitor-listen): %v", ErrInvalidConfig, err)
		}
	}
	return nil
}

// hostPort splits a listen address; port 0 means any free port, which
// nats-server spells -1.
func hostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}
