package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/honeybee/core/scripts/load/internal/bench"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := bench.Config{Ports: bench.DefaultPorts, MeasureIdle: MeasureIdle, Log: stderr}
	fs.StringVar(&cfg.Bin, "bin", "bin/bench", "directory of the binaries: honeybee, nats-server, node-gateway, api, ws-proxy")
	fs.StringVar(&cfg.WorkDir, "workdir", "", "data and logs directory (default: a temporary one, removed)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary work directory")
	modes := fs.String("modes", "embedded,separate", "modes to run, in order")
	fs.BoolVar(&cfg.Quick, "quick", false, "short phases and small counts (smoke test)")
	fs.IntVar(&cfg.IdleNodes, "idle-nodes", 19000, "idle node connections (separate mode; 0 skips)")
	fs.IntVar(&cfg.IdleWS, "idle-ws", 10000, "idle WebSocket clients (separate mode; 0 skips)")
	fs.IntVar(&cfg.FanoutSubs, "fanout-subs", 100, "subscribers of the fan-out steps (separate mode; 0 skips)")
	offset := fs.Int("port-offset", 0, "added to every port (9001, 9101, 9002, 9003, 4222)")
	fs.DurationVar(&cfg.Timeout, "timeout", 14*time.Minute, "bound of the whole run")
	fs.StringVar(&cfg.PerfDir, "perf", "", "record perf CPU profiles of the core processes during ingest and latency into this directory")
	out := fs.String("out", "", "also write the JSON report to this file")
	asJSON := fs.Bool("json", false, "print the JSON report instead of the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Modes = splitList(*modes)
	for _, m := range cfg.Modes {
		if m != bench.Embedded && m != bench.Separate {
			return fmt.Errorf("-modes: unknown mode %q", m)
		}
	}
	if cfg.Quick {
		if !flagSet(fs, "idle-nodes") {
			cfg.IdleNodes = 500
		}
		if !flagSet(fs, "idle-ws") {
			cfg.IdleWS = 300
		}
		if !flagSet(fs, "fanout-subs") {
			cfg.FanoutSubs = 10
		}
	}
	p := &cfg.Ports
	p.Gateway += *offset
	p.GatewayAdmin += *offset
	p.API += *offset
	p.WS += *offset
	p.NATS += *offset
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Machine.NoFile = NoFile()
	rep.Commands = []string{"load " + strings.Join(append([]string{"bench"}, args...), " ")}
	if *out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return rep.WriteTable(stdout)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
