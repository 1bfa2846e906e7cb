// Package wsclient holds WebSocket clients of ws-proxy's live stream
// (/stream): subscribers that count the load tool's marked events per id
// and measure end-to-end latency, and idle clients that only hold a
// connection open.
//
// A Subscriber's Run owns its connection; its counters may be read
// concurrently (Received), its tracker and histogram only after Run
// returns.
package wsclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/scripts/load/internal/marker"
	"github.com/honeybee/core/scripts/load/internal/stats"
)

// Config describes how to reach ws-proxy.
type Config struct {
	// URL is the stream endpoint, e.g. ws://127.0.0.1:9003/stream.
	URL string
	// Token, when set, is sent as a bearer token.
	Token string
	// LocalIP, when not nil, is the source address of the connection.
	LocalIP net.IP
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*http.Client{}
)

// httpClient returns a client whose connections leave from ip. Clients
// are shared per source address (connections are hijacked by the
// handshake, so nothing is pooled).
func httpClient(ip net.IP) *http.Client {
	key := ip.String()
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[key]; ok {
		return c
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	clients[key] = c
	return c
}

// Dial opens a WebSocket connection to cfg.URL.
func Dial(ctx context.Context, cfg Config) (*websocket.Conn, error) {
	opts := &websocket.DialOptions{HTTPClient: httpClient(cfg.LocalIP)}
	if cfg.Token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + cfg.Token}}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, cfg.URL, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: HTTP %s: %w", cfg.URL, resp.Status, err)
		}
		return nil, fmt.Errorf("dial %s: %w", cfg.URL, err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// Subscriber counts marked events on one stream connection.
type Subscriber struct {
	conn *websocket.Conn

	received atomic.Uint64 // marked event frames
	distinct atomic.Uint64 // different marked events
	frames   atomic.Uint64 // every frame
	lastAt   atomic.Int64  // Unix ns of the last new marked event

	// Filled by Run; read after it returns.
	Tracker stats.Tracker
	Latency stats.Histogram
	// Ingest is send -> the gateway's received_at; Delivery is
	// received_at -> arrival here (both from the frame's received_at,
	// same machine clock).
	Ingest   stats.Histogram
	Delivery stats.Histogram
	// CloseStatus and CloseReason are set when the server closed the
	// connection (e.g. policy violation, "slow consumer"); -1 otherwise.
	CloseStatus websocket.StatusCode
	CloseReason string
}

// Subscribe connects a subscriber.
func Subscribe(ctx context.Context, cfg Config) (*Subscriber, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Subscriber{conn: c, CloseStatus: -1}, nil
}

// Received returns how many marked events arrived so far (duplicates
// included).
func (s *Subscriber) Received() uint64 { return s.received.Load() }

// Distinct returns how many different marked events arrived so far.
func (s *Subscriber) Distinct() uint64 { return s.distinct.Load() }

// LastAt returns when the last new marked event arrived (zero before any).
func (s *Subscriber) LastAt() time.Time {
	ns := s.lastAt.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Frames returns how many frames arrived so far.
func (s *Subscriber) Frames() uint64 { return s.frames.Load() }

var (
	eventType   = []byte(`"type":"event"`)
	receivedKey = []byte(`"received_at":"`)
)

// receivedAt returns the event's received_at in Unix ns.
func receivedAt(b []byte) (int64, bool) {
	i := bytes.Index(b, receivedKey)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(receivedKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:j]))
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

// Run reads frames until ctx ends (then it closes normally and returns
// nil) or the connection fails (it returns the error; a close by the
// server is recorded in CloseStatus and CloseReason).
func (s *Subscriber) Run(ctx context.Context) error {
	// Reads use a context without Done, which spares coder/websocket a
	// timer per message; ctx ends the connection with a normal close.
	// A/B against the real ws-proxy (100 subscribers, 2,000 events/s,
	// 8 s, twice each): 3.1 us of load-tool CPU per delivery instead of
	// 4.3 us, and p99 14-21 ms instead of 86-133 ms. BenchmarkSubscriber,
	// with its writer in the same process, shows the opposite (3.2 vs 7.4
	// us): there a reader that keeps up pays a read syscall per frame.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		s.conn.Close(websocket.StatusNormalClosure, "")
	})
	defer func() {
		if !stop() {
			<-closed
		}
	}()
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.Reader(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				s.CloseStatus, s.CloseReason = ce.Code, ce.Reason
			}
			s.conn.CloseNow()
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			continue // the next Reader call reports the broken connection
		}
		now := time.Now().UnixNano()
		s.frames.Add(1)
		b := buf.Bytes()
		if !bytes.Contains(b, eventType) {
			continue
		}
		m, ok := marker.Find(b)
		if !ok {
			continue
		}
		s.received.Add(1)
		if !s.Tracker.Add(m.Node, m.Seq) {
			s.Latency.Record(time.Duration(now - m.SentNS))
			if at, ok := receivedAt(b); ok {
				s.Ingest.Record(time.Duration(at - m.SentNS))
				s.Delivery.Record(time.Duration(now - at))
			}
			s.lastAt.Store(now)
			s.distinct.Add(1)
		}
	}
}

// Idle is a client that holds a stream connection open, answering pings
// and discarding whatever arrives.
type Idle struct {
	conn   *websocket.Conn
	frames atomic.Uint64
}

// DialIdle connects an idle client.
func DialIdle(ctx context.Context, cfg Config) (*Idle, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Idle{conn: c}, nil
}

// Frames returns how many frames the client discarded.
func (c *Idle) Frames() uint64 { return c.frames.Load() }

// Run reads and discards until ctx ends (nil) or the connection fails.
func (c *Idle) Run(ctx context.Context) error {
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		c.conn.Close(websocket.StatusNormalClosure, "")
	})
	defer func() {
		if !stop() {
			<-closed
		}
	}()
	var scratch [4096]byte
	for {
		_, r, err := c.conn.Reader(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.conn.CloseNow()
			return err
		}
		c.frames.Add(1)
		for {
			if _, err := r.Read(scratch[:]); err != nil {
				break
			}
		}
	}
}
