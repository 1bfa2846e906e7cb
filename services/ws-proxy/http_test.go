package wsproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# dashboards\nread:file-read\n\nadmin:file-admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.startProxy(func(cfg *wsproxy.Config) {
		cfg.Tokens = "read:r-token"
		cfg.TokensFile = file
	})
	tests := []struct {
		name string
		path string
		hdr  http.Header
		want int // 0: upgraded
	}{
		{"no token", "/stream", nil, 401},
		{"bad token", "/stream", bearer("nope"), 401},
		{"bad scheme", "/stream", http.Header{"Authorization": {"Basic r-token"}}, 401},
		{"header wins over query", "/stream?token=r-token", bearer("nope"), 401},
		{"read header", "/stream", bearer("r-token"), 0},
		{"read query", "/stream?token=r-token", nil, 0},
		{"file token", "/stream", bearer("file-read"), 0},
		{"backend no token", "/ws", nil, 401},
		{"backend read", "/ws?token=file-admin", nil, 0},
	}
	for _, tt := range tests {
		conn, resp, err := p.tryDial(tt.path, tt.hdr)
		if tt.want == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			conn.CloseNow()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != tt.want {
			t.Errorf("%s: got %v, want HTTP %d", tt.name, err, tt.want)
			continue
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error.Code != "UNAUTHORIZED" {
			t.Errorf("%s: body %+v", tt.name, body)
		}
	}
	// Health, readiness and metrics need no token.
	for _, path := range []string{"/health", "/ready", "/metrics"} {
		resp, err := http.Get(p.base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, err, resp)
			continue
		}
		resp.Body.Close()
	}
}

func TestMaxClients(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(func(cfg *wsproxy.Config) { cfg.MaxClients = 2 })
	a := p.dial(t, "/stream", nil)
	p.dial(t, "/ws", nil)
	_, resp, err := p.tryDial("/stream", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &body) != nil || body.Error.Code != "TOO_MANY_CLIENTS" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("body %s", b)
	}
	// A slot frees when a client leaves.
	a.Close(websocket.StatusNormalClosure, "")
	eventually(t, "a slot frees", func() bool {
		conn, _, err := p.tryDial("/stream", nil)
		if err == nil {
			conn.CloseNow()
		}
		return err == nil
	})
}

func TestOrigins(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(func(cfg *wsproxy.Config) { cfg.AllowedOrigins = []string{"dash.example.com"} })
	tests := []struct {
		give string
		ok   bool
	}{
		{"", true}, // not a browser
		{"https://dash.example.com", true},
		{"https://evil.example.com", false},
	}
	for _, tt := range tests {
		hdr := http.Header{}
		if tt.give != "" {
			hdr.Set("Origin", tt.give)
		}
		conn, resp, err := p.tryDial("/stream", hdr)
		if tt.ok != (err == nil) {
			t.Errorf("origin %q: %v", tt.give, err)
		}
		if err == nil {
			conn.CloseNow()
		} else if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: want 403, got %v", tt.give, resp)
		}
	}
}

// TestNotReadyUntilBus: the proxy refuses clients until the gateway has
// created the stream and buckets, then serves.
func TestNotReadyUntilBus(t *testing.T) {
	e := newEnvWithoutBus(t)
	cfg := wsproxy.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = e.srv.ClientURL()
	p, err := wsproxy.New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	px := &proxy{Proxy: p, base: "http://" + p.Addr().String()}
	eventually(t, "serving", func() bool {
		resp, err := http.Get(px.base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	resp, err := http.Get(px.base + "/ready")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ready before the bus exists: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, resp, err := px.tryDial("/stream", nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream before the bus exists: %v", err)
	}
	e.createBus()
	eventually(t, "ready", func() bool {
		resp, err := http.Get(px.base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	conn := px.dial(t, "/stream", nil)
	mustRead(t, conn)
	seq := e.event(1, "p", "x")
	if f := mustRead(t, conn); f.Seq != seq {
		t.Fatalf("got %d want %d", f.Seq, seq)
	}
}

// TestShutdownGoingAway: Run's end closes clients with "going away".
func TestShutdownGoingAway(t *testing.T) {
	e := newEnv(t)
	cfg := wsproxy.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NATSURL = e.srv.ClientURL()
	p, err := wsproxy.New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	px := &proxy{Proxy: p, base: "http://" + p.Addr().String()}
	eventually(t, "ready", func() bool {
		resp, err := http.Get(px.base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	s := px.dial(t, "/stream", nil)
	mustRead(t, s)
	b := px.dial(t, "/ws", nil)
	cancel()
	for _, conn := range []*websocket.Conn{s, b} {
		_, err := read(t, conn, 10*time.Second)
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("closed with %v, want going away", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestFrameWithUpgrade: a client that sends its first frame in the same
// write as the upgrade request is understood (the bytes net/http read
// ahead survive the switch to small buffers).
func TestFrameWithUpgrade(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(nil)
	conn, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := []byte(`{"type":"subscribe","id":"early","types":["pot"]}`)
	mask := [4]byte{1, 2, 3, 4}
	raw := []byte{0x81, 0x80 | byte(len(msg)), mask[0], mask[1], mask[2], mask[3]}
	for i, b := range msg {
		raw = append(raw, b^mask[i%4])
	}
	req := "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), raw...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	// Two unmasked text frames: the connect ack, then the subscribe's.
	for i, wantID := range []string{"", `"early"`} {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatal(err)
		}
		n := int(hdr[1] & 0x7f)
		if n == 126 {
			var ext [2]byte
			_, _ = io.ReadFull(br, ext[:])
			n = int(ext[0])<<8 | int(ext[1])
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		var f frame
		if err := json.Unmarshal(body, &f); err != nil || f.Type != "ack" || string(f.ID) != wantID {
			t.Fatalf("frame %d: %s", i, body)
		}
	}
}
