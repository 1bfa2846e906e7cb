package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backend is one fake replica listening on its own loopback address.
type backend struct {
	ip    string
	srv   *http.Server
	ready atomic.Bool
	hits  atomic.Int64
	done  chan struct{}
	kill  context.CancelFunc // ends hijacked WebSockets, as a dying process would
}

// startBackends starts n replicas on 127.0.0.1..n, all on one port, as
// replicas of a scaled service share a port on different addresses.
func startBackends(t *testing.T, n int) (port string, bs []*backend) {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		bs = bs[:0]
		var lns []net.Listener
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		lns = append(lns, ln)
		for i := 2; i <= n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%s", i, port))
			if err != nil {
				break
			}
			lns = append(lns, l)
		}
		if len(lns) < n {
			for _, l := range lns {
				l.Close()
			}
			continue
		}
		for i, l := range lns {
			b := &backend{ip: fmt.Sprintf("127.0.0.%d", i+1), done: make(chan struct{})}
			b.ready.Store(true)
			ctx, kill := context.WithCancel(context.Background())
			b.kill = kill
			b.srv = &http.Server{Handler: b.handler(t), BaseContext: func(net.Listener) context.Context { return ctx }}
			go func() { defer close(b.done); _ = b.srv.Serve(l) }()
			t.Cleanup(b.stop)
			bs = append(bs, b)
		}
		return port, bs
	}
	t.Fatal("no port free on every loopback address")
	return "", nil
}

func (b *backend) stop() {
	_ = b.srv.Close()
	b.kill()
	<-b.done
}

func (b *backend) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/who", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		fmt.Fprintf(w, "%s host=%s xff=%s", b.ip, r.Host, r.Header.Get("X-Forwarded-For"))
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Logf("accept: %v", err)
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte("hello from "+b.ip))
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})
	return mux
}

// dnsTable is a Lookup whose answers the test changes.
type dnsTable struct {
	mu  sync.Mutex
	ips []string
}

func (d *dnsTable) set(ips ...string) { d.mu.Lock(); d.ips = ips; d.mu.Unlock() }

func (d *dnsTable) lookup(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), d.ips...), nil
}

func startProxy(t *testing.T, port string, dns *dnsTable, mutate func(*Config)) *Proxy {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Upstream = "ws-proxy:" + port
	cfg.ResolveInterval = 50 * time.Millisecond
	cfg.DialTimeout = 500 * time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.Lookup = dns.lookup
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
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
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func readyReplicas(t *testing.T, p *Proxy) int {
	t.Helper()
	u, _ := p.pool.usable()
	return u
}

func TestRoundRobin(t *testing.T) {
	port, bs := startBackends(t, 3)
	dns := &dnsTable{}
	dns.set("127.0.0.1", "127.0.0.2", "127.0.0.3")
	p := startProxy(t, port, dns, nil)
	eventually(t, "3 ready replicas", func() bool { return readyReplicas(t, p) == 3 })

	const n = 30
	for range n {
		code, body := get(t, "http://"+p.Addr().String()+"/who")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
	}
	for _, b := range bs {
		if got := b.hits.Load(); got != n/3 {
			t.Errorf("replica %s got %d requests, want %d", b.ip, got, n/3)
		}
	}
	// The client's Host header is kept, and X-Forwarded-For is set.
	_, body := get(t, "http://"+p.Addr().String()+"/who")
	if want := "host=" + p.Addr().String() + " xff=127.0.0.1"; !strings.Contains(body, want) {
		t.Errorf("body %q, want it to contain %q", body, want)
	}
}

func TestSkipsNotReadyAndRemovedReplicas(t *testing.T) {
	port, bs := startBackends(t, 3)
	dns := &dnsTable{}
	dns.set("127.0.0.1", "127.0.0.2", "127.0.0.3")
	p := startProxy(t, port, dns, nil)
	eventually(t, "3 ready replicas", func() bool { return readyReplicas(t, p) == 3 })

	bs[1].ready.Store(false)          // fails its readiness probe
	dns.set("127.0.0.1", "127.0.0.2") // 127.0.0.3 left the service
	eventually(t, "1 ready replica", func() bool { return readyReplicas(t, p) == 1 })
	for range 10 {
		if code, body := get(t, "http://"+p.Addr().String()+"/who"); code != http.StatusOK || !strings.Contains(body, "127.0.0.1 ") {
			t.Fatalf("got %d %q, want 200 from 127.0.0.1", code, body)
		}
	}
	if got := bs[0].hits.Load(); got != 10 {
		t.Errorf("ready replica got %d requests, want 10", got)
	}
}

func TestDeadReplicaIsSkippedAtOnce(t *testing.T) {
	port, bs := startBackends(t, 3)
	dns := &dnsTable{}
	dns.set("127.0.0.1", "127.0.0.2", "127.0.0.3")
	// No probing and a resolve interval longer than the test: only the
	// dial failure tells the proxy that a replica died.
	p := startProxy(t, port, dns, func(c *Config) {
		c.HealthPath = ""
		c.ResolveInterval = time.Hour
	})
	eventually(t, "3 replicas", func() bool { return readyReplicas(t, p) == 3 })
	bs[1].stop()
	for i := range 12 {
		if code, body := get(t, "http://"+p.Addr().String()+"/who"); code != http.StatusOK {
			t.Fatalf("request %d: status %d %q, want every request served by a live replica", i, code, body)
		}
	}
	if u := readyReplicas(t, p); u != 2 {
		t.Errorf("usable replicas = %d, want 2", u)
	}
}

func TestNoReplica(t *testing.T) {
	dns := &dnsTable{}
	p := startProxy(t, "1", dns, nil)
	code, body := get(t, "http://"+p.Addr().String()+"/who")
	if code != http.StatusBadGateway {
		t.Errorf("status %d %q, want 502", code, body)
	}
	code, body = get(t, "http://"+p.AdminAddr().String()+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("readyz %d %q, want 503", code, body)
	}
	if code, _ := get(t, "http://"+p.AdminAddr().String()+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz %d, want 200", code)
	}
}

func TestWebSocketFailover(t *testing.T) {
	port, bs := startBackends(t, 3)
	dns := &dnsTable{}
	dns.set("127.0.0.1", "127.0.0.2", "127.0.0.3")
	p := startProxy(t, port, dns, nil)
	eventually(t, "3 ready replicas", func() bool { return readyReplicas(t, p) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dial := func() (*websocket.Conn, string) {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws://"+p.Addr().String()+"/ws", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_, hello, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read hello: %v", err)
		}
		return c, string(hello[len("hello from "):])
	}

	// One connection per replica, round-robin.
	conns := map[string]*websocket.Conn{}
	for range 3 {
		c, ip := dial()
		defer c.CloseNow()
		conns[ip] = c
	}
	if len(conns) != 3 {
		t.Fatalf("3 WebSockets reached %d replicas, want 3", len(conns))
	}
	for ip, c := range conns {
		if err := c.Write(ctx, websocket.MessageText, []byte("ping "+ip)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping "+ip {
			t.Fatalf("echo via %s: %q %v", ip, msg, err)
		}
	}

	// Kill one replica: its client sees the close and reconnects through
	// the same address to a live replica.
	victim := bs[1]
	victim.stop()
	if _, _, err := conns[victim.ip].Read(ctx); err == nil {
		t.Fatal("read on the killed replica's WebSocket succeeded, want an error")
	}
	for range 4 {
		c, ip := dial()
		c.Close(websocket.StatusNormalClosure, "")
		if ip == victim.ip {
			t.Fatalf("reconnect landed on the killed replica %s", ip)
		}
	}
}

func TestShutdownClosesWebSockets(t *testing.T) {
	port, _ := startBackends(t, 1)
	dns := &dnsTable{}
	dns.set("127.0.0.1")
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", ""
	cfg.Upstream = "ws-proxy:" + port
	cfg.ShutdownTimeout = 200 * time.Millisecond
	cfg.Lookup = dns.lookup
	p, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	eventually(t, "ready replica", func() bool { return readyReplicas(t, p) == 1 })

	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	c, _, err := websocket.Dial(wctx, "ws://"+p.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(wctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, _, err := c.Read(wctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after shutdown: %v, want the connection closed", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{name: "no port", give: func(c *Config) { c.Upstream = "ws-proxy" }, want: "HONEYBEE_EDGE_UPSTREAM (-upstream)"},
		{name: "interval", give: func(c *Config) { c.ResolveInterval = 0 }, want: "HONEYBEE_EDGE_RESOLVE_INTERVAL (-resolve-interval)"},
		{name: "health path", give: func(c *Config) { c.HealthPath = "ready" }, want: "HONEYBEE_EDGE_HEALTH_PATH (-health-path)"},
		{name: "listen", give: func(c *Config) { c.Listen = "" }, want: "HONEYBEE_EDGE_LISTEN (-listen)"},
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
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestEnvTwins(t *testing.T) {
	t.Setenv("HONEYBEE_EDGE_UPSTREAM", "api:9002")
	t.Setenv("HONEYBEE_EDGE_RESOLVE_INTERVAL", "5s")
	cfg := DefaultConfig()
	fs := newFlagSet()
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream != "api:9002" || cfg.ResolveInterval != 5*time.Second {
		t.Errorf("got upstream %q interval %v, want the environment's", cfg.Upstream, cfg.ResolveInterval)
	}

	t.Setenv("HONEYBEE_EDGE_DIAL_TIMEOUT", "7")
	cfg = DefaultConfig()
	cfg.RegisterFlags(newFlagSet())
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "HONEYBEE_EDGE_DIAL_TIMEOUT") {
		t.Errorf("Validate() = %v, want the malformed HONEYBEE_EDGE_DIAL_TIMEOUT named", err)
	}
}
