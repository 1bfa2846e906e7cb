package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

// conformanceDir holds the shared transcripts (../shared/conformance of
// the repository's parent, as CI lays it out).
const conformanceDir = "../../../shared/conformance"

type conformanceExpect struct {
	Node struct {
		NodeID    uint64 `json:"node_id"`
		NodeName  string `json:"node_name"`
		NodeType  string `json:"node_type"`
		Connected bool   `json:"connected"`
	} `json:"node"`
	Pots []struct {
		PotID   string `json:"pot_id"`
		PotType string `json:"pot_type"`
		Status  string `json:"status"`
	} `json:"pots"`
	AttackEvents     int      `json:"attack_events"`
	AttackEventTypes []string `json:"attack_event_types"`
	NodeEvents       []struct {
		Type        string  `json:"type"`
		Message     *string `json:"message"`
		Description *string `json:"description"`
	} `json:"node_events"`
}

// transcript returns the envelopes of a .jsonl file (comment lines
// dropped), each followed by a newline.
func transcript(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestConformance feeds each shared transcript over TCP and checks the
// state its expect.json describes: the node record (disconnected after the
// transcript's close), pot records, attack events in the stream and node
// events on lifecycle subjects.
func TestConformance(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(conformanceDir, "expect.json"))
	if err != nil {
		t.Fatalf("conformance transcripts (%s, beside the repository): %v", conformanceDir, err)
	}
	var expects map[string]conformanceExpect
	if err := json.Unmarshal(raw, &expects); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(expects))
	for name := range expects {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("expect.json lists no transcript")
	}
	ns := startNATS(t)
	tg := startGateway(t, ns)
	lc := tg.watchLifecycle(t)

	for _, name := range names {
		want := expects[name]
		t.Run(name, func(t *testing.T) {
			data := transcript(t, filepath.Join(conformanceDir, name))
			n := dialNode(t, tg.Addr().String())
			if err := n.raw(data); err != nil {
				t.Fatal(err)
			}
			ack := n.ack()
			if !ack.Accepted || ack.NodeID != want.Node.NodeID {
				t.Fatalf("ack = %+v, want accepted for node %d", ack, want.Node.NodeID)
			}
			// Transcripts without NodeDrop end by closing the socket.
			_ = n.conn.(interface{ CloseWrite() error }).CloseWrite()
			if !n.closed() {
				t.Fatal("gateway did not close the connection")
			}
			id := want.Node.NodeID
			rec := tg.waitNode(t, id, "recorded disconnected", func(r bus.NodeRecord) bool { return r.Connected == want.Node.Connected })
			if rec.NodeName != want.Node.NodeName || string(rec.NodeType) != want.Node.NodeType || rec.NodeIDStr != proto.FormatNodeID(id) {
				t.Errorf("node record = %+v, want %+v", rec, want.Node)
			}

			for _, wp := range want.Pots {
				// Records are written asynchronously: wait for the final one.
				eventually(t, "pot "+wp.PotID+" = "+wp.PotType+" "+wp.Status, func() bool {
					p, ok := tg.potRecord(t, id, wp.PotID)
					return ok && p.PotType == wp.PotType && string(p.Status) == wp.Status && p.NodeID == id
				})
			}

			var events []storedEvent
			eventually(t, "attack events stored", func() bool {
				events = tg.nodeEvents(t, id)
				return len(events) >= want.AttackEvents
			})
			if len(events) != want.AttackEvents {
				t.Errorf("%d attack events, want %d", len(events), want.AttackEvents)
			}
			var types []string
			for _, e := range events {
				types = append(types, e.Event.EventType)
				if e.Event.NodeID != id || e.Event.NodeName != want.Node.NodeName || e.Event.NodeIDStr != proto.FormatNodeID(id) {
					t.Errorf("event %+v does not name node %d %q", e.Event, id, want.Node.NodeName)
				}
				if e.Subject != tg.c.Event(id, e.Event.PotID) {
					t.Errorf("event on subject %q, want %q", e.Subject, tg.c.Event(id, e.Event.PotID))
				}
			}
			if want.AttackEventTypes != nil && !slices.Equal(types, want.AttackEventTypes) {
				t.Errorf("event types %v, want %v", types, want.AttackEventTypes)
			}

			eventually(t, "disconnected lifecycle message", func() bool { return len(lc.of(id, bus.LifecycleDisconnected)) == 1 })
			got := lc.of(id, bus.LifecycleEvent)
			if len(got) != len(want.NodeEvents) {
				t.Fatalf("%d node events, want %d: %+v", len(got), len(want.NodeEvents), got)
			}
			for i, we := range want.NodeEvents {
				ev := got[i].Event
				if ev == nil || string(ev.Type) != we.Type ||
					we.Message != nil && ev.Message != *we.Message ||
					we.Description != nil && ev.Description != *we.Description {
					t.Errorf("node event %d = %+v, want %+v", i, ev, we)
				}
			}
			if r := lc.of(id, bus.LifecycleRegistered); len(r) != 1 || r[0].GatewayID != tg.cfg.GatewayID {
				t.Errorf("registered lifecycle messages: %+v", r)
			}
		})
	}
}

// TestQuirkKeepsPotStatus: a PotStatusUpdate with an empty status (the Go
// node's forwarded attack event) becomes an attack event of unknown type
// and leaves the pot's recorded status and type alone.
func TestQuirkKeepsPotStatus(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(5, "quirky")
	msg := "Honeypot started"
	n.send(&proto.PotStatusUpdate{NodeID: 5, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotRunning, Message: &msg})
	attack := "login attempt [root/123456] failed"
	n.send(&proto.PotStatusUpdate{NodeID: 5, PotID: "cowrie-01", Status: "", Message: &attack})
	n.send(&proto.PotStatusUpdate{NodeID: 5, PotID: "cowrie-01", Status: "Bogus", Message: &attack})
	var events []storedEvent
	eventually(t, "two quirk events", func() bool { events = tg.nodeEvents(t, 5); return len(events) == 2 })
	for _, e := range events {
		if e.Event.EventType != bus.UnknownEventType || e.Event.Message == nil || *e.Event.Message != attack {
			t.Errorf("quirk event = %+v", e.Event)
		}
	}
	if string(events[1].Event.Data) != `{"status":"Bogus"}` {
		t.Errorf("unknown status kept in data: %s", events[1].Event.Data)
	}
	var p bus.PotRecord
	eventually(t, "pot record", func() bool { var ok bool; p, ok = tg.potRecord(t, 5, "cowrie-01"); return ok })
	if p.Status != proto.PotRunning || p.PotType != "cowrie" || p.Message != msg {
		t.Errorf("pot record = %+v, want Running cowrie %q", p, msg)
	}
}
