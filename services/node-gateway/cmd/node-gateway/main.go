// Command node-gateway serves HoneyBee Protocol v2 nodes and bridges them
// to NATS. Every flag has a HONEYBEE_* environment twin; see the README.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	gateway "github.com/honeybee/core/services/node-gateway"
	"github.com/rs/zerolog"
)

func main() {
	cfg := gateway.DefaultConfig()
	fs := flag.NewFlagSet("node-gateway", flag.ExitOnError)
	cfg.RegisterFlags(fs)
	_ = fs.Parse(os.Args[1:])

	level, err := zerolog.ParseLevel(os.Getenv("HONEYBEE_LOG_LEVEL"))
	if err != nil || level == zerolog.NoLevel {
		level = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, err := gateway.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Str("service", gateway.ServiceName).Msg("cannot start")
		os.Exit(2)
	}
	if err := g.Run(ctx); err != nil {
		log.Error().Err(err).Str("service", gateway.ServiceName).Msg("stopped with an error")
		os.Exit(1)
	}
}
