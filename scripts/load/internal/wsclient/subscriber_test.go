package wsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/scripts/load/internal/marker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamServer sends the given frames to each client, then closes with
// status code (or waits for the client to leave when code is 0).
func streamServer(t *testing.T, frames []string, code websocket.StatusCode, reason string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Logf("accept: %v", err)
			return
		}
		defer c.CloseNow()
		for _, f := range frames {
			if err := c.Write(r.Context(), websocket.MessageText, []byte(f)); err != nil {
				return
			}
		}
		if code != 0 {
			c.Close(code, reason)
			return
		}
		_, _, _ = c.Read(r.Context()) // until the client closes
	}))
	t.Cleanup(srv.Close)
	return srv
}

func frame(m marker.Mark) string {
	at := time.Unix(0, m.SentNS).Add(time.Millisecond).UTC().Format(time.RFC3339Nano)
	return fmt.Sprintf(`{"type":"event","seq":1,"data":{"event_type":"x","received_at":%q,"data":{"load":%q}}}`, at, m.String())
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream"
}

func TestSubscriberCountsAndCloseReason(t *testing.T) {
	now := time.Now().UnixNano()
	frames := []string{
		frame(marker.Mark{Node: 0, Seq: 0, SentNS: now}),
		frame(marker.Mark{Node: 0, Seq: 1, SentNS: now}),
		frame(marker.Mark{Node: 0, Seq: 1, SentNS: now}), // duplicate
		frame(marker.Mark{Node: 2, Seq: 0, SentNS: now}),
		`{"type":"node","data":{"node_id":1}}`,
		`{"type":"event","data":{"event_type":"unmarked"}}`,
	}
	srv := streamServer(t, frames, websocket.StatusPolicyViolation, "slow consumer")
	s, err := Subscribe(context.Background(), Config{URL: wsURL(srv), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil {
		t.Fatal("Run returned nil after a server close")
	}
	if s.CloseStatus != websocket.StatusPolicyViolation || s.CloseReason != "slow consumer" {
		t.Errorf("close = %v %q, want policy violation, slow consumer", s.CloseStatus, s.CloseReason)
	}
	if s.Frames() != 6 || s.Received() != 4 || s.Tracker.Distinct() != 3 || s.Tracker.Duplicates() != 1 {
		t.Errorf("frames %d received %d distinct %d dups %d; want 6 4 3 1",
			s.Frames(), s.Received(), s.Tracker.Distinct(), s.Tracker.Duplicates())
	}
	if s.Distinct() != 3 {
		t.Errorf("Distinct() = %d, want 3", s.Distinct())
	}
	if s.Ingest.Count() != 3 || s.Ingest.Quantile(0.5) != time.Millisecond {
		t.Errorf("ingest latency: %d samples, median %v; want 3, 1ms", s.Ingest.Count(), s.Ingest.Quantile(0.5))
	}
	if s.Latency.Count() != 3 {
		t.Errorf("latency samples %d, want 3 (one per distinct event)", s.Latency.Count())
	}
}

func TestSubscriberStopsOnContext(t *testing.T) {
	srv := streamServer(t, nil, 0, "")
	s, err := Subscribe(context.Background(), Config{URL: wsURL(srv), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestIdleAndUnauthorized(t *testing.T) {
	srv := streamServer(t, []string{`{"type":"node"}`}, 0, "")
	if _, err := DialIdle(context.Background(), Config{URL: wsURL(srv)}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("dial without token: err = %v, want HTTP 401", err)
	}
	c, err := DialIdle(context.Background(), Config{URL: wsURL(srv), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for c.Frames() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.Frames() != 1 {
		t.Errorf("idle client frames = %d, want 1", c.Frames())
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v", err)
	}
}

// BenchmarkSubscriber measures the load tool's own cost per received
// event frame (read, mark scan, id tracking, latency split) against a
// writer in the same process. Its figures depend on how reader and
// writer interleave on two cores; compare variants against the real
// ws-proxy too (see Subscriber.Run).
func BenchmarkSubscriber(b *testing.B) {
	now := time.Now().UnixNano()
	frames := make([]string, 1000)
	for i := range frames {
		frames[i] = frame(marker.Mark{Node: uint32(i % 50), Seq: uint64(i), SentNS: now})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for i := range b.N {
			if err := c.Write(r.Context(), websocket.MessageText, []byte(frames[i%len(frames)])); err != nil {
				return
			}
		}
		_, _, _ = c.Read(r.Context())
	}))
	defer srv.Close()
	s, err := Subscribe(context.Background(), Config{URL: wsURL(srv)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	go func() { done <- s.Run(ctx) }()
	for s.Received() < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	// Wall time per op depends on how reader and writer interleave; CPU
	// per op (both sides, the server's is the same in every variant) is
	// the cost.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	cancel()
	<-done
}
