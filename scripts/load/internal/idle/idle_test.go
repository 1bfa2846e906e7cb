package idle

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/scripts/load/internal/procstat"
	"go.uber.org/goleak"
)

// TestMain doubles as the child holder when the test binary is spawned by
// TestMeasureChildren.
func TestMain(m *testing.M) {
	if os.Getenv("IDLE_TEST_CHILD") != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(os.Getenv("IDLE_TEST_CHILD")), &cfg); err != nil {
			os.Exit(3)
		}
		n, _ := strconv.Atoi(os.Getenv("IDLE_TEST_N"))
		off, _ := strconv.Atoi(os.Getenv("IDLE_TEST_OFFSET"))
		if err := RunChild(context.Background(), cfg, n, off, os.Stdin, os.Stdout); err != nil {
			os.Exit(4)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// fakeGateway acks every registration and counts live sessions and drops.
type fakeGateway struct {
	ln    net.Listener
	live  atomic.Int64
	drops atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newFakeGateway(t *testing.T) *fakeGateway {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{ln: ln}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conns = append(g.conns, c)
			g.mu.Unlock()
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				defer c.Close()
				rd := proto.NewReader(c, 0)
				for {
					f, err := rd.Next()
					if err != nil {
						return
					}
					env, err := proto.Decode(f)
					if err != nil {
						return
					}
					switch m := env.Message.(type) {
					case *proto.NodeRegistration:
						proto.Encode(c, &proto.RegistrationAck{NodeID: m.NodeID, Accepted: true})
						g.live.Add(1)
					case *proto.NodeDrop:
						g.drops.Add(1)
						g.live.Add(-1)
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		for _, c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func self() procstat.Proc { return procstat.Proc{Name: "self", PID: os.Getpid()} }

func TestMeasureNodesInProcess(t *testing.T) {
	g := newFakeGateway(t)
	cfg := Config{Kind: Nodes, Count: 50, GatewayAddr: g.ln.Addr().String(), DialParallel: 8, Heartbeat: time.Hour}
	res, err := Measure(context.Background(), cfg, self(), 50*time.Millisecond, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 50 || res.Failed != 0 || res.Dropped != 0 || res.RSSAfter <= 0 {
		t.Errorf("result %+v", res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.drops.Load() != 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g.drops.Load() != 50 {
		t.Errorf("gateway saw %d NodeDrops after the hold, want 50", g.drops.Load())
	}
}

func TestMeasureChildren(t *testing.T) {
	g := newFakeGateway(t)
	cfg := Config{Kind: Nodes, Count: 31, Procs: 3, GatewayAddr: g.ln.Addr().String(), DialParallel: 4, Heartbeat: time.Hour}
	js, _ := json.Marshal(cfg)
	var offsets []int
	var mu sync.Mutex
	spawn := func(n, offset int) *exec.Cmd {
		mu.Lock()
		offsets = append(offsets, offset)
		mu.Unlock()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "IDLE_TEST_CHILD="+string(js), "IDLE_TEST_N="+strconv.Itoa(n), "IDLE_TEST_OFFSET="+strconv.Itoa(offset))
		return cmd
	}
	res, err := Measure(context.Background(), cfg, self(), 0, spawn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 31 || res.Failed != 0 || res.Procs != 3 {
		t.Errorf("result %+v, want 31 connected over 3 processes", res)
	}
	if len(offsets) != 3 || offsets[0] != 0 || offsets[1] != 11 || offsets[2] != 21 {
		t.Errorf("offsets %v, want [0 11 21]", offsets)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.drops.Load() != 31 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g.drops.Load() != 31 {
		t.Errorf("gateway saw %d NodeDrops, want 31", g.drops.Load())
	}
}

func TestMeasureWS(t *testing.T) {
	var open atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		open.Add(1)
		defer open.Add(-1)
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context())
	}))
	defer srv.Close()
	cfg := Config{Kind: WS, Count: 20, WSURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream", DialParallel: 4}
	res, err := Measure(context.Background(), cfg, self(), 20*time.Millisecond, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 20 || res.Failed != 0 {
		t.Errorf("result %+v", res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if open.Load() != 0 {
		t.Errorf("%d clients still open after Measure", open.Load())
	}
}

func TestMeasureFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens
	res, err := Measure(context.Background(), Config{Kind: Nodes, Count: 3, GatewayAddr: addr}, self(), 0, nil, nil)
	if err == nil {
		t.Errorf("result %+v: want an error when no connection succeeds", res)
	}
}
