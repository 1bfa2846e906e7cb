package corebench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/scripts/load/internal/marker"
	"github.com/honeybee/core/scripts/load/internal/sim"
	"github.com/honeybee/core/scripts/load/internal/wsclient"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCoreSmoke checks the harness: a node's events reach the stream and a
// subscriber through the real gateway and ws-proxy.
func TestCoreSmoke(t *testing.T) {
	c, err := Start(Options{WS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := wsclient.Subscribe(ctx, wsclient.Config{URL: c.StreamURL()})
	if err != nil {
		t.Fatal(err)
	}
	subDone := make(chan error, 1)
	subCtx, stopSub := context.WithCancel(ctx)
	go func() { subDone <- sub.Run(subCtx) }()
	n, err := sim.Dial(ctx, sim.Config{Addr: c.GatewayAddr(), NodeID: 77, NodeName: "smoke", Pots: 2, Dialect: sim.Quirk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.SendEvents(10); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sub.Distinct() < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sub.Distinct() != 10 {
		t.Errorf("subscriber got %d of 10 events", sub.Distinct())
	}
	n.Close()
	stopSub()
	<-subDone
}

// BenchmarkGatewayIngest measures node -> gateway -> JetStream: events
// sent by 20 nodes (mixed dialects) as fast as the gateway reads them,
// until the stream holds all of them. Profile with -cpuprofile.
func BenchmarkGatewayIngest(b *testing.B) {
	c, err := Start(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const nodes = 20
	var fleet []*sim.Node
	for i := range nodes {
		n, err := sim.Dial(ctx, sim.Config{Addr: c.GatewayAddr(), Index: uint32(i), NodeID: uint64(1000 + i),
			NodeName: fmt.Sprintf("bench-%d", i), Pots: 4, Dialect: sim.Dialects[i%3], SendBuffer: 64 << 10})
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		fleet = append(fleet, n)
	}
	base, err := c.LastSeq(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(450)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, n := range fleet {
		k := b.N / nodes
		if i < b.N%nodes {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k > 0 {
				m := min(k, 64)
				if _, err := n.SendEvents(m); err != nil {
					b.Error(err)
					return
				}
				k -= m
			}
		}()
	}
	wg.Wait()
	for {
		seq, err := c.LastSeq(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if seq-base >= uint64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkFanout measures JetStream -> ws-proxy -> WebSocket clients:
// events published straight to the events stream and delivered to 50
// subscribers; one op is one event delivered to every subscriber.
func BenchmarkFanout(b *testing.B) {
	const subs = 50
	c, err := Start(Options{WS: true, WSQueue: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var ss []*wsclient.Subscriber
	var wg sync.WaitGroup
	subCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	for range subs {
		s, err := wsclient.Subscribe(ctx, wsclient.Config{URL: c.StreamURL()})
		if err != nil {
			b.Fatal(err)
		}
		ss = append(ss, s)
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(subCtx) }()
	}
	payload, err := sim.StoredSample(sim.Documented)
	if err != nil {
		b.Fatal(err)
	}
	var ev bus.AttackEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(c.NC, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		ev.EventID = fmt.Sprintf("fan-%d", i)
		ev.Data = json.RawMessage(`{"load":"` + marker.Mark{Node: 0, Seq: uint64(i), SentNS: time.Now().UnixNano()}.String() + `"}`)
		data, _ := json.Marshal(ev)
		if _, err := js.PublishAsync(c.Bus.Event(ev.NodeID, ev.PotID), data, jetstream.WithMsgID(ev.EventID), jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range ss {
		for s.Distinct() < uint64(b.N) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s.Distinct() < uint64(b.N) {
			b.Fatalf("a subscriber got %d of %d events (closed %v %q)", s.Distinct(), b.N, s.CloseStatus, s.CloseReason)
		}
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)*subs/el, "deliveries/s")
}

// BenchmarkIdleNodes holds b.N idle registered nodes on the gateway; run
// with -memprofile (and -memprofilerate=1) to see what each session keeps
// (the inuse_space of the gateway's functions), and read the reported
// goroutines per node. COREBENCH_HEAP=file writes the heap profile while
// the nodes are connected. Client-side allocations are sim's, not the gateway's.
func BenchmarkIdleNodes(b *testing.B) {
	c, err := Start(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	before := runtime.NumGoroutine()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	var fleet []*sim.Node
	for i := range b.N {
		n, err := sim.Dial(ctx, sim.Config{Addr: c.GatewayAddr(), Index: uint32(i), NodeID: uint64(5000 + i),
			NodeName: fmt.Sprintf("idle-%d", i), Pots: 1, BufSize: 512})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Announce(); err != nil {
			b.Fatal(err)
		}
		fleet = append(fleet, n)
	}
	b.StopTimer()
	time.Sleep(time.Second) // let the gateway finish writing state
	runtime.GC()
	// The client side of a node has no goroutine here (no Run); every new
	// goroutine is the gateway's.
	b.ReportMetric(float64(runtime.NumGoroutine()-before)/float64(b.N), "gateway-goroutines/node")
	runtime.ReadMemStats(&m1)
	// Stacks are all the gateway's; the live heap includes each simulated
	// node's own ~5 KiB (reader and write buffers, socket).
	b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/float64(b.N), "stack-B/node")
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(b.N), "live-heap-B/node")
	if path := os.Getenv("COREBENCH_HEAP"); path != "" {
		// -memprofile is written after the nodes are gone; this one is
		// taken while they are connected.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	for _, n := range fleet {
		n.Close()
	}
}
