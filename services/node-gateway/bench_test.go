package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/rs/zerolog"
)

// BenchmarkIngest100Nodes measures attack events per second acknowledged
// by JetStream (file storage, embedded server) with 100 nodes connected
// over loopback, each sending documented-form PotEvents (~500 bytes) as
// fast as the gateway reads them. b.N is the total number of events; the
// clock stops when the stream holds all of them.
//
//	go test -run '^$' -bench BenchmarkIngest100Nodes -benchtime 200000x .
func BenchmarkIngest100Nodes(b *testing.B) {
	const nodes = 100
	ns := startNATS(b)
	cfg := testConfig(ns.ClientURL())
	cfg.AdminListen = "127.0.0.1:0"
	g, err := New(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	tg := runGateway(b, g, cfg)

	// Connect and register every node before the clock starts.
	conns := make([]net.Conn, nodes)
	for i := range conns {
		n := dialNode(b, tg.Addr().String())
		n.register(uint64(i+1), fmt.Sprintf("bench-%03d", i))
		conns[i] = n.conn
	}
	// Each node's share of b.N events, encoded once.
	payloads := make([][]byte, nodes)
	for i := range payloads {
		count := b.N / nodes
		if i < b.N%nodes {
			count++
		}
		var buf bytes.Buffer
		for j := range count {
			ev := &proto.PotEvent{NodeID: uint64(i + 1), PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.login.failed",
				Timestamp: time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC),
				Data: json.RawMessage(fmt.Sprintf(`{"src_ip":"192.0.2.%d","src_port":%d,"dst_ip":"10.0.0.5","dst_port":2222,`+
					`"session":"a1b2c3d4e5f6","username":"root","password":"hunter%d","sensor":"edge-fra-01",`+
					`"protocol":"ssh","message":"login attempt [root/hunter%d] failed"}`, i%250, 40000+j%20000, j, j))}
			if err := proto.Encode(&buf, ev); err != nil {
				b.Fatal(err)
			}
		}
		payloads[i] = buf.Bytes()
	}
	b.SetBytes(int64(len(payloads[0]) / max(1, b.N/nodes)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := tg.js.Stream(ctx, tg.c.EventsStream())
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if _, err := c.Write(payloads[i]); err != nil {
				b.Errorf("node %d: %v", i, err)
			}
		})
	}
	for {
		info, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= uint64(b.N) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
