package drive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/scripts/load/internal/sim"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCore is a gateway, api and ws-proxy in miniature over an embedded
// NATS server, following the bus contract, with injectable faults.
type fakeCore struct {
	t         *testing.T
	c         bus.Contract
	ns        *server.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	ln        net.Listener
	api, ws   *httptest.Server
	dropEvery int64 // gateway drops every n-th event
	dupEvery  int64 // ws-proxy sends every n-th frame twice
	events    atomic.Int64
	frames    atomic.Int64
	cmdSeq    atomic.Int64

	mu       sync.Mutex
	conns    []net.Conn
	commands map[string]string // command id -> state
	pending  map[uint64]pendingCmd
	wg       sync.WaitGroup
}

type pendingCmd struct {
	id   string
	want proto.PotStatus
}

func newFakeCore(t *testing.T, dropEvery, dupEvery int64) *fakeCore {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCore{t: t, c: bus.Default(), ns: ns, nc: nc, js: js, dropEvery: dropEvery, dupEvery: dupEvery,
		commands: map[string]string{}, pending: map[uint64]pendingCmd{}}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: f.c.EventsStream(),
		Subjects: []string{f.c.Events()}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	f.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go f.accept()
	f.api = httptest.NewServer(f.apiHandler())
	f.ws = httptest.NewServer(http.HandlerFunc(f.stream))
	t.Cleanup(f.close)
	return f
}

func (f *fakeCore) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	f.api.Close()
	f.ws.CloseClientConnections()
	f.ws.Close()
	f.nc.Close()
	f.ns.Shutdown()
	f.ns.WaitForShutdown()
}

func (f *fakeCore) accept() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(conn)
		}()
	}
}

func (f *fakeCore) serve(conn net.Conn) {
	defer conn.Close()
	rd := proto.NewReader(conn, 0)
	var wmu sync.Mutex
	var who bus.Identity
	var sub *nats.Subscription
	defer func() {
		if sub != nil {
			sub.Unsubscribe()
		}
	}()
	for {
		frame, err := rd.Next()
		if err != nil {
			return
		}
		env, err := proto.Decode(frame)
		if err != nil {
			f.t.Errorf("fake gateway: %v", err)
			return
		}
		now := time.Now()
		switch m := env.Message.(type) {
		case *proto.NodeRegistration:
			who = bus.Identity{NodeID: m.NodeID, NodeName: m.NodeName}
			sub, err = f.nc.Subscribe(f.c.Command(m.NodeID), func(msg *nats.Msg) {
				var req bus.CommandRequest
				_ = json.Unmarshal(msg.Data, &req)
				cmd, err := proto.ParseCommand(req.Command)
				if err != nil {
					msg.Respond([]byte(`{}`))
					return
				}
				want := proto.PotRunning
				if cmd.Kind == proto.CmdStopPot {
					want = proto.PotStopped
				}
				f.mu.Lock()
				f.commands[req.CommandID] = bus.CommandPending
				f.pending[who.NodeID] = pendingCmd{req.CommandID, want}
				f.mu.Unlock()
				wmu.Lock()
				err = proto.Encode(conn, &proto.NodeCommand{NodeID: who.NodeID, Command: cmd})
				wmu.Unlock()
				b, _ := json.Marshal(bus.CommandReply{CommandID: req.CommandID, NodeID: who.NodeID, Delivered: err == nil})
				msg.Respond(b)
			})
			if err != nil {
				f.t.Error(err)
				return
			}
			wmu.Lock()
			proto.Encode(conn, &proto.RegistrationAck{NodeID: m.NodeID, Accepted: true})
			wmu.Unlock()
		case *proto.PotEvent:
			f.publish(bus.NewAttackEvent("", who, m, now))
		case *proto.PotStatusUpdate:
			if !m.IsState() {
				f.publish(bus.NewQuirkEvent("", who, m, now))
				continue
			}
			f.mu.Lock()
			if p, ok := f.pending[who.NodeID]; ok && p.want == m.Status {
				f.commands[p.id] = bus.CommandSucceeded
				delete(f.pending, who.NodeID)
			}
			f.mu.Unlock()
		}
	}
}

func (f *fakeCore) publish(ev bus.AttackEvent) {
	n := f.events.Add(1)
	if f.dropEvery > 0 && n%f.dropEvery == 0 {
		return
	}
	ev.EventID = "ev-" + strconv.FormatInt(n, 10)
	b, _ := json.Marshal(ev)
	if _, err := f.js.Publish(context.Background(), f.c.Event(ev.NodeID, ev.PotID), b, jetstream.WithMsgID(ev.EventID)); err != nil {
		f.t.Errorf("publish: %v", err)
	}
}

func (f *fakeCore) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/nodes/{id}/commands", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
		body, _ := io.ReadAll(r.Body)
		req, _ := json.Marshal(bus.CommandRequest{CommandID: fmt.Sprintf("cmd-%d", f.cmdSeq.Add(1)), Command: body})
		msg, err := f.nc.Request(f.c.Command(id), req, 2*time.Second)
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var rep bus.CommandReply
		_ = json.Unmarshal(msg.Data, &rep)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"command_id":%q,"delivered":%v}`, rep.CommandID, rep.Delivered)
	})
	mux.HandleFunc("GET /api/v1/commands/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		st := f.commands[r.PathValue("id")]
		f.mu.Unlock()
		fmt.Fprintf(w, `{"command_id":%q,"state":%q}`, r.PathValue("id"), st)
	})
	return mux
}

func (f *fakeCore) stream(w http.ResponseWriter, r *http.Request) {
	// Subscribe, and make sure the server has the subscription, before
	// the upgrade completes: Run counts on a connected subscriber seeing
	// every event sent afterwards (the real proxy adds the client to its
	// fan-out before any frame). Subscribing after the upgrade lost an
	// early event now and then on a busy machine.
	frames := make(chan []byte, 100000)
	sub, err := f.nc.Subscribe(f.c.Events(), func(m *nats.Msg) {
		meta, _ := m.Metadata()
		_ = meta
		frame := []byte(`{"type":"event","seq":0,"data":` + string(m.Data) + `}`)
		frames <- frame
		if n := f.frames.Add(1); f.dupEvery > 0 && n%f.dupEvery == 0 {
			frames <- frame
		}
	})
	if err != nil {
		return
	}
	defer sub.Unsubscribe()
	if err := f.nc.Flush(); err != nil {
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	for {
		select {
		case <-ctx.Done():
			return
		case fr := <-frames:
			if err := c.Write(ctx, websocket.MessageText, fr); err != nil {
				return
			}
		}
	}
}

func (f *fakeCore) config() Config {
	cfg := DefaultConfig()
	cfg.GatewayAddr = f.ln.Addr().String()
	cfg.WSURL = "ws" + strings.TrimPrefix(f.ws.URL, "http") + "/stream"
	cfg.APIURL = f.api.URL
	cfg.NATSURL = f.ns.ClientURL()
	cfg.Nodes, cfg.Pots = 6, 2
	cfg.Duration = 700 * time.Millisecond
	cfg.Rate = 600
	cfg.Subscribers = 2
	cfg.Drain, cfg.DrainQuiet = 10*time.Second, 500*time.Millisecond
	cfg.Progress = 200 * time.Millisecond
	cfg.Procs = []string{"self=" + strconv.Itoa(os.Getpid())}
	return cfg
}

func TestRunCountsEverything(t *testing.T) {
	f := newFakeCore(t, 0, 0)
	cfg := f.config()
	cfg.CmdWorkers = 2
	cfg.CmdPause = 5 * time.Millisecond
	var prog strings.Builder
	res, err := Run(context.Background(), cfg, &prog)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Events
	if res.Nodes.Connected != 6 || res.Nodes.Disconnected != 0 {
		t.Errorf("nodes %+v", res.Nodes)
	}
	if e.Sent == 0 || e.Stored != int64(e.Sent) || e.Received != e.Sent || e.Lost != 0 || e.Duplicated != 0 || e.StoreLost != 0 {
		t.Errorf("events %+v: want stored = received = sent, nothing lost or duplicated", e)
	}
	if e.Deliveries != 2*e.Sent || res.Latency.Count != 2*e.Sent || e.E2ERate <= 0 {
		t.Errorf("deliveries %d latency samples %d e2e %.0f; want %d, %d, > 0", e.Deliveries, res.Latency.Count, e.E2ERate, 2*e.Sent, 2*e.Sent)
	}
	if res.LatencyIngest.Count != 2*e.Sent || res.LatencyDelivery.Count != 2*e.Sent {
		t.Errorf("latency split: %d and %d samples, want %d each", res.LatencyIngest.Count, res.LatencyDelivery.Count, 2*e.Sent)
	}
	cm := res.Commands
	if cm == nil || cm.Sent == 0 || cm.Errors != 0 || cm.Undelivered != 0 || cm.Incomplete != 0 || cm.Complete.Count != uint64(cm.Sent) {
		t.Errorf("commands %+v: want all complete; errors %q", cm, res.Errors)
	}
	if len(res.Processes) != 1 || res.Processes[0].RSS <= 0 {
		t.Errorf("processes %+v: want one sample of self", res.Processes)
	}
	if !strings.Contains(prog.String(), "sent=") {
		t.Errorf("no progress line in %q", prog.String())
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil || !strings.Contains(text.String(), "latency") {
		t.Errorf("text table: %v\n%s", err, text.String())
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("json: %v", err)
	}
}

func TestRunCountsLossAndDuplicates(t *testing.T) {
	f := newFakeCore(t, 7, 5)
	cfg := f.config()
	cfg.DrainQuiet = 5 * time.Second // some events never arrive: wait long enough for the rest on a busy machine
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Events
	dropped := uint64(f.events.Load() / 7)
	if e.Sent != uint64(f.events.Load()) {
		t.Fatalf("sent %d, gateway saw %d", e.Sent, f.events.Load())
	}
	if e.StoreLost != int64(dropped) || e.Lost != dropped || e.Received != e.Sent-dropped {
		t.Errorf("events %+v: want %d lost in store and at subscribers", e, dropped)
	}
	if want := 2 * uint64(f.frames.Load()/2/5); e.Duplicated < want-2 || e.Duplicated > want+2 || e.Duplicated == 0 {
		t.Errorf("duplicated %d, want about %d", e.Duplicated, want)
	}
}

func TestRunAsFastAsAccepted(t *testing.T) {
	f := newFakeCore(t, 0, 0)
	cfg := f.config()
	cfg.Rate = 0
	cfg.Subscribers = 0
	cfg.Dialects = []sim.Dialect{sim.Compact}
	cfg.Duration = 300 * time.Millisecond
	cfg.DrainQuiet = 5 * time.Second // a starved fake gateway may pause for seconds on a busy machine
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events.Sent == 0 || res.Events.Stored != int64(res.Events.Sent) {
		t.Errorf("events %+v: want stored = sent", res.Events)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{"totp", func(c *Config) { c.TOTP = "yes" }, "-totp"},
		{"workers", func(c *Config) { c.CmdWorkers = 1000 }, "-cmd-workers"},
		{"rate", func(c *Config) { c.Rate = -1 }, "-rate"},
		{"subs", func(c *Config) { c.WSURL = "" }, "-subscribers"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		tt.give(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to name %s", tt.name, err, tt.want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

func TestSourceIP(t *testing.T) {
	tests := []struct {
		host string
		n, i int
		want string
	}{
		{"127.0.0.1:9001", 4, 5, "127.0.0.2"},
		{"localhost:9001", 4, 0, "127.0.0.1"},
		{"10.0.0.1:9001", 4, 1, "<nil>"},
		{"127.0.0.1:9001", 1, 3, "<nil>"},
	}
	for _, tt := range tests {
		if got := SourceIP(tt.host, tt.n, tt.i).String(); got != tt.want {
			t.Errorf("SourceIP(%s, %d, %d) = %s, want %s", tt.host, tt.n, tt.i, got, tt.want)
		}
	}
}

// TestRunPurgesEvents: with PurgeEvents the run starts on an empty events
// stream, and still counts exactly what it stored.
func TestRunPurgesEvents(t *testing.T) {
	f := newFakeCore(t, 0, 0)
	ctx := context.Background()
	for i := range 20 {
		if _, err := f.js.Publish(ctx, f.c.Event(999, "old"), []byte(`{}`), jetstream.WithMsgID(fmt.Sprint("old-", i))); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config()
	cfg.Subscribers, cfg.Rate, cfg.Duration = 0, 300, 300*time.Millisecond
	cfg.PurgeEvents = true
	res, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events.Sent == 0 || res.Events.Stored != int64(res.Events.Sent) {
		t.Errorf("events %+v: want stored = sent", res.Events)
	}
	st, err := f.js.Stream(ctx, f.c.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != res.Events.Sent {
		t.Errorf("the stream holds %d events after the run, want only the run's %d", info.State.Msgs, res.Events.Sent)
	}
}
