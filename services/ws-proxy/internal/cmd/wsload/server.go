package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/honeybee/core/proto/bus"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

// bench is the parent's side: NATS, the bus, one proxy, a publisher.
type bench struct {
	ns     *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	proxy  *wsproxy.Proxy
	stop   func()
	done   chan error
	base   string // http://host:port of the proxy
	dir    string
	events int64
}

func startBench(queue int) (*bench, error) {
	dir, err := os.MkdirTemp("", "wsload-*")
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		MaxPayload: 1 << 20})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("NATS did not start")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	js, _ := jetstream.New(nc)
	c := bus.Default()
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: c.EventsStream(), Subjects: []string{c.Events()},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, AllowDirect: true, MaxBytes: 4 << 30}); err != nil {
		return nil, err
	}
	for _, b := range []jetstream.KeyValueConfig{{Bucket: c.NodesBucket()}, {Bucket: c.PotsBucket()},
		{Bucket: c.CommandsBucket(), TTL: bus.CommandTTL}, {Bucket: c.TOTPBucket()}, {Bucket: c.GatewaysBucket(), TTL: bus.GatewayTTL}} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, b); err != nil {
			return nil, err
		}
	}
	cfg := wsproxy.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = ns.ClientURL()
	cfg.MaxClients = 20000
	if queue > 0 {
		cfg.QueueSize = queue
	}
	p, err := wsproxy.New(cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	b := &bench{ns: ns, nc: nc, js: js, proxy: p, stop: cancel, done: make(chan error, 1), base: "http://" + p.Addr().String(), dir: dir}
	go func() { b.done <- p.Run(rctx) }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get(b.base + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("proxy not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b, nil
}

func (b *bench) close() {
	b.stop()
	<-b.done
	b.nc.Close()
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
	os.RemoveAll(b.dir)
}

// metric reads one value from the proxy's /metrics.
func (b *bench) metric(name string) float64 {
	resp, err := http.Get(b.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// payload is a realistic Cowrie login event, ~500 bytes on the wire; the
// publisher's clock goes into data.sent_ns for latency.
func (b *bench) payload(i int64, sentNS int64) []byte {
	now := time.Unix(0, sentNS).UTC()
	data := fmt.Sprintf(`{"sent_ns":%d,"src_ip":"203.0.113.%d","src_port":%d,"dst_port":22,"session":"a1b2c3d4e5f6","username":"root","password":"123456","sensor":"cowrie-01","protocol":"ssh"}`,
		sentNS, i%250, 40000+i%20000)
	ev := bus.AttackEvent{EventID: "ev-" + strconv.FormatInt(i, 10), NodeID: uint64(1 + i%50), NodeIDStr: strconv.FormatInt(1+i%50, 10),
		NodeName: "sensor", PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed", Timestamp: now, ReceivedAt: now,
		SrcIP: fmt.Sprintf("203.0.113.%d", i%250), Data: json.RawMessage(data)}
	out, _ := json.Marshal(ev)
	return out
}

// publish sends events at rate per second for d (async, bounded in
// flight): every 5 ms it catches up with rate x elapsed, so a busy
// machine delays events but never drops them from the schedule.
func (b *bench) publish(rate int, d time.Duration) (int64, error) {
	c := bus.Default()
	start := time.Now()
	var sent int64
	for {
		el := time.Since(start)
		if el >= d {
			break
		}
		target := int64(el.Seconds() * float64(rate))
		for ; sent < target; sent++ {
			b.events++
			node := uint64(1 + b.events%50)
			if _, err := b.js.PublishAsync(c.Event(node, "cowrie-01"), b.payload(b.events, time.Now().UnixNano())); err != nil {
				return sent, err
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return sent, fmt.Errorf("publish acks timed out")
	}
	return sent, nil
}

// memory returns the heap in use after a GC and the RSS, in bytes.
func memory() (heap, rss uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return ms.HeapInuse, rss
}
