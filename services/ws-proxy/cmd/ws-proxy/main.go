// Command ws-proxy serves HoneyBee's live WebSocket stream and backend
// protocol; see services/ws-proxy/README.md.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

func main() {
	cfg := wsproxy.DefaultConfig()
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	log := zerolog.New(os.Stderr).With().Timestamp().Logger().Level(logLevel())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p, err := wsproxy.New(cfg, log)
	if err == nil {
		err = p.Run(ctx)
	}
	if err != nil {
		log.Error().Err(err).Str("service", "ws-proxy").Msg("exit")
		stop()
		os.Exit(1)
	}
}

func logLevel() zerolog.Level {
	l, err := zerolog.ParseLevel(os.Getenv("HONEYBEE_LOG_LEVEL"))
	if err != nil || l == zerolog.NoLevel {
		return zerolog.InfoLevel
	}
	return l
}
