// Command api serves HoneyBee Core's REST API (see services/api/README.md).
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/honeybee/core/services/api"
	"github.com/rs/zerolog"
)

func main() {
	cfg := api.DefaultConfig()
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	if lvl, err := zerolog.ParseLevel(os.Getenv("HONEYBEE_LOG_LEVEL")); err == nil && lvl != zerolog.NoLevel {
		log = log.Level(lvl)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := api.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("api: bad configuration")
		os.Exit(2)
	}
	if err := srv.Run(ctx); err != nil {
		log.Error().Err(err).Msg("api stopped")
		os.Exit(1)
	}
}
