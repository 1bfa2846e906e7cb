package gateway

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/nats-io/nats.go"
)

// Config is everything the gateway can be told. Build one with
// DefaultConfig, adjust it (or RegisterFlags and parse), then pass it to New.
type Config struct {
	// Listen is the TCP address nodes connect to (HONEYBEE_GATEWAY_LISTEN, -listen).
	Listen string
	// AdminListen is the HTTP address of /healthz, /readyz and /metrics
	// (HONEYBEE_GATEWAY_ADMIN_LISTEN, -admin-listen); empty disables it.
	AdminListen string

	// TLSCertFile and TLSKeyFile are PEM files of the server certificate
	// and key (HONEYBEE_TLS_CERT, -tls-cert; HONEYBEE_TLS_KEY, -tls-key).
	// When both are set the node port speaks TLS 1.3 only.
	TLSCertFile string
	TLSKeyFile  string
	// TLSClientCAFile is a PEM bundle of the CAs that sign node
	// certificates (HONEYBEE_TLS_CLIENT_CA, -tls-client-ca). When set,
	// every node must present a certificate signed by one of them
	// (mutual TLS). Needs TLSCertFile and TLSKeyFile.
	TLSClientCAFile string

	// RegistrationTimeout bounds the time from accepting a connection
	// (TLS handshake included) to receiving its NodeRegistration
	// (HONEYBEE_REGISTRATION_TIMEOUT, -registration-timeout).
	RegistrationTimeout time.Duration
	// IdleTimeout closes a registered node that sent no complete message
	// for this long, recording it disconnected with reason "timeout"
	// (HONEYBEE_IDLE_TIMEOUT, -idle-timeout). Nodes send a status
	// heartbeat about every 30 s.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a node (acks and commands)
	// (HONEYBEE_WRITE_TIMEOUT, -write-timeout).
	WriteTimeout time.Duration
	// WriteQueue is how many acks and commands may wait to be written to
	// one node (HONEYBEE_WRITE_QUEUE, -write-queue); a command finding it
	// full is refused.
	WriteQueue int

	// MaxMessageSize is the largest envelope accepted, in bytes
	// (HONEYBEE_MAX_MESSAGE_SIZE, -max-message-size). A longer message
	// disconnects the node (reason "protocol"): the stream cannot be
	// trusted any more.
	MaxMessageSize int
	// MaxDepth is the deepest JSON nesting accepted in a message
	// (HONEYBEE_MAX_DEPTH, -max-depth); deeper messages are bad messages.
	MaxDepth int
	// BadMessageLimit is how many bad messages (not JSON, invalid UTF-8,
	// not an envelope, unknown variant, missing field, ...) a node may
	// send within BadMessageWindow; one more disconnects it with reason
	// "protocol" (HONEYBEE_BAD_MESSAGE_LIMIT, -bad-message-limit).
	BadMessageLimit int
	// BadMessageWindow is the sliding window of BadMessageLimit
	// (HONEYBEE_BAD_MESSAGE_WINDOW, -bad-message-window).
	BadMessageWindow time.Duration
	// MaxUnackedBytes bounds the attack events (encoded bytes) published
	// to JetStream and not yet acknowledged, across all nodes
	// (HONEYBEE_MAX_UNACKED_BYTES, -max-unacked-bytes). When the window is
	// full, sessions stop reading their sockets (TCP backpressure) until
	// acknowledgements free room; nothing is dropped.
	MaxUnackedBytes int64
	// MaxConnections caps simultaneous node connections; 0 means no cap
	// (HONEYBEE_MAX_CONNECTIONS, -max-connections). Connections beyond it
	// are closed at once.
	MaxConnections int
	// LastSeenInterval throttles writes of a node's last_seen time to the
	// nodes bucket (HONEYBEE_LAST_SEEN_INTERVAL, -last-seen-interval).
	LastSeenInterval time.Duration

	// TOTPMode is off, tofu or enrolled (HONEYBEE_TOTP_MODE, -totp-mode).
	TOTPMode string
	// TOTPEnrollFile, when set, is loaded into the TOTP bucket at start:
	// one "node_name secret" per line, # comments
	// (HONEYBEE_TOTP_ENROLL_FILE, -totp-enroll-file).
	TOTPEnrollFile string

	// GatewayID names this gateway in node records and the gateways bucket
	// (HONEYBEE_GATEWAY_ID, -gateway-id). Default: the host name. Two
	// gateways running at once must not share it.
	GatewayID string
	// Prefix is the bus prefix of every subject, stream and bucket
	// (HONEYBEE_PREFIX, -prefix).
	Prefix string

	// NATSURL is the NATS server URL, or a comma-separated list
	// (HONEYBEE_NATS_URL, -nats-url).
	NATSURL string
	// NATSToken authenticates to NATS with a token (HONEYBEE_NATS_TOKEN,
	// or HONEYBEE_NATS_TOKEN_FILE naming a file that holds it; -nats-token).
	NATSToken string
	// NATSCredsFile is a NATS credentials (.creds) file
	// (HONEYBEE_NATS_CREDS, -nats-creds).
	NATSCredsFile string
	// NATSOptions are extra options for the NATS connection (not a flag);
	// the embedded core passes nats.InProcessServer.
	NATSOptions []nats.Option

	// StreamMaxAge is how long attack events are kept; 0 keeps them until
	// StreamMaxBytes evicts them (HONEYBEE_STREAM_MAX_AGE, -stream-max-age).
	StreamMaxAge time.Duration
	// StreamMaxBytes bounds the events stream; -1 is unbounded
	// (HONEYBEE_STREAM_MAX_BYTES, -stream-max-bytes). The oldest events go first.
	StreamMaxBytes int64
	// StreamReplicas is the events stream's replica count, 1 to 5
	// (HONEYBEE_STREAM_REPLICAS, -stream-replicas).
	StreamReplicas int
	// KVReplicas is the replica count of every key-value bucket, 1 to 5
	// (HONEYBEE_KV_REPLICAS, -kv-replicas).
	KVReplicas int

	// DrainTimeout bounds the shutdown: flushing pending events and state
	// to NATS and closing node sockets (HONEYBEE_DRAIN_TIMEOUT, -drain-timeout).
	DrainTimeout time.Duration

	// envErrs collects environment values RegisterFlags could not parse;
	// Validate reports them.
	envErrs []error
}

// Defaults.
const (
	DefaultListen              = ":9001"
	DefaultAdminListen         = ":9101"
	DefaultRegistrationTimeout = 10 * time.Second
	DefaultIdleTimeout         = 90 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultWriteQueue          = 64
	DefaultBadMessageLimit     = 20
	DefaultBadMessageWindow    = time.Minute
	DefaultMaxUnackedBytes     = 8 << 20
	DefaultLastSeenInterval    = 10 * time.Second
	DefaultNATSURL             = "nats://127.0.0.1:4222"
	DefaultStreamMaxAge        = 30 * 24 * time.Hour
	DefaultStreamMaxBytes      = 10 << 30
	DefaultDrainTimeout        = 15 * time.Second
	// MaxMessageSizeLimit is the largest MaxMessageSize Validate allows.
	MaxMessageSizeLimit = 16 << 20
)

// DefaultConfig returns the defaults (TOTP off, plain TCP).
func DefaultConfig() Config {
	host, _ := os.Hostname()
	host = sanitizeID(host)
	if host == "" {
		host = "gateway"
	}
	return Config{
		Listen:              DefaultListen,
		AdminListen:         DefaultAdminListen,
		RegistrationTimeout: DefaultRegistrationTimeout,
		IdleTimeout:         DefaultIdleTimeout,
		WriteTimeout:        DefaultWriteTimeout,
		WriteQueue:          DefaultWriteQueue,
		MaxMessageSize:      proto.DefaultMaxSize,
		MaxDepth:            proto.DefaultMaxDepth,
		BadMessageLimit:     DefaultBadMessageLimit,
		BadMessageWindow:    DefaultBadMessageWindow,
		MaxUnackedBytes:     DefaultMaxUnackedBytes,
		LastSeenInterval:    DefaultLastSeenInterval,
		TOTPMode:            string(totp.Off),
		GatewayID:           host,
		Prefix:              bus.DefaultPrefix,
		NATSURL:             DefaultNATSURL,
		StreamMaxAge:        DefaultStreamMaxAge,
		StreamMaxBytes:      DefaultStreamMaxBytes,
		StreamReplicas:      1,
		KVReplicas:          1,
		DrainTimeout:        DefaultDrainTimeout,
	}
}

// RegisterFlags registers one flag per setting on fs. Each flag's default
// is the field's current value, or its HONEYBEE_* environment twin when
// that is set (secrets also from *_FILE). An environment value that does
// not parse is reported by Validate, naming the variable.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	r := registrar{fs: fs, c: c}
	r.str(&c.Listen, "listen", "HONEYBEE_GATEWAY_LISTEN", "TCP address nodes connect to")
	r.str(&c.AdminListen, "admin-listen", "HONEYBEE_GATEWAY_ADMIN_LISTEN", "HTTP address of /healthz, /readyz and /metrics (empty disables)")
	r.str(&c.TLSCertFile, "tls-cert", "HONEYBEE_TLS_CERT", "PEM server certificate file; with -tls-key enables TLS 1.3")
	r.str(&c.TLSKeyFile, "tls-key", "HONEYBEE_TLS_KEY", "PEM server key file")
	r.str(&c.TLSClientCAFile, "tls-client-ca", "HONEYBEE_TLS_CLIENT_CA", "PEM CA bundle; when set, nodes must present a certificate it signed (mutual TLS)")
	r.dur(&c.RegistrationTimeout, "registration-timeout", "HONEYBEE_REGISTRATION_TIMEOUT", "time allowed from connect to NodeRegistration")
	r.dur(&c.IdleTimeout, "idle-timeout", "HONEYBEE_IDLE_TIMEOUT", "close a node that sends nothing for this long")
	r.dur(&c.WriteTimeout, "write-timeout", "HONEYBEE_WRITE_TIMEOUT", "deadline of each write to a node")
	r.int(&c.WriteQueue, "write-queue", "HONEYBEE_WRITE_QUEUE", "acks and commands that may wait to be written to one node")
	r.int(&c.MaxMessageSize, "max-message-size", "HONEYBEE_MAX_MESSAGE_SIZE", "largest accepted message in bytes; longer disconnects the node")
	r.int(&c.MaxDepth, "max-depth", "HONEYBEE_MAX_DEPTH", "deepest accepted JSON nesting")
	r.int(&c.BadMessageLimit, "bad-message-limit", "HONEYBEE_BAD_MESSAGE_LIMIT", "bad messages a node may send per -bad-message-window before it is disconnected")
	r.dur(&c.BadMessageWindow, "bad-message-window", "HONEYBEE_BAD_MESSAGE_WINDOW", "window of -bad-message-limit")
	r.int64(&c.MaxUnackedBytes, "max-unacked-bytes", "HONEYBEE_MAX_UNACKED_BYTES", "bytes of events awaiting JetStream acks before nodes are no longer read (backpressure)")
	r.int(&c.MaxConnections, "max-connections", "HONEYBEE_MAX_CONNECTIONS", "simultaneous node connections (0: no cap)")
	r.dur(&c.LastSeenInterval, "last-seen-interval", "HONEYBEE_LAST_SEEN_INTERVAL", "how often a node's last_seen is written at most")
	r.str(&c.TOTPMode, "totp-mode", "HONEYBEE_TOTP_MODE", "node authentication: off, tofu or enrolled")
	r.str(&c.TOTPEnrollFile, "totp-enroll-file", "HONEYBEE_TOTP_ENROLL_FILE", "file of 'node_name secret' lines loaded into the TOTP bucket at start")
	r.str(&c.GatewayID, "gateway-id", "HONEYBEE_GATEWAY_ID", "unique name of this gateway (default: host name)")
	r.str(&c.Prefix, "prefix", "HONEYBEE_PREFIX", "bus prefix of subjects, stream and buckets")
	r.str(&c.NATSURL, "nats-url", "HONEYBEE_NATS_URL", "NATS server URL(s), comma-separated")
	r.secret(&c.NATSToken, "nats-token", "HONEYBEE_NATS_TOKEN", "NATS auth token (or HONEYBEE_NATS_TOKEN_FILE)")
	r.str(&c.NATSCredsFile, "nats-creds", "HONEYBEE_NATS_CREDS", "NATS credentials file")
	r.dur(&c.StreamMaxAge, "stream-max-age", "HONEYBEE_STREAM_MAX_AGE", "keep attack events this long (0: until -stream-max-bytes)")
	r.int64(&c.StreamMaxBytes, "stream-max-bytes", "HONEYBEE_STREAM_MAX_BYTES", "size bound of the events stream (-1: none)")
	r.int(&c.StreamReplicas, "stream-replicas", "HONEYBEE_STREAM_REPLICAS", "events stream replicas")
	r.int(&c.KVReplicas, "kv-replicas", "HONEYBEE_KV_REPLICAS", "key-value bucket replicas")
	r.dur(&c.DrainTimeout, "drain-timeout", "HONEYBEE_DRAIN_TIMEOUT", "time allowed to flush and close at shutdown")
}

// registrar binds flags whose defaults come from environment twins.
type registrar struct {
	fs *flag.FlagSet
	c  *Config
}

func (r registrar) env(env string, parse func(string) error) {
	v, ok := os.LookupEnv(env)
	if !ok {
		return
	}
	if err := parse(v); err != nil {
		r.c.envErrs = append(r.c.envErrs, fmt.Errorf("%s: %w", env, err))
	}
}

func (r registrar) str(p *string, name, env, usage string) {
	r.env(env, func(v string) error { *p = v; return nil })
	r.fs.StringVar(p, name, *p, usage+" (env "+env+")")
}

// secret is a string also read from the file named by env+"_FILE".
func (r registrar) secret(p *string, name, env, usage string) {
	fileEnv := env + "_FILE"
	_, direct := os.LookupEnv(env)
	if path, ok := os.LookupEnv(fileEnv); ok {
		if direct {
			r.c.envErrs = append(r.c.envErrs, fmt.Errorf("%s and %s: set only one", env, fileEnv))
		}
		b, err := os.ReadFile(path)
		if err != nil {
			r.c.envErrs = append(r.c.envErrs, fmt.Errorf("%s: %w", fileEnv, err))
		} else {
			*p = strings.TrimRight(string(b), "\r\n")
		}
	}
	r.env(env, func(v string) error { *p = v; return nil })
	// The default is not shown in -help: it is a secret.
	r.fs.Func(name, usage+" (env "+env+")", func(v string) error { *p = v; return nil })
}

func (r registrar) dur(p *time.Duration, name, env, usage string) {
	r.env(env, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid duration %q", v)
		}
		*p = d
		return nil
	})
	r.fs.DurationVar(p, name, *p, usage+" (env "+env+")")
}

func (r registrar) int(p *int, name, env, usage string) {
	r.env(env, func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = n
		return nil
	})
	r.fs.IntVar(p, name, *p, usage+" (env "+env+")")
}

func (r registrar) int64(p *int64, name, env, usage string) {
	r.env(env, func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = n
		return nil
	})
	r.fs.Int64Var(p, name, *p, usage+" (env "+env+")")
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate checks every setting and returns an error naming each bad one,
// e.g. `HONEYBEE_IDLE_TIMEOUT (-idle-timeout): must be > 0`.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s (-%s): %s", ErrInvalidConfig, env, flagName, fmt.Sprintf(format, args...)))
	}
	for _, err := range c.envErrs {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("HONEYBEE_GATEWAY_LISTEN", "listen", "want host:port, got %q", c.Listen)
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			bad("HONEYBEE_GATEWAY_ADMIN_LISTEN", "admin-listen", "want host:port or empty, got %q", c.AdminListen)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("HONEYBEE_TLS_CERT", "tls-cert", "set both a certificate and a key (HONEYBEE_TLS_KEY), or neither")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		bad("HONEYBEE_TLS_CLIENT_CA", "tls-client-ca", "mutual TLS needs a server certificate and key (HONEYBEE_TLS_CERT, HONEYBEE_TLS_KEY)")
	}
	positive := func(d time.Duration, env, flagName string) {
		if d <= 0 {
			bad(env, flagName, "must be > 0")
		}
	}
	positive(c.RegistrationTimeout, "HONEYBEE_REGISTRATION_TIMEOUT", "registration-timeout")
	positive(c.IdleTimeout, "HONEYBEE_IDLE_TIMEOUT", "idle-timeout")
	positive(c.WriteTimeout, "HONEYBEE_WRITE_TIMEOUT", "write-timeout")
	positive(c.BadMessageWindow, "HONEYBEE_BAD_MESSAGE_WINDOW", "bad-message-window")
	positive(c.LastSeenInterval, "HONEYBEE_LAST_SEEN_INTERVAL", "last-seen-interval")
	positive(c.DrainTimeout, "HONEYBEE_DRAIN_TIMEOUT", "drain-timeout")
	if c.WriteQueue < 1 {
		bad("HONEYBEE_WRITE_QUEUE", "write-queue", "must be >= 1")
	}
	if c.MaxMessageSize < 256 || c.MaxMessageSize > MaxMessageSizeLimit {
		bad("HONEYBEE_MAX_MESSAGE_SIZE", "max-message-size", "must be between 256 and %d bytes", MaxMessageSizeLimit)
	}
	if c.MaxDepth < 2 || c.MaxDepth > 1000 {
		bad("HONEYBEE_MAX_DEPTH", "max-depth", "must be between 2 and 1000")
	}
	if c.BadMessageLimit < 0 {
		bad("HONEYBEE_BAD_MESSAGE_LIMIT", "bad-message-limit", "must be >= 0")
	}
	if c.MaxUnackedBytes < int64(c.MaxMessageSize) {
		bad("HONEYBEE_MAX_UNACKED_BYTES", "max-unacked-bytes", "must be at least the maximum message size (%d)", c.MaxMessageSize)
	}
	if c.MaxConnections < 0 {
		bad("HONEYBEE_MAX_CONNECTIONS", "max-connections", "must be >= 0")
	}
	if _, err := totp.ParseMode(c.TOTPMode); err != nil {
		bad("HONEYBEE_TOTP_MODE", "totp-mode", "want off, tofu or enrolled, got %q", c.TOTPMode)
	}
	if c.GatewayID == "" || len(c.GatewayID) > 64 || bus.EscapeToken(c.GatewayID) != c.GatewayID {
		bad("HONEYBEE_GATEWAY_ID", "gateway-id", "want 1 to 64 letters, digits, '-' and '_', got %q", c.GatewayID)
	}
	if _, err := bus.New(c.Prefix); err != nil || c.Prefix == "" {
		bad("HONEYBEE_PREFIX", "prefix", "want letters, digits, '-' and '_', got %q", c.Prefix)
	}
	if strings.TrimSpace(c.NATSURL) == "" {
		bad("HONEYBEE_NATS_URL", "nats-url", "must not be empty")
	}
	if c.StreamMaxAge < 0 || c.StreamMaxAge > 0 && c.StreamMaxAge < time.Minute {
		bad("HONEYBEE_STREAM_MAX_AGE", "stream-max-age", "must be 0 (no age limit) or at least 1m")
	}
	if c.StreamMaxBytes == 0 || c.StreamMaxBytes < -1 {
		bad("HONEYBEE_STREAM_MAX_BYTES", "stream-max-bytes", "must be > 0, or -1 for no bound")
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("HONEYBEE_STREAM_REPLICAS", "stream-replicas", "must be between 1 and 5")
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		bad("HONEYBEE_KV_REPLICAS", "kv-replicas", "must be between 1 and 5")
	}
	return errors.Join(errs...)
}

// sanitizeID turns a host name into a gateway id: every byte other than a
// letter, digit, '-' or '_' becomes '-'.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if bus.EscapeToken(string(c)) != string(c) {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
