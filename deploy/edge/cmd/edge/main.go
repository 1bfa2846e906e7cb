// Command edge is the HoneyBee edge proxy: one host port in front of every
// replica of a scaled service (ws-proxy under docker compose --scale).
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/honeybee/core/deploy/edge"
	"github.com/rs/zerolog"
)

func main() {
	cfg := edge.DefaultConfig()
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	level, err := zerolog.ParseLevel(os.Getenv("HONEYBEE_LOG_LEVEL"))
	if err != nil || level == zerolog.NoLevel {
		level = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p, err := edge.New(cfg, log)
	if err == nil {
		err = p.Run(ctx)
	}
	if err != nil {
		log.Error().Err(err).Msg("edge proxy failed")
		os.Exit(1)
	}
}
