// Package sim simulates HoneyBee nodes speaking Protocol v2 over TCP or
// TLS: registration (optionally with TOTP), heartbeats, pot status, attack
// events in every dialect with a mark (node index, sequence, send time),
// and answers to commands the way a real node would.
//
// A Node's methods are safe for concurrent use: writes to the socket are
// serialized. Run owns the node's goroutines and returns when its context
// ends or the connection fails.
package sim

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/scripts/load/internal/marker"
	"github.com/honeybee/core/scripts/load/internal/totp"
)

// ErrRefused is returned by Dial when the core answers accepted: false.
var ErrRefused = errors.New("registration refused")

// Config describes one simulated node.
type Config struct {
	// Addr is the gateway's host:port.
	Addr string
	// TLS, when not nil, wraps the connection in TLS with this config.
	TLS *tls.Config
	// LocalIP, when not nil, is the source address (spreads many
	// connections over 127.0.0.x to avoid running out of ephemeral ports).
	LocalIP net.IP
	// Index is the node's small dense number in this run; it goes into
	// every mark.
	Index uint32
	// NodeID is the protocol node id (any u64 but 0).
	NodeID uint64
	// NodeName is the node's name.
	NodeName string
	// NodeType is Full or Agent (Full when empty).
	NodeType proto.NodeType
	// Pots is how many honeypots the node runs (at least 1).
	Pots int
	// Dialect is how the node reports attack events.
	Dialect Dialect
	// TOTPSecret, when set, makes the node send a code with its
	// registration. A totp_key in the RegistrationAck replaces it.
	TOTPSecret string
	// SendBuffer, when > 0, sets the socket's send buffer (bytes). A small
	// buffer keeps what "accepted by the core" means close to what the
	// core read, instead of megabytes parked in the kernel.
	SendBuffer int
	// BufSize is the size of the node's write buffer (32 KiB when 0; idle
	// fleets of thousands use a small one).
	BufSize int
	// Timeout bounds the connect and the wait for the RegistrationAck
	// (10 s when zero, like the deployed Go node).
	Timeout time.Duration
	// OnCommand, when set, is called for every NodeCommand received, with
	// its arrival time, before the node answers it.
	OnCommand func(cmd proto.NodeCommand, at time.Time)
}

// Node is one connected, registered simulated node.
type Node struct {
	cfg  Config
	conn net.Conn
	rd   *proto.Reader

	mu   sync.Mutex // guards w, buf, tmpl
	w    *bufio.Writer
	buf  []byte
	tmpl []template

	seq      atomic.Uint64 // next event sequence number
	sent     atomic.Uint64 // events flushed to the socket
	commands atomic.Uint64 // commands received
	secret   atomic.Pointer[string]
}

// Dial connects and registers. It returns ErrRefused (wrapped with the
// core's reason) when the registration is not accepted.
func Dial(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Pots < 1 {
		cfg.Pots = 1
	}
	if cfg.NodeType == "" {
		cfg.NodeType = proto.NodeTypeFull
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	d := net.Dialer{}
	if cfg.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: cfg.LocalIP}
	}
	var conn net.Conn
	var err error
	if cfg.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: cfg.TLS}
		conn, err = td.DialContext(ctx, "tcp", cfg.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: dial: %w", cfg.NodeName, err)
	}
	if cfg.SendBuffer > 0 {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(cfg.SendBuffer)
		} else if tl, ok := conn.(*tls.Conn); ok {
			if tc, ok := tl.NetConn().(*net.TCPConn); ok {
				_ = tc.SetWriteBuffer(cfg.SendBuffer)
			}
		}
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = 32 << 10
	}
	n := &Node{cfg: cfg, conn: conn, rd: proto.NewReader(conn, 0), w: bufio.NewWriterSize(conn, cfg.BufSize)}
	if cfg.TOTPSecret != "" {
		s := cfg.TOTPSecret
		n.secret.Store(&s)
	}
	if err := n.register(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) register(ctx context.Context) error {
	reg := &proto.NodeRegistration{NodeID: n.cfg.NodeID, NodeName: n.cfg.NodeName,
		Address: "127.0.0.1", Port: 2222, NodeType: n.cfg.NodeType}
	if s := n.secret.Load(); s != nil {
		code, err := totp.Code(*s, time.Now())
		if err != nil {
			return fmt.Errorf("node %s: %w", n.cfg.NodeName, err)
		}
		reg.TOTPCode = code
	}
	deadline, _ := ctx.Deadline()
	_ = n.conn.SetDeadline(deadline)
	defer n.conn.SetDeadline(time.Time{})
	if err := n.write(reg); err != nil {
		return fmt.Errorf("node %s: send registration: %w", n.cfg.NodeName, err)
	}
	for {
		frame, err := n.rd.Next()
		if err != nil {
			return fmt.Errorf("node %s: waiting for RegistrationAck: %w", n.cfg.NodeName, err)
		}
		env, err := proto.Decode(frame)
		if err != nil {
			return fmt.Errorf("node %s: bad answer to registration: %w", n.cfg.NodeName, err)
		}
		ack, ok := env.Message.(*proto.RegistrationAck)
		if !ok {
			continue // nothing else is expected before the ack; skip it
		}
		if !ack.Accepted {
			return fmt.Errorf("node %s: %w: %s", n.cfg.NodeName, ErrRefused, ack.Message)
		}
		if ack.TOTPKey != "" {
			k := ack.TOTPKey
			n.secret.Store(&k)
		}
		return nil
	}
}

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// TOTPSecret returns the secret the node would use at its next
// registration ("" when none).
func (n *Node) TOTPSecret() string {
	if s := n.secret.Load(); s != nil {
		return *s
	}
	return ""
}

// PotID returns the id of pot i.
func PotID(i int) string { return "cowrie-" + strconv.Itoa(i+1) }

// Sent returns how many events were written to the socket.
func (n *Node) Sent() uint64 { return n.sent.Load() }

// Commands returns how many commands the node received.
func (n *Node) Commands() uint64 { return n.commands.Load() }

// write sends one message and flushes.
func (n *Node) write(m proto.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	n.buf, err = proto.AppendEnvelope(n.buf[:0], m)
	if err != nil {
		return err
	}
	n.buf = append(n.buf, '\n')
	if _, err := n.w.Write(n.buf); err != nil {
		return err
	}
	return n.w.Flush()
}

// Announce reports the node Running and every pot Running, as a node does
// after registering.
func (n *Node) Announce() error {
	if err := n.write(&proto.NodeStatusUpdate{NodeID: n.cfg.NodeID, Status: proto.NodeRunning}); err != nil {
		return err
	}
	for i := range n.cfg.Pots {
		if err := n.write(&proto.PotStatusUpdate{NodeID: n.cfg.NodeID, PotID: PotID(i), PotType: "cowrie", Status: proto.PotRunning}); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeat sends a NodeStatusUpdate(Running).
func (n *Node) Heartbeat() error {
	return n.write(&proto.NodeStatusUpdate{NodeID: n.cfg.NodeID, Status: proto.NodeRunning})
}

// SendEvents writes k attack events (cycling over the pots) in one flush,
// each marked with the time it was encoded. It returns how many were
// written; on an error the node is broken.
func (n *Node) SendEvents(k int) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if len(n.tmpl) == 0 || n.tmpl[0].second != now.Unix() {
		if err := n.rebuildTemplates(now); err != nil {
			return 0, err
		}
	}
	first := n.seq.Load()
	for i := range k {
		seq := first + uint64(i)
		t := &n.tmpl[int(seq%uint64(len(n.tmpl)))]
		n.buf = t.appendEvent(n.buf[:0], marker.Mark{Node: n.cfg.Index, Seq: seq, SentNS: time.Now().UnixNano()})
		if _, err := n.w.Write(n.buf); err != nil {
			n.seq.Add(uint64(i))
			return 0, err
		}
	}
	n.seq.Add(uint64(k))
	if err := n.w.Flush(); err != nil {
		return 0, err
	}
	n.sent.Add(uint64(k))
	return k, nil
}

func (n *Node) rebuildTemplates(now time.Time) error {
	n.tmpl = n.tmpl[:0]
	for i := range n.cfg.Pots {
		t, err := buildTemplate(n.cfg.Dialect, n.cfg.NodeID, n.cfg.NodeName, PotID(i), i, now)
		if err != nil {
			return err
		}
		n.tmpl = append(n.tmpl, t)
	}
	return nil
}

// Drop sends NodeDrop (a voluntary close follows).
func (n *Node) Drop() error { return n.write(&proto.NodeDrop{}) }

// Close closes the connection.
func (n *Node) Close() error { return n.conn.Close() }

// Run reads from the core until ctx ends or the connection fails, answers
// commands, and sends a heartbeat every heartbeat (none when 0). On ctx
// end it sends NodeDrop and closes; it returns nil then, else the error
// that broke the connection.
func (n *Node) Run(ctx context.Context, heartbeat time.Duration) error {
	readErr := make(chan error, 1)
	go func() { readErr <- n.readLoop() }()
	var tick <-chan time.Time
	if heartbeat > 0 {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			_ = n.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = n.Drop()
			n.conn.Close()
			<-readErr
			return nil
		case err := <-readErr:
			n.conn.Close()
			return err
		case <-tick:
			if err := n.Heartbeat(); err != nil {
				n.conn.Close()
				<-readErr
				return fmt.Errorf("node %s: heartbeat: %w", n.cfg.NodeName, err)
			}
		}
	}
}

func (n *Node) readLoop() error {
	for {
		frame, err := n.rd.Next()
		if err != nil {
			return fmt.Errorf("node %s: read: %w", n.cfg.NodeName, err)
		}
		at := time.Now()
		env, err := proto.Decode(frame)
		if err != nil {
			continue // a real node logs and carries on
		}
		cmd, ok := env.Message.(*proto.NodeCommand)
		if !ok {
			continue
		}
		n.commands.Add(1)
		if n.cfg.OnCommand != nil {
			n.cfg.OnCommand(*cmd, at)
		}
		if err := n.answer(cmd.Command); err != nil {
			return fmt.Errorf("node %s: answer command: %w", n.cfg.NodeName, err)
		}
	}
}

// answer replies to a command the way a node reports progress.
func (n *Node) answer(c proto.Command) error {
	pot := func(id string, s proto.PotStatus) error {
		return n.write(&proto.PotStatusUpdate{NodeID: n.cfg.NodeID, PotID: id, PotType: "cowrie", Status: s})
	}
	switch c.Kind {
	case proto.CmdInstallPot:
		if err := pot(c.PotID, proto.PotInstalling); err != nil {
			return err
		}
		return pot(c.PotID, proto.PotRunning)
	case proto.CmdDeployPot, proto.CmdRestartPot, proto.CmdGetPotStatus:
		return pot(c.PotID, proto.PotRunning)
	case proto.CmdStopPot:
		return pot(c.PotID, proto.PotStopped)
	case proto.CmdGetInstalledPots:
		for i := range n.cfg.Pots {
			if err := pot(PotID(i), proto.PotRunning); err != nil {
				return err
			}
		}
		return nil
	case proto.CmdRestart:
		return n.write(&proto.NodeStatusUpdate{NodeID: n.cfg.NodeID, Status: proto.NodeRunning})
	default:
		return n.write(&proto.NodeEvent{Type: proto.NodeEventError, Message: "unsupported command " + string(c.Kind)})
	}
}
