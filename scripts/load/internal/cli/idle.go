package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/honeybee/core/scripts/load/internal/drive"
	"github.com/honeybee/core/scripts/load/internal/idle"
	"github.com/honeybee/core/scripts/load/internal/procstat"
)

// idleArgs are the settings shared by idle-nodes and idle-ws.
type idleArgs struct {
	cfg    idle.Config
	target string
	settle time.Duration
	json   bool
	token  string
}

func (a *idleArgs) register(fs *flag.FlagSet, kind idle.Kind) {
	a.cfg.Kind = kind
	switch kind {
	case idle.Nodes:
		fs.StringVar(&a.cfg.GatewayAddr, "gateway", "127.0.0.1:9001", "gateway node address host:port")
		fs.DurationVar(&a.cfg.Heartbeat, "heartbeat", 30*time.Second, "node status interval (keep below the gateway's idle timeout)")
		fs.IntVar(&a.cfg.Count, "n", 19000, "idle node connections")
		fs.StringVar(&a.target, "target", "node-gateway", "process whose RSS is measured: name or name=pid")
	case idle.WS:
		fs.StringVar(&a.cfg.WSURL, "ws", "ws://127.0.0.1:9003/stream", "ws-proxy stream URL")
		fs.IntVar(&a.cfg.Count, "n", 10000, "idle WebSocket clients")
		fs.StringVar(&a.target, "target", "ws-proxy", "process whose RSS is measured: name or name=pid")
		fs.StringVar(&a.token, "token", os.Getenv("HONEYBEE_LOAD_TOKEN"), "bearer token for ws-proxy (HONEYBEE_LOAD_TOKEN)")
	}
	fs.IntVar(&a.cfg.Procs, "loaders", 0, "processes holding the connections (0: one per 10,000)")
	fs.IntVar(&a.cfg.SrcIPs, "src-ips", 8, "spread connections over 127.0.0.1..127.0.0.N (loopback only)")
	fs.IntVar(&a.cfg.DialParallel, "dial-parallel", 128, "connections opened at the same time")
	fs.DurationVar(&a.settle, "settle", 10*time.Second, "wait after the last connection before sampling")
	fs.BoolVar(&a.json, "json", false, "print the result as JSON")
}

func (a *idleArgs) addr() string {
	if a.cfg.Kind == idle.Nodes {
		return a.cfg.GatewayAddr
	}
	s := a.cfg.WSURL
	if i := strings.Index(s, "//"); i >= 0 {
		s = s[i+2:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

func sourceIPs(addr string, n int) func(int) net.IP {
	return func(i int) net.IP { return drive.SourceIP(addr, n, i) }
}

// MeasureIdle runs an idle measurement, spreading connections over child
// processes of this executable.
func MeasureIdle(ctx context.Context, cfg idle.Config, token, target string, settle time.Duration, log io.Writer) (idle.Result, error) {
	procs, err := procstat.Resolve([]string{target})
	if err != nil {
		return idle.Result{}, fmt.Errorf("-target: %w", err)
	}
	if cfg.Procs <= 0 {
		cfg.Procs = (cfg.Count + 9999) / 10000
	}
	a := idleArgs{cfg: cfg}
	cfg.SourceIP = sourceIPs(a.addr(), cfg.SrcIPs)
	cfg.WSToken = token
	exe, err := os.Executable()
	if err != nil {
		return idle.Result{}, err
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		return idle.Result{}, err
	}
	spawn := func(n, offset int) *exec.Cmd {
		cmd := exec.CommandContext(ctx, exe, "idle-child", "-config", string(conf), "-n", strconv.Itoa(n), "-offset", strconv.Itoa(offset))
		cmd.Env = append(os.Environ(), "HONEYBEE_LOAD_TOKEN="+token)
		cmd.Stderr = log
		return cmd
	}
	return idle.Measure(ctx, cfg, procs[0], settle, spawn, log)
}

func cmdIdle(ctx context.Context, kind idle.Kind, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("idle-"+string(kind), flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a idleArgs
	a.register(fs, kind)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if lim := NoFile(); a.cfg.Procs == 1 && uint64(a.cfg.Count)+64 > lim {
		return fmt.Errorf("-n %d in one process exceeds the open files limit %d: use -loaders", a.cfg.Count, lim)
	}
	res, err := MeasureIdle(ctx, a.cfg, a.token, a.target, a.settle, stderr)
	if err != nil && res.PID == 0 {
		return err
	}
	if a.json {
		if jerr := writeJSON(stdout, res); jerr != nil {
			return jerr
		}
		return err
	}
	WriteIdle(stdout, res)
	return err
}

// WriteIdle writes an idle result as a short table.
func WriteIdle(w io.Writer, r idle.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "idle %s\t%d/%d connected over %d processes in %.1fs, %d failed, %d dropped while held\n",
		r.Kind, r.Connected, r.Count, r.Procs, r.ConnectSecs, r.Failed, r.Dropped)
	fmt.Fprintf(tw, "%s (pid %d)\tRSS %.1f MiB -> %.1f MiB (peak %.1f MiB), %d threads\n",
		r.Target, r.PID, mib(r.RSSBefore), mib(r.RSSAfter), mib(r.PeakRSS), r.Threads)
	fmt.Fprintf(tw, "per connection\t%.2f KiB\n", r.PerConn/1024)
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "error\t%s\n", e)
	}
	tw.Flush()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func cmdIdleNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cmdIdle(ctx, idle.Nodes, args, stdout, stderr)
}

func cmdIdleWS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cmdIdle(ctx, idle.WS, args, stdout, stderr)
}

// cmdIdleChild is the hidden holder process of MeasureIdle.
func cmdIdleChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("idle-child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("config", "", "idle.Config as JSON")
	n := fs.Int("n", 0, "connections")
	offset := fs.Int("offset", 0, "number of the first connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg idle.Config
	if err := json.Unmarshal([]byte(*conf), &cfg); err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	cfg.WSToken = os.Getenv("HONEYBEE_LOAD_TOKEN")
	a := idleArgs{cfg: cfg}
	cfg.SourceIP = sourceIPs(a.addr(), cfg.SrcIPs)
	return idle.RunChild(ctx, cfg, *n, *offset, os.Stdin, stdout)
}
