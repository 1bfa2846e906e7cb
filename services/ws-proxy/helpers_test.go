package wsproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var c = bus.Default()

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// env is one test's NATS server, with the stream and buckets created as
// the gateway creates them.
type env struct {
	t   *testing.T
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  struct{ nodes, pots, gateways jetstream.KeyValue }
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvWithoutBus(t)
	e.createBus()
	return e
}

// newEnvWithoutBus starts NATS only: the gateway has not created the
// stream and buckets yet.
func newEnvWithoutBus(t *testing.T) *env {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, nc: nc, js: js}
}

// createBus creates the events stream and buckets as the conventions say
// the gateway does.
func (e *env) createBus() {
	t := e.t
	ctx := context.Background()
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: c.EventsStream(), Subjects: []string{c.Events()}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, AllowDirect: true,
	}); err != nil {
		t.Fatal(err)
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: c.NodesBucket()},
		{Bucket: c.PotsBucket()},
		{Bucket: c.CommandsBucket(), TTL: bus.CommandTTL},
		{Bucket: c.TOTPBucket()},
		{Bucket: c.GatewaysBucket(), TTL: bus.GatewayTTL},
	}
	kvs := make([]jetstream.KeyValue, len(buckets))
	for i, b := range buckets {
		kv, err := e.js.CreateOrUpdateKeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		kvs[i] = kv
	}
	e.kv.nodes, e.kv.pots, e.kv.gateways = kvs[0], kvs[1], kvs[4]
}

var eventCounter atomic.Uint64

// event publishes an attack event and returns its stream sequence.
func (e *env) event(node uint64, pot, typ string, extra ...string) uint64 {
	e.t.Helper()
	n := eventCounter.Add(1)
	data := json.RawMessage(`{"src_ip":"203.0.113.7"}`)
	if len(extra) > 0 {
		data, _ = json.Marshal(map[string]string{"pad": extra[0]})
	}
	now := time.Now().UTC()
	ev := bus.AttackEvent{EventID: fmt.Sprintf("ev-%d", n), NodeID: node, NodeIDStr: proto.FormatNodeID(node), NodeName: "node",
		PotID: pot, PotType: "cowrie", EventType: typ, Timestamp: now, ReceivedAt: now, SrcIP: "203.0.113.7", Data: data}
	b, _ := json.Marshal(ev)
	ack, err := e.js.Publish(context.Background(), c.Event(node, pot), b, jetstream.WithMsgID(ev.EventID))
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

func (e *env) put(kv jetstream.KeyValue, key string, v any) {
	e.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := kv.Put(context.Background(), key, b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) publish(subject string, v any) {
	e.t.Helper()
	b, _ := json.Marshal(v)
	if err := e.nc.Publish(subject, b); err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

// proxy is a running ws-proxy.
type proxy struct {
	*wsproxy.Proxy
	base string // http://host:port
}

// startProxy runs a proxy on the env's NATS until the test ends and waits
// until it is ready.
func (e *env) startProxy(mutate func(*wsproxy.Config)) *proxy {
	t := e.t
	t.Helper()
	cfg := wsproxy.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = e.srv.ClientURL()
	cfg.WriteTimeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := wsproxy.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	px := &proxy{Proxy: p, base: "http://" + p.Addr().String()}
	eventually(t, "proxy ready", func() bool {
		resp, err := http.Get(px.base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return px
}

// metric returns the value of a metric line (name with labels as printed).
func (p *proxy) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// dial opens a WebSocket to path (with query) on p.
func (p *proxy) dial(t *testing.T, path string, hdr http.Header) *websocket.Conn {
	t.Helper()
	conn, resp, err := p.tryDial(path, hdr)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf(" (HTTP %d %s)", resp.StatusCode, b)
		}
		t.Fatalf("dial %s: %v%s", path, err, body)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

func (p *proxy) tryDial(path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.base, "http")+path, &websocket.DialOptions{HTTPHeader: hdr})
}

// frame is any frame of /stream.
type frame struct {
	Type   string          `json:"type"`
	Seq    uint64          `json:"seq"`
	Data   json.RawMessage `json:"data"`
	ID     json.RawMessage `json:"id"`
	Error  string          `json:"error"`
	Filter struct {
		NodeIDs    []string `json:"node_id"`
		PotIDs     []string `json:"pot_id"`
		EventTypes []string `json:"event_type"`
		Types      []string `json:"types"`
	} `json:"filter"`
	Since *uint64 `json:"since"`
}

func (f frame) event(t *testing.T) bus.AttackEvent {
	t.Helper()
	var ev bus.AttackEvent
	if err := json.Unmarshal(f.Data, &ev); err != nil {
		t.Fatalf("event data: %v", err)
	}
	return ev
}

// read reads one frame within d.
func read(t *testing.T, conn *websocket.Conn, d time.Duration) (frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, b, err := conn.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.MessageText {
		t.Fatalf("got a binary frame")
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame is not JSON: %v: %s", err, b)
	}
	return f, nil
}

func mustRead(t *testing.T, conn *websocket.Conn) frame {
	t.Helper()
	f, err := read(t, conn, 10*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

func send(t *testing.T, conn *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func asCloseError(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }
