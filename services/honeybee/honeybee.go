// Package honeybee is the embedded HoneyBee Core: one process that runs a
// NATS server with JetStream on a local data directory and the three
// services (node-gateway, api, ws-proxy) connected to it in process. It
// is what `make run` starts; the same services run as separate processes
// and containers in production.
//
// A Core is built by New and run once by Run, which blocks until its
// context is done and then shuts down in order: the services drain into
// NATS first, then NATS stops and syncs its store.
package honeybee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/honeybee/core/services/api"
	gateway "github.com/honeybee/core/services/node-gateway"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// ErrAlreadyRun is returned by a second call of Run.
var ErrAlreadyRun = errors.New("honeybee: Run called twice")

// natsStartTimeout bounds the embedded server's start, JetStream recovery
// of the data directory included.
const natsStartTimeout = 2 * time.Minute

// Core is the embedded core.
type Core struct {
	cfg     Config
	log     zerolog.Logger
	ns      *server.Server
	gateway *gateway.Gateway
	api     *api.Server
	ws      *wsproxy.Proxy
	ran     atomic.Bool
	// natsFatal receives the embedded server's fatal errors (a port in
	// use, a store it cannot open): its own logger would exit the process.
	natsFatal chan string
}

// service is what the embedded core needs of each service.
type service interface {
	Run(ctx context.Context) error
}

// New validates cfg, creates the data directory and the NATS server (not
// started yet), and creates the three services, which bind their
// listeners.
func New(cfg Config, log zerolog.Logger) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("HONEYBEE_DATA_DIR (-data-dir): %w", err)
	}
	opts := &server.Options{
		ServerName: "honeybee",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		NoSigs:     true,
		MaxPayload: 1 << 20,
		DontListen: cfg.NATSListen == "",
	}
	if cfg.NATSListen != "" {
		opts.Host, opts.Port, _ = hostPort(cfg.NATSListen)
	}
	if cfg.NATSMonitorListen != "" {
		opts.HTTPHost, opts.HTTPPort, _ = hostPort(cfg.NATSMonitorListen)
	}
	// The server binds its ports only when it starts; try them now so that
	// a port in use is reported at once, naming the setting.
	for _, l := range []struct{ addr, setting string }{
		{cfg.NATSListen, "HONEYBEE_NATS_LISTEN (-nats-listen)"},
		{cfg.NATSMonitorListen, "HONEYBEE_NATS_MONITOR_LISTEN (-nats-monitor-listen)"},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.setting, err)
		}
		ln.Close()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(natsLogger{log: log.With().Str("service", "nats").Logger(), fatal: fatal}, false, false, false)

	c := &Core{cfg: cfg, log: log, ns: ns, natsFatal: fatal}
	inProcess := nats.InProcessServer(ns)
	cfg.Gateway.NATSOptions = append(cfg.Gateway.NATSOptions, inProcess)
	cfg.API.NATSOptions = append(cfg.API.NATSOptions, inProcess)
	cfg.WS.NATSOptions = append(cfg.WS.NATSOptions, inProcess)

	if c.gateway, err = gateway.New(cfg.Gateway, log); err != nil {
		return nil, fmt.Errorf("node-gateway: %w", err)
	}
	if c.api, err = api.New(cfg.API, log); err != nil {
		c.abort(c.gateway)
		return nil, fmt.Errorf("api: %w", err)
	}
	if c.ws, err = wsproxy.New(cfg.WS, log); err != nil {
		c.abort(c.gateway, c.api)
		return nil, fmt.Errorf("ws-proxy: %w", err)
	}
	return c, nil
}

// abort releases the listeners of services that were created but will
// not serve: the services have no Close, and Run with a cancelled context
// returns at once after closing them. Then the NATS server is shut down
// (started or not).
func (c *Core) abort(svcs ...service) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range svcs {
		_ = s.Run(ctx)
	}
	c.ns.Shutdown()
	c.ns.WaitForShutdown()
}

// GatewayAddr is the node listener's address.
func (c *Core) GatewayAddr() net.Addr { return c.gateway.Addr() }

// GatewayAdminAddr is the gateway's admin HTTP address, nil when disabled.
func (c *Core) GatewayAdminAddr() net.Addr { return c.gateway.AdminAddr() }

// APIAddr is the api's address.
func (c *Core) APIAddr() net.Addr { return c.api.Addr() }

// WSAddr is the WebSocket proxy's address.
func (c *Core) WSAddr() net.Addr { return c.ws.Addr() }

// NATSURL is the embedded server's client URL once Run has started it;
// empty when it listens in process only.
func (c *Core) NATSURL() string {
	if c.cfg.NATSListen == "" {
		return ""
	}
	return c.ns.ClientURL()
}

// Run starts NATS, then the services, and serves until ctx is done or a
// service fails; then the services drain and NATS shuts down. It returns
// nil on a clean shutdown.
func (c *Core) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return ErrAlreadyRun
	}
	if err := c.startNATS(ctx); err != nil {
		c.abort(c.gateway, c.api, c.ws)
		if ctx.Err() != nil {
			return nil // stopped while NATS was starting
		}
		return err
	}
	if c.cfg.Out != nil {
		c.printSummary(c.cfg.Out)
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for name, s := range map[string]service{"node-gateway": c.gateway, "api": c.api, "ws-proxy": c.ws} {
		wg.Go(func() {
			err := s.Run(sctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				errMu.Unlock()
				stop() // one service down takes the core down
			}
		})
	}
	wg.Wait()
	c.log.Info().Str("service", "honeybee").Msg("services stopped; stopping NATS")
	c.ns.Shutdown()
	c.ns.WaitForShutdown()
	if firstErr != nil {
		return firstErr
	}
	c.log.Info().Str("service", "honeybee").Msg("stopped")
	return nil
}

func (c *Core) startNATS(ctx context.Context) error {
	go c.ns.Start() // returns once the server runs, or after a fatal error
	deadline := time.Now().Add(natsStartTimeout)
	for !c.ns.ReadyForConnections(100 * time.Millisecond) {
		select {
		case msg := <-c.natsFatal:
			return fmt.Errorf("embedded NATS: %s", msg)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded NATS: not ready after %v", natsStartTimeout)
		}
	}
	if !c.ns.JetStreamEnabled() {
		return errors.New("embedded NATS: JetStream did not start (see the nats log lines)")
	}
	return nil
}

// printSummary tells where everything listens and how to point a node at
// the core.
func (c *Core) printSummary(w io.Writer) {
	dir, err := filepath.Abs(c.cfg.DataDir)
	if err != nil {
		dir = c.cfg.DataDir
	}
	gw := c.gateway.Addr().(*net.TCPAddr)
	fmt.Fprintf(w, "HoneyBee Core is running (embedded NATS + node-gateway + api + ws-proxy). Data: %s\n\n", dir)
	fmt.Fprintf(w, "  nodes (Protocol v2, TCP)  %s\n", listenString(gw))
	if a := c.gateway.AdminAddr(); a != nil {
		fmt.Fprintf(w, "  gateway admin             http://%s/healthz  /readyz  /metrics\n", dialString(a))
	}
	fmt.Fprintf(w, "  REST api                  http://%s/api/v1/nodes\n", c.api.Addr())
	fmt.Fprintf(w, "  live WebSocket            ws://%s/stream\n", c.ws.Addr())
	if u := c.NATSURL(); u != "" {
		fmt.Fprintf(w, "  NATS (for the NATS CLI)   %s     e.g. nats -s %s sub 'honeybee.>'\n", u, u)
	}
	fmt.Fprintf(w, "\nPoint a node at this machine, port %d:", gw.Port)
	if ips := hostIPs(gw); len(ips) > 0 {
		fmt.Fprintf(w, " e.g. %s.", joinHostPorts(ips, gw.Port))
	}
	fmt.Fprintf(w, "\nSet the node's core/server address to that host and port (TLS when HONEYBEE_TLS_CERT and HONEYBEE_TLS_KEY are set).\n")
	fmt.Fprintf(w, "Without tokens the api and the WebSocket serve loopback only: set HONEYBEE_TOKENS or HONEYBEE_TOKENS_FILE\n")
	fmt.Fprintf(w, "and HONEYBEE_API_ADDR=:9002 HONEYBEE_WS_ADDR=:9003 to serve other hosts. Ctrl-C stops (data is kept).\n\n")
}

// listenString shows a listener's address, spelling a wildcard bind as
// the port on all interfaces.
func listenString(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		return fmt.Sprintf("0.0.0.0:%d (all interfaces)", t.Port)
	}
	return a.String()
}

// dialString is an address a local client can dial: a wildcard bind is
// reached on loopback.
func dialString(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		return fmt.Sprintf("127.0.0.1:%d", t.Port)
	}
	return a.String()
}

// hostIPs lists the addresses nodes can use to reach the listener: the
// listener's own when it is bound to one address, else this host's
// non-loopback unicast addresses.
func hostIPs(a *net.TCPAddr) []net.IP {
	if !a.IP.IsUnspecified() {
		return []net.IP{a.IP}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.IsGlobalUnicast() && n.IP.To4() != nil {
			ips = append(ips, n.IP)
		}
	}
	if len(ips) == 0 {
		ips = append(ips, net.IPv4(127, 0, 0, 1))
	}
	return ips
}

func joinHostPorts(ips []net.IP, port int) string {
	s := ""
	for i, ip := range ips {
		if i > 0 {
			s += " or "
		}
		s += net.JoinHostPort(ip.String(), fmt.Sprint(port))
	}
	return s
}

// natsLogger sends the embedded server's log to zerolog, and its fatal
// errors to the core, which stops (the server's own logger would exit).
type natsLogger struct {
	log   zerolog.Logger
	fatal chan<- string
}

func (l natsLogger) Noticef(format string, v ...any) { l.log.Info().Msgf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Msg(msg)
	select {
	case l.fatal <- msg:
	default: // one is enough
	}
}
func (l natsLogger) Errorf(format string, v ...any) { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Trace().Msgf(format, v...) }
