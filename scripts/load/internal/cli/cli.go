// Package cli is the load tool's command line: subcommands, flags, and
// output (a summary table, or JSON with -json). Main is the only entry
// point; it returns the process exit code.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/honeybee/core/scripts/load/internal/drive"
	"github.com/honeybee/core/scripts/load/internal/sim"
)

const usage = `load: load tool and benchmark of HoneyBee Core

usage: load <command> [flags]   (load <command> -h lists its flags)

commands:
  run         simulate nodes sending attack events; subscribers on ws-proxy;
              command round trips through the api; measure all of it
  idle-nodes  hold idle registered node connections; gateway RSS per connection
  idle-ws     hold idle WebSocket clients; ws-proxy RSS per client
  jsbench     raw JetStream async publish rate (the ceiling for ingest)
  bench       the whole benchmark (make bench): builds nothing, starts the
              core from -bin, runs every measurement, prints the table
`

// Main runs the load tool with args (without the program name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	raiseNoFile(stderr)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"run":        cmdRun,
		"idle-nodes": cmdIdleNodes,
		"idle-ws":    cmdIdleWS,
		"idle-child": cmdIdleChild,
		"jsbench":    cmdJSBench,
		"bench":      cmdBench,
	}
	f, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "load: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := f(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "load %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// raiseNoFile raises the soft open-files limit to the hard limit.
func raiseNoFile(stderr io.Writer) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintf(stderr, "load: cannot raise the open files limit: %v\n", err)
		}
	}
}

// NoFile returns the open-files limit of this process.
func NoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// tlsFlags are the node-side TLS settings.
type tlsFlags struct {
	on                 bool
	ca, cert, key, sni string
	insecure           bool
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.on, "tls", false, "connect nodes with TLS")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM CA bundle that signed the gateway's certificate")
	fs.StringVar(&t.cert, "tls-cert", "", "PEM client certificate (mutual TLS)")
	fs.StringVar(&t.key, "tls-key", "", "PEM client key (mutual TLS)")
	fs.StringVar(&t.sni, "tls-server-name", "", "server name to verify (default: the gateway host)")
	fs.BoolVar(&t.insecure, "tls-insecure", false, "do not verify the gateway's certificate")
}

func (t *tlsFlags) config() (*tls.Config, error) {
	if !t.on {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: t.sni, InsecureSkipVerify: t.insecure} //nolint:gosec // opt-in flag for test certificates
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca: no certificate in %s", t.ca)
		}
		c.RootCAs = pool
	}
	if t.cert != "" || t.key != "" {
		cert, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func parseDialects(s string) ([]sim.Dialect, error) {
	var out []sim.Dialect
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		d, err := sim.ParseDialect(name)
		if err != nil {
			return nil, fmt.Errorf("-dialects: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runFlags registers the flags of a drive.Config on fs.
func runFlags(fs *flag.FlagSet, c *drive.Config, tf *tlsFlags, dialects, procs *string) {
	fs.StringVar(&c.GatewayAddr, "gateway", c.GatewayAddr, "gateway node address host:port")
	tf.register(fs)
	fs.StringVar(&c.TOTP, "totp", c.TOTP, "off, enroll (enroll names through the api, send codes) or tofu (keep the issued key)")
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "simulated nodes")
	fs.IntVar(&c.Pots, "pots", c.Pots, "pots per node")
	fs.StringVar(dialects, "dialects", *dialects, "event dialects cycled over the nodes: documented, compact, quirk")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "total attack events per second (0: as fast as the core accepts)")
	fs.BoolVar(&c.NoEvents, "no-events", c.NoEvents, "nodes send no attack events (command round trips only)")
	fs.IntVar(&c.Batch, "batch", c.Batch, "most events a node writes at once")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long nodes send")
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "node status interval")
	fs.IntVar(&c.DialParallel, "dial-parallel", c.DialParallel, "nodes connecting at the same time")
	fs.IntVar(&c.SrcIPs, "src-ips", c.SrcIPs, "spread connections over 127.0.0.1..127.0.0.N (loopback only)")
	fs.IntVar(&c.SendBuffer, "sndbuf", c.SendBuffer, "node socket send buffer in bytes (0: OS default)")
	fs.StringVar(&c.WSURL, "ws", c.WSURL, "ws-proxy stream URL (empty: no subscribers)")
	fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "WebSocket subscribers")
	fs.StringVar(&c.APIURL, "api", c.APIURL, "api base URL")
	fs.IntVar(&c.CmdWorkers, "cmd-workers", c.CmdWorkers, "concurrent command round trips (0: none)")
	fs.DurationVar(&c.CmdPause, "cmd-pause", c.CmdPause, "pause between a worker's commands")
	fs.DurationVar(&c.CmdPoll, "cmd-poll", c.CmdPoll, "polling interval of a command's progress")
	fs.StringVar(&c.NATSURL, "nats", c.NATSURL, "NATS URL to count stored events (empty: skip)")
	fs.BoolVar(&c.PurgeEvents, "purge", c.PurgeEvents, "empty the events stream before the run (it deletes every stored event)")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "bus prefix")
	fs.DurationVar(&c.Drain, "drain", c.Drain, "longest wait for deliveries after sending ends")
	fs.DurationVar(&c.DrainQuiet, "drain-quiet", c.DrainQuiet, "stop waiting when nothing arrived for this long")
	fs.StringVar(procs, "procs", *procs, "core processes to sample: names or name=pid, comma-separated")
	fs.DurationVar(&c.Progress, "progress", c.Progress, "progress line interval (0: none)")
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := drive.DefaultConfig()
	var tf tlsFlags
	dialects, procs := "documented,compact,quirk", ""
	runFlags(fs, &cfg, &tf, &dialects, &procs)
	token := fs.String("token", os.Getenv("HONEYBEE_LOAD_TOKEN"), "bearer token for api and ws-proxy (HONEYBEE_LOAD_TOKEN)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Dialects, err = parseDialects(dialects); err != nil {
		return err
	}
	if cfg.TLS, err = tf.config(); err != nil {
		return err
	}
	cfg.Procs = splitList(procs)
	cfg.APIToken, cfg.WSToken = *token, *token
	res, err := drive.Run(ctx, cfg, stderr)
	if err != nil && res.Started.IsZero() {
		return err
	}
	if *asJSON {
		if jerr := writeJSON(stdout, res); jerr != nil {
			return jerr
		}
	} else if terr := res.WriteText(stdout); terr != nil {
		return terr
	}
	return err
}
