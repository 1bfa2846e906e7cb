package honeybee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/honeybee/internal/nodesim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the core's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.NATSListen = "127.0.0.1:0"
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Gateway.AdminListen = "127.0.0.1:0"
	cfg.Gateway.GatewayID = "test-gw"
	cfg.API.Addr = "127.0.0.1:0"
	cfg.WS.Addr = "127.0.0.1:0"
	return cfg
}

// running is a started core and the way to stop it.
type running struct {
	core *Core
	out  *syncBuffer
	stop func()
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	out := &syncBuffer{}
	cfg.Out = out
	core, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	var once sync.Once
	r := &running{core: core, out: out}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	eventually(t, "api ready", func() bool { return httpStatus(t, "http://"+core.APIAddr().String()+"/ready") == http.StatusOK })
	eventually(t, "ws-proxy ready", func() bool { return httpStatus(t, "http://"+core.WSAddr().String()+"/ready") == http.StatusOK })
	return r
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

type eventsPage struct {
	Events []struct {
		Seq   uint64          `json:"seq"`
		Data  json.RawMessage `json:"data"`
		Event string          `json:"event_type"`
	} `json:"events"`
}

type nodeView struct {
	NodeName         string `json:"node_name"`
	Connected        bool   `json:"connected"`
	DisconnectReason string `json:"disconnect_reason"`
	Honeypots        []struct {
		PotID  string `json:"pot_id"`
		Status string `json:"status"`
	} `json:"honeypots"`
}

// TestRestartKeepsData runs the core, has a node register and send
// events, stops the core, starts it again on the same data directory and
// finds the events and the node's record (now disconnected) again.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	r := start(t, testConfig(t, dir))
	apiURL := "http://" + r.core.APIAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := nodesim.Dial(ctx, r.core.GatewayAddr().String(), 77, "sensor-77")
	if err != nil {
		t.Fatal(err)
	}
	const sent = 20
	if err := node.SendPotStatus("cowrie-01", "cowrie", "Running", ""); err != nil {
		t.Fatal(err)
	}
	for i := range sent {
		if err := node.SendEvent("cowrie-01", i); err != nil {
			t.Fatal(err)
		}
	}
	var page eventsPage
	eventually(t, "events stored", func() bool {
		getJSON(t, apiURL+"/api/v1/events?limit=100", &page)
		return len(page.Events) == sent
	})
	r.stop()
	node.Close()

	r = start(t, testConfig(t, dir))
	apiURL = "http://" + r.core.APIAddr().String()
	getJSON(t, apiURL+"/api/v1/events?limit=100", &page)
	seen := map[int]bool{}
	for _, e := range page.Events {
		if seq, ok := nodesim.Seq(e.Data); ok {
			seen[seq] = true
		}
	}
	if len(page.Events) != sent || len(seen) != sent {
		t.Errorf("after restart: %d events with %d distinct sequence numbers, want %d", len(page.Events), len(seen), sent)
	}
	var nv nodeView
	getJSON(t, apiURL+"/api/v1/nodes/77", &nv)
	if nv.NodeName != "sensor-77" || nv.Connected || nv.DisconnectReason != bus.ReasonShutdown {
		t.Errorf("node after restart: %+v, want sensor-77 disconnected with reason %q", nv, bus.ReasonShutdown)
	}
	if len(nv.Honeypots) != 1 || nv.Honeypots[0].Status != "Running" {
		t.Errorf("pots after restart: %+v, want cowrie-01 Running", nv.Honeypots)
	}
}

// TestNATSPortAndSummary checks what a user sees: the printed summary
// names every listener, and the NATS client port serves the stream,
// buckets and the gateway's micro service to outside clients such as the
// NATS CLI.
func TestNATSPortAndSummary(t *testing.T) {
	r := start(t, testConfig(t, t.TempDir()))
	out := r.out.String()
	for _, want := range []string{
		listenString(r.core.GatewayAddr()), r.core.APIAddr().String(), r.core.WSAddr().String(),
		r.core.NATSURL(), "Point a node at this machine",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	nc, err := nats.Connect(r.core.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := bus.Default()
	if _, err := js.Stream(ctx, c.EventsStream()); err != nil {
		t.Errorf("stream %s: %v", c.EventsStream(), err)
	}
	for _, b := range []string{c.NodesBucket(), c.PotsBucket(), c.GatewaysBucket(), c.CommandsBucket(), c.TOTPBucket()} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Errorf("bucket %s: %v", b, err)
		}
	}
	// `nats micro ls` sends this request.
	msg, err := nc.Request("$SRV.PING."+c.GatewayService(), nil, 5*time.Second)
	if err != nil {
		t.Fatalf("micro ping %s: %v", c.GatewayService(), err)
	}
	if !strings.Contains(string(msg.Data), c.GatewayService()) {
		t.Errorf("micro ping answer %s lacks the service name", msg.Data)
	}
	// A command to a node nobody holds fails at once.
	_, err = nc.Request(c.Command(12345), []byte(`{"command":{"Restart":{}}}`), 5*time.Second)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("command to an unknown node: %v, want no responders", err)
	}
}

func TestInProcessOnly(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.NATSListen = ""
	r := start(t, cfg)
	if u := r.core.NATSURL(); u != "" {
		t.Errorf("NATSURL() = %q, want empty without a client port", u)
	}
}

func TestListenConflict(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, t.TempDir())
	cfg.WS.Addr = ln.Addr().String()
	_, err = New(cfg, zerolog.New(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "ws-proxy") {
		t.Fatalf("New with the ws port taken: %v, want an error naming ws-proxy", err)
	}
	// The gateway's and api's listeners were released: the same
	// addresses can be bound again (goleak checks the goroutines).
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{name: "data dir", give: func(c *Config) { c.DataDir = "" }, want: "HONEYBEE_DATA_DIR"},
		{name: "nats listen", give: func(c *Config) { c.NATSListen = "4222" }, want: "HONEYBEE_NATS_LISTEN"},
		{name: "nats port", give: func(c *Config) { c.NATSListen = "127.0.0.1:99999" }, want: "HONEYBEE_NATS_LISTEN"},
		{name: "monitor", give: func(c *Config) { c.NATSMonitorListen = "x" }, want: "HONEYBEE_NATS_MONITOR_LISTEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.give(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %s", err, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("HONEYBEE_DATA_DIR", "/var/lib/honeybee")
	t.Setenv("HONEYBEE_IDLE_TIMEOUT", "42s")
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("honeybee", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-api.addr", "127.0.0.1:19002", "-ws.queue-size", "7", "-prefix", "hb2", "-tokens-file", "/run/tokens"}); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/honeybee" || cfg.Gateway.IdleTimeout != 42*time.Second {
		t.Errorf("environment not applied: data dir %q, idle timeout %v", cfg.DataDir, cfg.Gateway.IdleTimeout)
	}
	if cfg.API.Addr != "127.0.0.1:19002" || cfg.WS.QueueSize != 7 {
		t.Errorf("prefixed flags not applied: api addr %q, ws queue %d", cfg.API.Addr, cfg.WS.QueueSize)
	}
	if cfg.Gateway.Prefix != "hb2" || cfg.API.Prefix != "hb2" || cfg.WS.Prefix != "hb2" {
		t.Errorf("-prefix set %q, %q, %q, want hb2 for every service", cfg.Gateway.Prefix, cfg.API.Prefix, cfg.WS.Prefix)
	}
	if cfg.API.TokensFile != "/run/tokens" || cfg.WS.TokensFile != "/run/tokens" {
		t.Errorf("-tokens-file set %q, %q, want /run/tokens for api and ws", cfg.API.TokensFile, cfg.WS.TokensFile)
	}
	for _, name := range []string{"gateway.nats-url", "api.nats-url", "ws.nats-url", "api.prefix", "ws.tokens"} {
		if fs.Lookup(name) != nil {
			t.Errorf("flag -%s exists; the embedded services use the in-process server", name)
		}
	}
}

// TestNATSPortInUse: a taken NATS port is reported at once by New, naming
// the setting, and nothing is left running.
func TestNATSPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, t.TempDir())
	cfg.NATSListen = ln.Addr().String()
	_, err = New(cfg, zerolog.New(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "HONEYBEE_NATS_LISTEN") {
		t.Fatalf("New with the NATS port taken: %v, want an error naming HONEYBEE_NATS_LISTEN", err)
	}
}

// TestNATSFatalStopsRun: when the server fails to start after New (the
// port was taken in between), Run returns the error promptly instead of
// waiting for the start timeout, and releases the services' listeners.
func TestNATSFatalStopsRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATSListen = probe.Addr().String()
	probe.Close()
	core, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", cfg.NATSListen) // someone else takes it now
	if err != nil {
		t.Skipf("could not take the port back: %v", err)
	}
	defer taken.Close()
	done := make(chan error, 1)
	go func() { done <- core.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "embedded NATS") {
			t.Fatalf("Run = %v, want the embedded NATS error", err)
		}
	case <-time.After(natsStartTimeout / 2):
		t.Fatal("Run still waiting for NATS after a fatal error")
	}
	// The gateway's listener was released: its address can be bound again.
	l, err := net.Listen("tcp", core.GatewayAddr().String())
	if err != nil {
		t.Fatalf("gateway listener not released: %v", err)
	}
	l.Close()
}
