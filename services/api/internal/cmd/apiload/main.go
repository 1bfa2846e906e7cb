// Command apiload measures the api on loopback: it starts an embedded NATS
// server, fills the nodes bucket and the events stream (as the gateway
// would), runs the api, and reports p50/p99 latency and requests per
// second of a few GET requests. Every run is bounded by -duration and
// -max-requests per endpoint.
//
//	go run ./internal/cmd/apiload -nodes 10000 -events 1000000 -dir /tmp/apiload
//
// With -dir, a later run reuses the stored events when there are enough.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
	"github.com/honeybee/core/services/api/internal/testbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func main() {
	nodes := flag.Int("nodes", 10000, "nodes to store")
	nEvents := flag.Int("events", 1000000, "events to store")
	dir := flag.String("dir", "", "JetStream store directory (default: a temporary one, removed after)")
	duration := flag.Duration("duration", 10*time.Second, "measuring time per endpoint")
	maxReq := flag.Int("max-requests", 200000, "most requests per endpoint")
	conc := flag.Int("concurrency", 4, "concurrent clients")
	only := flag.String("only", "", "comma-separated paths to measure (default: all)")
	flag.Parse()
	if *only != "" {
		paths = strings.Split(*only, ",")
	}
	if err := run(*nodes, *nEvents, *dir, *duration, *maxReq, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

// paths are the GET requests measured, one after the other.
var paths []string

func run(nNodes, nEvents int, dir string, duration time.Duration, maxReq, conc int) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "apiload")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	srv, err := testbus.NewServer(dir)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := context.Background()
	c := bus.Default()
	b, err := testbus.Create(ctx, nc, c)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := fillNodes(ctx, b, nNodes); err != nil {
		return err
	}
	fmt.Printf("nodes: %d stored in %v\n", nNodes, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	have, err := fillEvents(ctx, b, nEvents)
	if err != nil {
		return err
	}
	fmt.Printf("events: %d stored (%v)\n", have, time.Since(t0).Round(time.Millisecond))

	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = srv.ClientURL()
	cfg.Tokens = "read:load-token"
	cfg.RateLimit = 0
	s, err := api.New(cfg, zerolog.New(io.Discard))
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(actx) }()
	defer func() {
		cancel()
		<-done
	}()
	base := "http://" + s.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}, Timeout: 30 * time.Second}
	t0 = time.Now()
	for {
		if res, err := client.Get(base + "/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(t0) > 2*time.Minute {
			return errors.New("api not ready after 2m")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("api ready in %v (view synced)\n", time.Since(t0).Round(time.Millisecond))
	fmt.Printf("concurrency %d, up to %v or %d requests per endpoint\n\n", conc, duration, maxReq)
	fmt.Printf("%-52s %8s %10s %10s %10s %10s\n", "GET", "requests", "p50", "p99", "req/s", "bytes")
	if paths == nil {
		paths = []string{
			"/api/v1/nodes?limit=10000",
			"/api/v1/nodes",
			"/api/v1/nodes?limit=100",
			fmt.Sprint("/api/v1/nodes/", nNodes/2+1),
			"/api/v1/events",
			"/api/v1/events?limit=1000",
			"/api/v1/events?node_id=7",
			"/api/v1/events?event_type=cowrie.session.closed",
			"/api/v1/stats",
		}
	}
	for _, path := range paths {
		if err := measure(client, base, path, duration, maxReq, conc); err != nil {
			return err
		}
	}
	return nil
}

func fillNodes(ctx context.Context, b *testbus.Bus, n int) error {
	now := time.Now().UTC()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				id := uint64(i + 1)
				rec := bus.NodeRecord{NodeID: id, NodeIDStr: proto.FormatNodeID(id), NodeName: fmt.Sprint("sensor-", i),
					NodeType: proto.NodeTypeFull, Status: proto.NodeRunning, Connected: i%2 == 0, GatewayID: "gw-1",
					Address: "10.0.0.1", Port: 2222, RemoteAddr: "192.0.2.1:40000", ConnectedSince: now, LastSeen: now}
				data, _ := json.Marshal(rec)
				if _, err := b.Nodes.Put(ctx, bus.NodeKey(id), data); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	data, _ := json.Marshal(bus.GatewayRecord{GatewayID: "gw-1", Heartbeat: now})
	_, err := b.Gateways.Put(ctx, "gw-1", data) // expires in bus.GatewayTTL: fine, runs are short-lived
	return err
}

// fillEvents publishes events until the stream holds n.
func fillEvents(ctx context.Context, b *testbus.Bus, n int) (uint64, error) {
	info, err := b.Stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	have := info.State.Msgs
	types := []string{"cowrie.session.connect", "cowrie.login.failed", "cowrie.login.success", "cowrie.command.input"}
	js, err := jetstream.New(b.JS.Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	var failed atomic.Int64
	for i := int(have); i < n; i++ {
		node := uint64(i%1000 + 1)
		typ := types[i%len(types)]
		if i == n-500000 { // one rare type, half way back
			typ = "cowrie.session.closed"
		}
		data := fmt.Sprintf(`{"src_ip":"198.51.100.%d","src_port":%d,"username":"root","password":"hunter%d","session":"s%d"}`, i%250, 1024+i%60000, i, i)
		ev := bus.AttackEvent{EventID: fmt.Sprint("load-", i), NodeID: node, NodeIDStr: proto.FormatNodeID(node), NodeName: fmt.Sprint("sensor-", node),
			PotID: "cowrie-01", PotType: "cowrie", EventType: typ, Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC(),
			SrcIP: fmt.Sprint("198.51.100.", i%250), Data: json.RawMessage(data)}
		raw, _ := json.Marshal(ev)
		msg := nats.NewMsg(b.C.Event(node, ev.PotID))
		msg.Data = raw
		msg.Header.Set(bus.HeaderMsgID, ev.EventID)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			failed.Add(1)
		}
		if i%100000 == 0 && i > int(have) {
			fmt.Printf("  ... %d events\n", i)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, errors.New("event publishing did not complete")
	}
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d publishes failed", f)
	}
	info, err = b.Stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

func measure(client *http.Client, base, path string, duration time.Duration, maxReq, conc int) error {
	var (
		mu    sync.Mutex
		lats  []time.Duration
		bytes int64
		count atomic.Int64
		fail  atomic.Value
	)
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			var nb int64
			for time.Now().Before(deadline) && count.Add(1) <= int64(maxReq) {
				req, _ := http.NewRequest("GET", base+path, nil)
				req.Header.Set("Authorization", "Bearer load-token")
				t := time.Now()
				res, err := client.Do(req)
				if err != nil {
					fail.Store(err)
					return
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					fail.Store(fmt.Errorf("%s: status %d", path, res.StatusCode))
					return
				}
				local = append(local, time.Since(t))
				nb = n
			}
			mu.Lock()
			lats = append(lats, local...)
			bytes = nb
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := fail.Load().(error); ok {
		return err
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(float64(len(lats))*p))]
	}
	fmt.Printf("%-52s %8d %10v %10v %10.0f %10d\n", path, len(lats), pct(0.50).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), float64(len(lats))/elapsed.Seconds(), bytes)
	return nil
}
