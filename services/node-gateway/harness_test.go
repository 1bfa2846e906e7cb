package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The nats-server's own background timers and goroutines (e.g. its
		// stats ticker) outlive Shutdown briefly; none belongs to the gateway.
		goleak.IgnoreTopFunction("time.Sleep"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).Start.func1"),
	)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// natsServer runs an embedded NATS server with JetStream on its own port
// and store directory.
type natsServer struct {
	*server.Server
	opts *server.Options
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	ns := &natsServer{opts: opts}
	ns.start(t)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func (ns *natsServer) start(t testing.TB) {
	t.Helper()
	s, err := server.NewServer(ns.opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	ns.Server = s
	// A restart must come back on the same port.
	ns.opts.Port = s.Addr().(*net.TCPAddr).Port
}

// restart stops the server and starts it again on the same port and store.
func (ns *natsServer) stop() { ns.Shutdown(); ns.WaitForShutdown() }

// testGateway is a running gateway plus a test client on the same NATS.
type testGateway struct {
	*Gateway
	cfg    Config
	c      bus.Contract
	nc     *nats.Conn
	js     jetstream.JetStream
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	runErr error
}

type gwOption func(*Config)

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.NATSURL = url
	cfg.GatewayID = "gw-test"
	cfg.DrainTimeout = 10 * time.Second
	cfg.StreamMaxBytes = 256 << 20
	return cfg
}

func startGateway(t testing.TB, ns *natsServer, opts ...gwOption) *testGateway {
	t.Helper()
	cfg := testConfig(ns.ClientURL())
	for _, o := range opts {
		o(&cfg)
	}
	return startGatewayConfig(t, cfg, zerolog.InfoLevel)
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

func startGatewayConfig(t testing.TB, cfg Config, level zerolog.Level) *testGateway {
	t.Helper()
	g, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(level))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return runGateway(t, g, cfg)
}

// runGateway runs g (made from cfg) until the test ends.
func runGateway(t testing.TB, g *Gateway, cfg Config) *testGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tg := &testGateway{Gateway: g, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	tg.c, _ = bus.New(cfg.Prefix)
	go func() { tg.done <- g.Run(ctx) }()
	t.Cleanup(func() { tg.stop(t) })

	nc, err := nats.Connect(cfg.NATSURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	t.Cleanup(nc.Close)
	tg.nc = nc
	tg.js, _ = jetstream.New(nc)
	eventually(t, "gateway ready", func() bool { return tg.readyz() == http.StatusOK })
	return tg
}

// stop cancels Run and waits for it; it returns Run's error.
func (tg *testGateway) stop(t testing.TB) error {
	t.Helper()
	tg.once.Do(func() {
		tg.cancel()
		select {
		case tg.runErr = <-tg.done:
		case <-time.After(30 * time.Second):
			t.Errorf("gateway Run did not return after cancel")
		}
	})
	return tg.runErr
}

func (tg *testGateway) readyz() int {
	resp, err := http.Get("http://" + tg.AdminAddr().String() + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric returns the value of the Prometheus series whose line starts
// with name (e.g. `honeybee_gateway_nodes` or
// `honeybee_gateway_decode_errors_total{kind="not_json"}`), 0 if absent.
func (tg *testGateway) metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + tg.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			return v
		}
	}
	return 0
}

func (tg *testGateway) kv(t testing.TB, bucket string) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := tg.js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatalf("bucket %s: %v", bucket, err)
	}
	return kv
}

// nodeRecord returns the node's record, ok false when absent.
func (tg *testGateway) nodeRecord(t testing.TB, id uint64) (bus.NodeRecord, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := tg.kv(t, tg.c.NodesBucket()).Get(ctx, bus.NodeKey(id))
	if err != nil {
		return bus.NodeRecord{}, false
	}
	var r bus.NodeRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatalf("node record: %v", err)
	}
	return r, true
}

func (tg *testGateway) potRecord(t testing.TB, id uint64, pot string) (bus.PotRecord, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := tg.kv(t, tg.c.PotsBucket()).Get(ctx, bus.PotKey(id, pot))
	if err != nil {
		return bus.PotRecord{}, false
	}
	var r bus.PotRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatalf("pot record: %v", err)
	}
	return r, true
}

func (tg *testGateway) commandRecord(t testing.TB, id string) (bus.CommandRecord, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := tg.kv(t, tg.c.CommandsBucket()).Get(ctx, id)
	if err != nil {
		return bus.CommandRecord{}, false
	}
	var r bus.CommandRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatalf("command record: %v", err)
	}
	return r, true
}

// waitNode polls until the node's record satisfies cond.
func (tg *testGateway) waitNode(t testing.TB, id uint64, what string, cond func(bus.NodeRecord) bool) bus.NodeRecord {
	t.Helper()
	var rec bus.NodeRecord
	eventually(t, fmt.Sprintf("node %d: %s", id, what), func() bool {
		r, ok := tg.nodeRecord(t, id)
		rec = r
		return ok && cond(r)
	})
	return rec
}

// storedEvent is an attack event as stored in the stream, with its subject.
type storedEvent struct {
	Subject string
	Event   bus.AttackEvent
}

// events returns every attack event in the stream whose subject matches
// filter (a NATS subject filter), in stream order.
func (tg *testGateway) events(t testing.TB, filter string) []storedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := tg.js.Stream(ctx, tg.c.EventsStream())
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	var out []storedEvent
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev bus.AttackEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("event: %v", err)
			}
			out = append(out, storedEvent{Subject: m.Subject(), Event: ev})
		}
		if n == 0 {
			return out
		}
	}
}

// nodeEvents returns the events of one node.
func (tg *testGateway) nodeEvents(t testing.TB, id uint64) []storedEvent {
	t.Helper()
	return tg.events(t, tg.c.EventsOf(id, nil))
}

// lifecycle subscribes to every node lifecycle message.
type lifecycleLog struct {
	mu   sync.Mutex
	msgs []bus.NodeLifecycle
}

func (tg *testGateway) watchLifecycle(t testing.TB) *lifecycleLog {
	t.Helper()
	l := &lifecycleLog{}
	sub, err := tg.nc.Subscribe(tg.c.Nodes(), func(m *nats.Msg) {
		var v bus.NodeLifecycle
		if json.Unmarshal(m.Data, &v) == nil {
			l.mu.Lock()
			l.msgs = append(l.msgs, v)
			l.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

func (l *lifecycleLog) of(id uint64, kind string) []bus.NodeLifecycle {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []bus.NodeLifecycle
	for _, m := range l.msgs {
		if m.NodeID == id && (kind == "" || m.Kind == kind) {
			out = append(out, m)
		}
	}
	return out
}

// testNode is a node's side of one connection.
type testNode struct {
	t    testing.TB
	conn net.Conn
	r    *proto.Reader
	id   uint64
}

func dialNode(t testing.TB, addr string) *testNode {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testNode{t: t, conn: conn, r: proto.NewReader(conn, 1<<20)}
}

func dialTLSNode(t testing.TB, addr string, cfg *tls.Config) (*testNode, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return &testNode{t: t, conn: conn, r: proto.NewReader(conn, 1<<20)}, nil
}

func (n *testNode) raw(b []byte) error {
	_ = n.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := n.conn.Write(b)
	return err
}

func (n *testNode) send(m proto.Message) {
	n.t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		n.t.Fatalf("marshal: %v", err)
	}
	if err := n.raw(append(b, '\n')); err != nil {
		n.t.Fatalf("write: %v", err)
	}
}

// read returns the next envelope from the gateway.
func (n *testNode) read() (proto.Envelope, error) {
	_ = n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := n.r.Next()
	if err != nil {
		return proto.Envelope{}, err
	}
	return proto.Decode(frame)
}

func (n *testNode) ack() *proto.RegistrationAck {
	n.t.Helper()
	env, err := n.read()
	if err != nil {
		n.t.Fatalf("reading the ack: %v", err)
	}
	ack, ok := env.Message.(*proto.RegistrationAck)
	if !ok {
		n.t.Fatalf("want RegistrationAck, got %s", env.Message.Variant())
	}
	return ack
}

func registration(id uint64, name string) *proto.NodeRegistration {
	return &proto.NodeRegistration{NodeID: id, NodeName: name, Address: "192.0.2.1", Port: 8080, NodeType: proto.NodeTypeFull}
}

// register sends a registration and requires it accepted.
func (n *testNode) register(id uint64, name string) *proto.RegistrationAck {
	n.t.Helper()
	n.id = id
	n.send(registration(id, name))
	ack := n.ack()
	if !ack.Accepted {
		n.t.Fatalf("registration of %d refused: %s", id, ack.Message)
	}
	return ack
}

// closed reports whether the gateway closed the connection (reads to EOF).
func (n *testNode) closed() bool {
	_ = n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, n.conn)
	return err == nil || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset by peer") || strings.Contains(err.Error(), "broken pipe"))
}

func (n *testNode) potEvent(pot, eventType string) {
	n.t.Helper()
	n.send(&proto.PotEvent{NodeID: n.id, PotID: pot, PotType: "cowrie", EventType: eventType,
		Timestamp: time.Now().UTC().Truncate(time.Second), Data: json.RawMessage(`{"src_ip":"198.51.100.7","session":"s1"}`)})
}

func (n *testNode) status(s proto.NodeStatus) {
	n.t.Helper()
	n.send(&proto.NodeStatusUpdate{NodeID: n.id, Status: s})
}

// command reads the next NodeCommand.
func (n *testNode) command() *proto.NodeCommand {
	n.t.Helper()
	env, err := n.read()
	if err != nil {
		n.t.Fatalf("reading a command: %v", err)
	}
	c, ok := env.Message.(*proto.NodeCommand)
	if !ok {
		n.t.Fatalf("want NodeCommand, got %s", env.Message.Variant())
	}
	return c
}

// request sends a command request for node id and returns the reply.
func (tg *testGateway) request(id uint64, req bus.CommandRequest) (*nats.Msg, error) {
	data, _ := json.Marshal(req)
	return tg.nc.Request(tg.c.Command(id), data, 5*time.Second)
}

func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}
