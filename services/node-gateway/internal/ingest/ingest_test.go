package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/honeybee/core/services/node-gateway/internal/metrics"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWindow(t *testing.T) {
	w := NewWindow(100)
	ctx := context.Background()
	if _, err := w.Acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if w.TryAcquire(50) {
		t.Fatal("TryAcquire went over the window")
	}
	got := make(chan time.Duration, 1)
	go func() {
		d, _ := w.Acquire(ctx, 50)
		got <- d
	}()
	select {
	case <-got:
		t.Fatal("Acquire did not wait for room")
	case <-time.After(50 * time.Millisecond):
	}
	w.Release(60)
	if d := <-got; d <= 0 {
		t.Errorf("waited %v, want > 0", d)
	}
	if w.Used() != 50 {
		t.Errorf("used %d, want 50", w.Used())
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.Acquire(cctx, 60); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire on a cancelled context = %v", err)
	}
	w.Release(50)
	// A request larger than the window gets in when nothing else is in use.
	if !w.TryAcquire(500) {
		t.Error("an oversized request was refused on an empty window")
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		give error
		want bool
	}{
		{nats.ErrMaxPayload, true},
		{fmt.Errorf("x: %w", nats.ErrBadSubject), true},
		{jetstream.ErrStreamMessageExceedsMaximum, true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10003}, true},
		{jetstream.ErrNoStreamResponse, false},
		{jetstream.ErrAsyncPublishTimeout, false},
		{nats.ErrDisconnected, false},
		{&jetstream.APIError{Code: 503, ErrorCode: 10077}, false},
	}
	for _, tt := range tests {
		if got := permanent(tt.give); got != tt.want {
			t.Errorf("permanent(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// TestPublisherRetriesUntilStored: events published while the stream is
// missing wait in the window and are stored exactly once when it appears.
func TestPublisherRetriesUntilStored(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := metrics.New()
	p, err := NewPublisher(nc, NewWindow(1<<20), zerolog.Nop(), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for i := range 20 {
		if _, err := p.Publish(ctx, "ev.x", fmt.Sprintf("id-%d", i), []byte(`{}`), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Publish(ctx, "ev.x", "id-0", []byte(`{}`), time.Now()); err == nil {
		t.Error("a duplicate pending id was accepted")
	}
	// Attempts fail (no stream yet) and are retried; nothing is dropped.
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(m.EventRetriesTotal) < 40 {
		if time.Now().After(deadline) {
			t.Fatal("no retries")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.Pending() != 20 {
		t.Fatalf("pending %d, want 20 while the stream is missing", p.Pending())
	}
	js, _ := jetstream.New(nc)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	st, err := js.CreateStream(sctx, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(sctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	info, err := st.Info(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 20 {
		t.Errorf("stored %d, want 20", info.State.Msgs)
	}
	if p.Close() != 0 {
		t.Error("events left after Flush")
	}
	if _, err := p.Publish(ctx, "ev.x", "late", []byte(`{}`), time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
}
