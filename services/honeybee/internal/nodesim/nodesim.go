// Package nodesim is a minimal Protocol v2 node for the embedded core's
// tests and the end-to-end tests: it registers, sends attack events that
// carry a sequence number in their data (so a test can count lost and
// duplicated events by id), reports pot status, and hands received
// commands to the test.
//
// A Node's send methods are safe for concurrent use; one goroutine reads
// the connection until it closes, and Done tells when it has.
package nodesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/honeybee/core/proto"
)

// ErrRefused is returned by Dial when the core answers accepted=false.
var ErrRefused = errors.New("registration refused")

// Node is one connected, registered node session.
type Node struct {
	ID   uint64
	Name string

	conn net.Conn
	wmu  sync.Mutex

	commands chan proto.NodeCommand
	done     chan struct{}
	err      error // read loop's end, valid after done
}

// SeqKey is the key in an event's data that holds its sequence number.
const SeqKey = "e2e_seq"

// Dial connects to addr, registers as (id, name), waits for the ack, and
// reports status Running. ctx bounds the whole handshake.
func Dial(ctx context.Context, addr string, id uint64, name string) (*Node, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	n := &Node{ID: id, Name: name, conn: conn, commands: make(chan proto.NodeCommand, 64), done: make(chan struct{})}
	fail := func(err error) (*Node, error) {
		conn.Close()
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	if err := n.send(&proto.NodeRegistration{NodeID: id, NodeName: name, Address: "127.0.0.1", Port: 2222, NodeType: proto.NodeTypeFull}); err != nil {
		return fail(err)
	}
	r := proto.NewReader(conn, 0)
	frame, err := r.Next()
	if err != nil {
		return fail(fmt.Errorf("waiting for the ack: %w", err))
	}
	env, err := proto.Decode(frame)
	if err != nil {
		return fail(err)
	}
	ack, ok := env.Message.(*proto.RegistrationAck)
	if !ok {
		return fail(fmt.Errorf("first message is %s, want RegistrationAck", env.Message.Variant()))
	}
	if !ack.Accepted {
		return fail(fmt.Errorf("%w: %s", ErrRefused, ack.Message))
	}
	_ = conn.SetDeadline(time.Time{})
	if err := n.send(&proto.NodeStatusUpdate{NodeID: id, Status: proto.NodeRunning}); err != nil {
		return fail(err)
	}
	go n.read(r)
	return n, nil
}

func (n *Node) read(r *proto.Reader) {
	defer close(n.done)
	for {
		frame, err := r.Next()
		if err != nil {
			n.err = err
			return
		}
		env, err := proto.Decode(frame)
		if err != nil {
			continue
		}
		if cmd, ok := env.Message.(*proto.NodeCommand); ok {
			select {
			case n.commands <- *cmd:
			default: // the test is not reading commands; drop
			}
		}
	}
}

// Commands delivers the commands the core sent.
func (n *Node) Commands() <-chan proto.NodeCommand { return n.commands }

// Done is closed when the connection has ended (read error or close).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the connection ended; valid after Done.
func (n *Node) Err() error { <-n.done; return n.err }

func (n *Node) send(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	n.wmu.Lock()
	defer n.wmu.Unlock()
	_ = n.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err = n.conn.Write(b)
	return err
}

// SendEvent sends a documented PotEvent of pot whose data carries seq
// under SeqKey.
func (n *Node) SendEvent(pot string, seq int) error {
	data, _ := json.Marshal(map[string]any{SeqKey: seq, "src_ip": "203.0.113.7", "username": "root"})
	return n.send(&proto.PotEvent{
		NodeID:    n.ID,
		PotID:     pot,
		PotType:   "cowrie",
		EventType: "cowrie.login.failed",
		Timestamp: time.Now(),
		Data:      data,
	})
}

// SendPotStatus reports a pot's status.
func (n *Node) SendPotStatus(pot, potType string, status proto.PotStatus, msg string) error {
	u := &proto.PotStatusUpdate{NodeID: n.ID, PotID: pot, PotType: potType, Status: status}
	if msg != "" {
		u.Message = &msg
	}
	return n.send(u)
}

// SendStatus reports the node's status (also a heartbeat).
func (n *Node) SendStatus(s proto.NodeStatus) error {
	return n.send(&proto.NodeStatusUpdate{NodeID: n.ID, Status: s})
}

// Drop sends NodeDrop and closes the connection.
func (n *Node) Drop() error {
	err := n.send(&proto.NodeDrop{})
	n.Close()
	return err
}

// Close closes the connection and waits for the reader to end.
func (n *Node) Close() {
	n.conn.Close()
	<-n.done
}

// Seq returns the sequence number an event's data carries, if any.
func Seq(data json.RawMessage) (int, bool) {
	var v struct {
		Seq *int `json:"e2e_seq"`
	}
	if json.Unmarshal(data, &v) != nil || v.Seq == nil {
		return 0, false
	}
	return *v.Seq, true
}
