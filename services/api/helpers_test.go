package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
	"github.com/honeybee/core/services/api/internal/testbus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	readToken  = "read-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// env is one api under test with its own NATS server and bus.
type env struct {
	t    *testing.T
	srv  *server.Server
	nc   *nats.Conn
	bus  *testbus.Bus
	c    bus.Contract
	api  *api.Server
	base string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOpt func(*env, *api.Config)

// noBus starts the api before the stream and buckets exist.
func noBus(e *env, _ *api.Config) { e.bus = nil }

func withConfig(f func(*api.Config)) envOpt { return func(_ *env, c *api.Config) { f(c) } }

// start runs an api against a fresh NATS server whose stream and buckets
// exist (unless noBus), and waits until it is ready.
func start(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, srv: testbus.Server(t), c: bus.Default(), logs: &syncBuffer{}}
	e.nc = testbus.Connect(t, e.srv)
	e.bus = &testbus.Bus{}
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = e.srv.ClientURL()
	cfg.Tokens = "read:" + readToken + ",admin:" + adminToken
	cfg.RateLimit = 0
	cfg.CommandTimeout = 2 * time.Second
	cfg.BroadcastTimeout = 2 * time.Second
	for _, o := range opts {
		o(e, &cfg)
	}
	if e.bus != nil {
		e.bus = testbus.MustCreate(t, e.nc, e.c)
	}
	log := zerolog.New(io.MultiWriter(e.logs, zerolog.NewTestWriter(t)))
	s, err := api.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	e.api = s
	e.base = "http://" + s.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
		http.DefaultClient.CloseIdleConnections()
	})
	if e.bus != nil {
		e.waitReady()
	}
	return e
}

func (e *env) waitReady() {
	e.t.Helper()
	testbus.Eventually(e.t, func() bool {
		return e.do("GET", "/ready", "", "").status == http.StatusOK
	})
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with an optional bearer token and body.
func (e *env) do(method, path, token, body string) response {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(path string) response         { e.t.Helper(); return e.do("GET", path, readToken, "") }
func (e *env) admin(m, path, b string) response { e.t.Helper(); return e.do(m, path, adminToken, b) }

// decode unmarshals the body into v, failing the test on bad JSON.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// wantStatus fails unless the status is want.
func (r response) wantStatus(t *testing.T, want int) response {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

// wantError checks an error answer: status and the JSON error code.
func (r response) wantError(t *testing.T, status int, code string) string {
	t.Helper()
	r.wantStatus(t, status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.decode(t, &body)
	if body.Error.Code != code {
		t.Fatalf("error code %q, want %q; body %s", body.Error.Code, code, r.body)
	}
	if body.Error.Message == "" {
		t.Fatalf("error without message: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error content type %q", ct)
	}
	return body.Error.Message
}
