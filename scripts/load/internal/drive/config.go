// Package drive runs one load scenario against a running core: simulated
// nodes sending marked attack events, WebSocket subscribers counting them,
// command round trips through the api, and samples of the core's
// processes; it produces a Result. Run owns every goroutine it starts and
// returns after all of them have stopped.
package drive

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/honeybee/core/scripts/load/internal/sim"
)

// Config is one scenario.
type Config struct {
	// GatewayAddr is the gateway's node listener (host:port).
	GatewayAddr string `json:"gateway_addr"`
	// TLS, when not nil, makes nodes connect with TLS.
	TLS *tls.Config `json:"-"`
	// TOTP: "off" (no code), "enroll" (enroll each node name through the
	// api first, then send codes), or "tofu" (send no code at first,
	// keep the key the core issues).
	TOTP string `json:"totp"`

	// Nodes is how many nodes to simulate; Pots how many pots each runs.
	Nodes int `json:"nodes"`
	Pots  int `json:"pots"`
	// Dialects are cycled over the nodes (node i speaks Dialects[i%len]).
	Dialects []sim.Dialect `json:"-"`
	// Rate is the total attack events per second over all nodes; 0 sends
	// as fast as the core accepts.
	Rate float64 `json:"rate"`
	// NoEvents keeps the nodes quiet (for command-only runs).
	NoEvents bool `json:"no_events"`
	// Batch is the most events a node writes at once.
	Batch int `json:"batch"`
	// Duration is how long nodes send events.
	Duration time.Duration `json:"duration_ns"`
	// Heartbeat is the nodes' status interval.
	Heartbeat time.Duration `json:"heartbeat_ns"`
	// SendBuffer is each node socket's send buffer in bytes (0: the OS's
	// autotuned default, which can park megabytes per connection).
	SendBuffer int `json:"send_buffer"`
	// DialParallel is how many nodes connect at the same time.
	DialParallel int `json:"dial_parallel"`
	// SrcIPs spreads connections over 127.0.0.1..127.0.0.SrcIPs when the
	// core is on loopback (more source ports); 0 or 1 uses the default.
	SrcIPs int `json:"src_ips"`

	// WSURL is ws-proxy's stream URL ("" for no subscribers).
	WSURL string `json:"ws_url"`
	// WSToken is the bearer token for ws-proxy.
	WSToken string `json:"-"`
	// Subscribers is how many WebSocket subscribers count events.
	Subscribers int `json:"subscribers"`

	// APIURL is the api's base URL ("" for no commands).
	APIURL string `json:"api_url"`
	// APIToken is the bearer token for the api (admin for commands).
	APIToken string `json:"-"`
	// CmdWorkers is how many command round trips run at once (0: none).
	CmdWorkers int `json:"cmd_workers"`
	// CmdPause is the pause between a worker's commands.
	CmdPause time.Duration `json:"cmd_pause_ns"`
	// CmdPoll is the interval at which a worker polls the command's
	// progress until the node's answer shows.
	CmdPoll time.Duration `json:"cmd_poll_ns"`

	// NATSURL is where to read the events stream ("" to skip counting
	// stored events); Prefix the bus prefix.
	NATSURL string `json:"nats_url"`
	Prefix  string `json:"prefix"`
	// PurgeEvents empties the events stream before the run, so that the
	// run measures a store that earlier runs did not fill (needs NATSURL).
	PurgeEvents bool `json:"purge_events"`

	// Drain bounds the wait for subscribers to catch up after sending
	// ends; DrainQuiet ends it early when nothing arrived for that long.
	Drain      time.Duration `json:"drain_ns"`
	DrainQuiet time.Duration `json:"drain_quiet_ns"`

	// Procs are the core processes to sample ("name" or "name=pid").
	Procs []string `json:"procs"`
	// Progress is the interval of progress lines (0: none).
	Progress time.Duration `json:"-"`
}

// DefaultConfig is a small mixed fleet on the default local ports.
func DefaultConfig() Config {
	return Config{
		GatewayAddr:  "127.0.0.1:9001",
		TOTP:         "off",
		Nodes:        100,
		Pots:         4,
		Dialects:     sim.Dialects,
		Rate:         1000,
		Batch:        64,
		Duration:     30 * time.Second,
		Heartbeat:    30 * time.Second,
		SendBuffer:   64 << 10,
		DialParallel: 64,
		SrcIPs:       8,
		WSURL:        "ws://127.0.0.1:9003/stream",
		Subscribers:  1,
		APIURL:       "http://127.0.0.1:9002",
		CmdPause:     10 * time.Millisecond,
		CmdPoll:      500 * time.Microsecond,
		NATSURL:      "nats://127.0.0.1:4222",
		Prefix:       "honeybee",
		Drain:        30 * time.Second,
		DrainQuiet:   3 * time.Second,
		Progress:     time.Second,
	}
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.GatewayAddr == "":
		return errors.New("-gateway: required")
	case c.Nodes < 0:
		return errors.New("-nodes: must be >= 0")
	case c.Nodes > 0 && len(c.Dialects) == 0:
		return errors.New("-dialects: at least one")
	case c.Rate < 0:
		return errors.New("-rate: must be >= 0")
	case c.Duration <= 0:
		return errors.New("-duration: must be > 0")
	case c.TOTP != "off" && c.TOTP != "enroll" && c.TOTP != "tofu":
		return fmt.Errorf("-totp: %q: want off, enroll or tofu", c.TOTP)
	case c.TOTP == "enroll" && c.APIURL == "":
		return errors.New("-totp enroll: needs -api")
	case c.CmdWorkers > c.Nodes:
		return fmt.Errorf("-cmd-workers: %d is more than -nodes %d (one command in flight per node)", c.CmdWorkers, c.Nodes)
	case c.CmdWorkers > 0 && c.APIURL == "":
		return errors.New("-cmd-workers: needs -api")
	case c.Subscribers > 0 && c.WSURL == "":
		return errors.New("-subscribers: needs -ws")
	}
	return nil
}

// SourceIP returns the source address of connection i: spread over
// 127.0.0.1..127.0.0.n when host is a loopback address, else nil.
func SourceIP(host string, n, i int) net.IP {
	if n <= 1 {
		return nil
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	ip := net.ParseIP(h)
	if h == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil
	}
	return net.IPv4(127, 0, 0, byte(1+i%min(n, 254)))
}
