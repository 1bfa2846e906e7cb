package bench

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/scripts/load/internal/drive"
	"github.com/honeybee/core/scripts/load/internal/idle"
	"github.com/honeybee/core/scripts/load/internal/jsbench"
	"github.com/honeybee/core/scripts/load/internal/stats"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWriteTable(t *testing.T) {
	ingest := drive.Result{Events: drive.EventResult{Sent: 1000, Stored: 1000, Received: 1000, E2ERate: 30000, SendSecs: 1},
		Subscribers: drive.SubscriberResult{Requested: 1, Connected: 1}}
	lat := drive.Result{Events: drive.EventResult{Sent: 30000, Received: 30000},
		Latency: stats.Summary{Count: 30000, P50: 700 * time.Microsecond, P99: 3 * time.Millisecond}}
	cmds := drive.Result{Commands: &drive.CommandResult{Sent: 10,
		Post:     stats.Summary{Count: 10, P50: time.Millisecond, P99: 2 * time.Millisecond},
		Complete: stats.Summary{Count: 10, P99: 4 * time.Millisecond}}}
	fan := drive.Result{Events: drive.EventResult{DeliveryRate: 200000}, Subscribers: drive.SubscriberResult{Connected: 100}}
	rep := &Report{Order: []string{Separate}, Modes: map[string]*ModeReport{Separate: {
		Mode:      Separate,
		Raw:       &jsbench.Result{MsgsPerSec: 50000, Size: 630},
		Ingest:    &ingest,
		Sustained: &ingest,
		Latency:   &lat,
		Commands:  &cmds,
		IdleNodes: &idle.Result{Connected: 19000, PerConn: 10 * 1024},
		IdleWS:    &idle.Result{Connected: 10000, PerConn: 40 * 1024},
		Fanout:    []FanoutStep{{Rate: 2000, Subs: 100, Sustained: true, Result: &fan}, {Rate: 4000, Subs: 100, Result: &fan}},
	}}}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"ratio: 0.60 (met)",
		"0.700 ms (met)",
		"3.000 ms (MISSED)",
		"4.000 ms (met)",
		"10.0 KiB at 19000 (met)",
		"40.0 KiB at 10000 (MISSED)",
		"200000 (100 subs x 2000 ev/s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestStackStartStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	st := &stack{mode: "test"}
	if _, err := st.start(context.Background(), "sleeper", sleep, []string{"60"}, nil, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := st.alive(); err != nil {
		t.Fatalf("alive: %v", err)
	}
	if len(st.specs()) != 1 || st.pid("sleeper") == 0 {
		t.Errorf("specs %v pid %d", st.specs(), st.pid("sleeper"))
	}
	// sleep dies of SIGTERM: stop reports it, and returns promptly.
	start := time.Now()
	err = st.stop()
	if err == nil || !strings.Contains(err.Error(), "sleeper") {
		t.Errorf("stop = %v, want the non-zero exit of sleeper reported", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("stop took %v", time.Since(start))
	}
}

func TestPortsFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	if err := portsFree(Ports{Gateway: busy, GatewayAdmin: busy, API: busy, WS: busy, NATS: busy}); err == nil {
		t.Error("portsFree: want an error for a busy port")
	}
}

func TestEventPayloadSize(t *testing.T) {
	p, err := EventPayload()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) < 500 || len(p) > 800 {
		t.Errorf("payload of %d bytes; want the size of a stored attack event (500-800)", len(p))
	}
}
