// Command load is the load tool and benchmark of HoneyBee Core: simulated
// node fleets, WebSocket subscribers, command round trips, idle
// connection memory, and raw JetStream publish rates. Run `load` for the
// list of subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/honeybee/core/scripts/load/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
