package jsbench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func TestRunStoresEveryMessage(t *testing.T) {
	s := runServer(t)
	tests := []struct {
		give Config
	}{
		{Config{Msgs: 3000, MsgID: true, Publishers: 1}},
		{Config{Msgs: 3001, MsgID: false, Publishers: 2, MaxPending: 64, Subjects: 7}},
	}
	for _, tt := range tests {
		cfg := tt.give
		cfg.URL = s.ClientURL()
		cfg.Payload = bytes.Repeat([]byte("x"), 500)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := Run(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.Stored != uint64(tt.give.Msgs) || res.Errors != 0 || res.Size != 500 || res.MsgsPerSec <= 0 {
			t.Errorf("%+v: result %+v, want %d stored, no errors", tt.give, res, tt.give.Msgs)
		}
	}
}

func TestRunRejectsEmptyPayload(t *testing.T) {
	if _, err := Run(context.Background(), Config{URL: "nats://127.0.0.1:1"}); err == nil {
		t.Fatal("want an error for an empty payload")
	}
}

func BenchmarkPublishAsync(b *testing.B) {
	s, err := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("not ready")
	}
	b.SetBytes(600)
	b.ResetTimer()
	res, err := Run(context.Background(), Config{URL: s.ClientURL(), Msgs: max(b.N, 1), MsgID: true, Payload: bytes.Repeat([]byte("x"), 600)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.MsgsPerSec, "msgs/s")
}
