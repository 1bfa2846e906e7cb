package totp_test

import (
	"context"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startNATS runs an embedded JetStream server for one test.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return s
}

// openKV connects to s on a connection of its own and returns the TOTP
// bucket, creating it if needed, and the connection.
func openKV(t *testing.T, s *server.Server) (jetstream.KeyValue, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name("totp-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.Default().TOTPBucket(), History: 5})
	if err != nil {
		t.Fatal(err)
	}
	return kv, nc
}

// newKV is openKV on a fresh server.
func newKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	kv, _ := openKV(t, startNATS(t))
	return kv
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// base is a fixed instant 10 s into a 30 s step.
var base = time.Unix(1_700_000_010, 0).UTC()

func mustCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
