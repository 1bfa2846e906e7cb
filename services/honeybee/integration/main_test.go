// Package integration holds end-to-end tests across the services: an
// embedded NATS server, the real services in process, and nodes and
// clients over real sockets.
package integration

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	gateway "github.com/honeybee/core/services/node-gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger sends a component's warnings and errors to the test log.
func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// startNATSAndGateway starts an embedded NATS with JetStream (own port and
// temp store) and a real gateway on it (not yet running: pass gw.Run to
// runUntilCleanup). NATS stops at cleanup.
func startNATSAndGateway(t *testing.T, gatewayID string) (*server.Server, *gateway.Gateway) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.AdminListen, gcfg.NATSURL, gcfg.GatewayID = "127.0.0.1:0", "", ns.ClientURL(), gatewayID
	gcfg.StreamMaxBytes = 256 << 20
	gw, err := gateway.New(gcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return ns, gw
}

// runUntilCleanup runs each component until the test's cleanup, which
// stops them in reverse order (the last one given stops first) and
// reports any Run error.
func runUntilCleanup(t *testing.T, runs ...func(context.Context) error) {
	t.Helper()
	for _, run := range runs {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}
