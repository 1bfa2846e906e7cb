// Command honeybee runs the whole HoneyBee Core in one process: an
// embedded NATS server with JetStream on a local data directory, and the
// node-gateway, api and ws-proxy services. `make run` starts it.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/honeybee/core/services/honeybee"
	"github.com/rs/zerolog"
)

func main() {
	cfg := honeybee.DefaultConfig()
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	cfg.Out = os.Stdout
	level, err := zerolog.ParseLevel(os.Getenv("HONEYBEE_LOG_LEVEL"))
	if err != nil || level == zerolog.NoLevel {
		level = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	core, err := honeybee.New(cfg, log)
	if err == nil {
		err = core.Run(ctx)
	}
	if err != nil {
		log.Error().Err(err).Str("service", "honeybee").Msg("exit")
		stop()
		os.Exit(1)
	}
}
