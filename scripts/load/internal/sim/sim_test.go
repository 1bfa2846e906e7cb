package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/scripts/load/internal/marker"
	"github.com/honeybee/core/scripts/load/internal/totp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeCore is a minimal gateway: it acks registrations (or refuses them),
// records every message it decodes, and can send commands.
type fakeCore struct {
	t      *testing.T
	ln     net.Listener
	refuse string // reason; accept when empty
	issue  string // totp_key to issue in the ack

	mu    sync.Mutex
	msgs  []proto.Message
	regs  []*proto.NodeRegistration
	conns []net.Conn
	wg    sync.WaitGroup
}

func newFakeCore(t *testing.T) *fakeCore {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeCore{t: t, ln: ln}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(c.close)
	return c
}

func (c *fakeCore) close() {
	c.ln.Close()
	c.mu.Lock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *fakeCore) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
		c.wg.Add(1)
		go c.serve(conn)
	}
}

func (c *fakeCore) serve(conn net.Conn) {
	defer c.wg.Done()
	defer conn.Close()
	rd := proto.NewReader(conn, 0)
	first := true
	for {
		frame, err := rd.Next()
		if err != nil {
			return
		}
		env, err := proto.Decode(frame)
		if err != nil {
			c.t.Errorf("fake core: decode %q: %v", frame, err)
			return
		}
		if first {
			first = false
			reg, ok := env.Message.(*proto.NodeRegistration)
			if !ok {
				c.t.Errorf("first message is %T", env.Message)
				return
			}
			c.mu.Lock()
			c.regs = append(c.regs, reg)
			c.mu.Unlock()
			ack := &proto.RegistrationAck{NodeID: reg.NodeID, Accepted: c.refuse == "", Message: c.refuse, TOTPKey: c.issue}
			if err := proto.Encode(conn, ack); err != nil || c.refuse != "" {
				return
			}
			continue
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, env.Message)
		c.mu.Unlock()
	}
}

func (c *fakeCore) messages() []proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]proto.Message(nil), c.msgs...)
}

func (c *fakeCore) send(t *testing.T, m proto.Message) {
	t.Helper()
	c.mu.Lock()
	conn := c.conns[len(c.conns)-1]
	c.mu.Unlock()
	if err := proto.Encode(conn, m); err != nil {
		t.Fatal(err)
	}
}

func count[T proto.Message](msgs []proto.Message) int {
	n := 0
	for _, m := range msgs {
		if _, ok := m.(T); ok {
			n++
		}
	}
	return n
}

func TestDialRegistersAndAnnounces(t *testing.T) {
	core := newFakeCore(t)
	n, err := Dial(context.Background(), Config{Addr: core.ln.Addr().String(), NodeID: 1 << 60, NodeName: "n1", Pots: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Announce(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(core.messages()) == 4 })
	msgs := core.messages()
	if got := count[*proto.NodeStatusUpdate](msgs); got != 1 {
		t.Errorf("NodeStatusUpdate: got %d, want 1", got)
	}
	if got := count[*proto.PotStatusUpdate](msgs); got != 3 {
		t.Errorf("PotStatusUpdate: got %d, want 3", got)
	}
	core.mu.Lock()
	reg := core.regs[0]
	core.mu.Unlock()
	if reg.NodeID != 1<<60 || reg.NodeName != "n1" || reg.NodeType != proto.NodeTypeFull || reg.TOTPCode != "" {
		t.Errorf("registration = %+v", reg)
	}
}

func TestDialRefused(t *testing.T) {
	core := newFakeCore(t)
	core.refuse = "bad totp"
	_, err := Dial(context.Background(), Config{Addr: core.ln.Addr().String(), NodeID: 7, NodeName: "n7"})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
}

func TestDialTOTP(t *testing.T) {
	core := newFakeCore(t)
	core.issue = totp.NewSecret()
	secret := totp.NewSecret()
	n, err := Dial(context.Background(), Config{Addr: core.ln.Addr().String(), NodeID: 9, NodeName: "n9", TOTPSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	core.mu.Lock()
	code := core.regs[0].TOTPCode
	core.mu.Unlock()
	if len(code) != 6 {
		t.Errorf("totp_code %q, want 6 digits", code)
	}
	if got := n.TOTPSecret(); got != core.issue {
		t.Errorf("secret after ack = %q, want the issued key %q", got, core.issue)
	}
}

// Every dialect decodes with the core's decoder, normalizes into an
// AttackEvent whose JSON still carries the mark, and the quirk form is not
// a pot state.
func TestDialectsNormalizeWithMark(t *testing.T) {
	tests := []struct {
		give     Dialect
		wantType string
	}{
		{Documented, "cowrie.login.failed"},
		{Compact, "cowrie.login.failed"},
		{Quirk, bus.UnknownEventType},
	}
	for _, tt := range tests {
		t.Run(tt.give.String(), func(t *testing.T) {
			want := marker.Mark{Node: 12, Seq: 345, SentNS: time.Now().UnixNano()}
			line, err := SampleEvent(tt.give, 99, "node-99", "cowrie-1", want)
			if err != nil {
				t.Fatal(err)
			}
			if line[len(line)-1] != '\n' {
				t.Fatal("event line does not end with a newline")
			}
			env, err := proto.Decode(line)
			if err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			who := bus.Identity{NodeID: 99, NodeName: "node-99"}
			var ev bus.AttackEvent
			switch m := env.Message.(type) {
			case *proto.PotEvent:
				ev = bus.NewAttackEvent("id", who, m, time.Now())
			case *proto.PotStatusUpdate:
				if m.IsState() {
					t.Fatal("quirk update decoded as a pot state")
				}
				ev = bus.NewQuirkEvent("id", who, m, time.Now())
			default:
				t.Fatalf("decoded %T", env.Message)
			}
			if ev.EventType != tt.wantType || ev.PotID != "cowrie-1" {
				t.Errorf("event type %q pot %q, want %q cowrie-1", ev.EventType, ev.PotID, tt.wantType)
			}
			// As ws-proxy sends it.
			frame, err := json.Marshal(map[string]any{"type": "event", "seq": 1, "data": ev})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := marker.Find(frame)
			if !ok || got != want {
				t.Errorf("mark in frame = %+v %v, want %+v", got, ok, want)
			}
		})
	}
}

func TestSendEventsAndPump(t *testing.T) {
	core := newFakeCore(t)
	n, err := Dial(context.Background(), Config{Addr: core.ln.Addr().String(), Index: 3, NodeID: 3, NodeName: "n3", Pots: 2, Dialect: Compact})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.SendEvents(5); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Pump(ctx, 2000, 4) }()
	eventually(t, func() bool { return n.Sent() >= 50 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	sent := n.Sent()
	eventually(t, func() bool { return uint64(count[*proto.PotEvent](core.messages())) == sent })
	seen := map[uint64]bool{}
	for _, m := range core.messages() {
		ev := m.(*proto.PotEvent)
		mk, ok := marker.Find(ev.Data)
		if !ok || mk.Node != 3 {
			t.Fatalf("event without the node's mark: %s", ev.Data)
		}
		if seen[mk.Seq] {
			t.Fatalf("seq %d sent twice", mk.Seq)
		}
		seen[mk.Seq] = true
	}
	for s := range sent {
		if !seen[s] {
			t.Fatalf("seq %d missing", s)
		}
	}
}

func TestRunAnswersCommands(t *testing.T) {
	core := newFakeCore(t)
	var mu sync.Mutex
	var got []proto.CommandKind
	n, err := Dial(context.Background(), Config{Addr: core.ln.Addr().String(), NodeID: 5, NodeName: "n5", Pots: 2,
		OnCommand: func(c proto.NodeCommand, _ time.Time) {
			mu.Lock()
			got = append(got, c.Command.Kind)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, 10*time.Millisecond) }()

	tests := []struct {
		give proto.Command
		want int // messages the node answers with
	}{
		{proto.Command{Kind: proto.CmdDeployPot, PotID: "cowrie-1"}, 1},
		{proto.Command{Kind: proto.CmdStopPot, PotID: "cowrie-1"}, 1},
		{proto.Command{Kind: proto.CmdGetInstalledPots}, 2},
		{proto.Command{Kind: proto.CmdInstallPot, PotID: "x", Install: &proto.InstallPot{PotID: "x", HoneypotType: "cowrie"}}, 2},
	}
	want := 0
	for _, tt := range tests {
		core.send(t, &proto.NodeCommand{NodeID: 5, Command: tt.give})
		want += tt.want
		eventually(t, func() bool { return count[*proto.PotStatusUpdate](core.messages()) == want })
	}
	eventually(t, func() bool { return count[*proto.NodeStatusUpdate](core.messages()) >= 2 }) // heartbeats
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	eventually(t, func() bool { return count[*proto.NodeDrop](core.messages()) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(tests) || n.Commands() != uint64(len(tests)) {
		t.Errorf("OnCommand saw %v, Commands() = %d; want %d commands", got, n.Commands(), len(tests))
	}
}

func TestStoredSample(t *testing.T) {
	for _, d := range Dialects {
		b, err := StoredSample(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		var ev bus.AttackEvent
		if err := json.Unmarshal(b, &ev); err != nil || ev.PotID != PotID(0) {
			t.Errorf("%s: %s does not read back as an AttackEvent (%v)", d, b, err)
		}
		if _, ok := marker.Find(b); !ok {
			t.Errorf("%s: stored sample lost the mark: %s", d, b)
		}
		t.Logf("%s: %d bytes stored", d, len(b))
	}
}
