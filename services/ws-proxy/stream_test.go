package wsproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	wsproxy "github.com/honeybee/core/services/ws-proxy"
)

// describe names a frame for comparisons: "event 1 p-a cowrie.login.failed",
// "node 1 status", "pot 2 p-b Stopped".
func describe(t *testing.T, f frame) string {
	t.Helper()
	switch f.Type {
	case "event":
		ev := f.event(t)
		return fmt.Sprintf("event %d %s %s", ev.NodeID, ev.PotID, ev.EventType)
	case "node":
		var l bus.NodeLifecycle
		if err := json.Unmarshal(f.Data, &l); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("node %d %s", l.NodeID, l.Kind)
	case "pot":
		var r bus.PotRecord
		if err := json.Unmarshal(f.Data, &r); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("pot %d %s %s", r.NodeID, r.PotID, r.Status)
	}
	return f.Type
}

// readUntilAck reads frames up to an ack and describes them.
func readUntilAck(t *testing.T, conn *websocket.Conn) []string {
	t.Helper()
	var got []string
	for {
		f := mustRead(t, conn)
		if f.Type == "ack" {
			return got
		}
		got = append(got, describe(t, f))
	}
}

func TestStreamLiveFilters(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(nil)

	allEvents := []string{"event 1 p-a cowrie.login.failed", "event 1 p-b cowrie.session.connect",
		"event 2 p-a cowrie.login.success", "event 2 p-b honnypotter.login.failed"}
	allNodes := []string{"node 1 status", "node 2 registered"}
	allPots := []string{"pot 1 p-a Running", "pot 2 p-b Stopped"}
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"all", "", slices.Concat(allEvents, allNodes, allPots)},
		{"node", "node_id=1", []string{allEvents[0], allEvents[1], allNodes[0], allPots[0]}},
		{"two nodes", "node_id=1,2&types=node", allNodes},
		{"pot", "pot_id=p-b", []string{allEvents[1], allEvents[3], allNodes[0], allNodes[1], allPots[1]}},
		{"pot, no nodes", "pot_id=p-b&types=event,pot", []string{allEvents[1], allEvents[3], allPots[1]}},
		{"event type prefix", "event_type=cowrie.login.", []string{allEvents[0], allEvents[2], allNodes[0], allNodes[1], allPots[0], allPots[1]}},
		{"state only", "types=node,pot", slices.Concat(allNodes, allPots)},
		{"events of one pot", "node_id=1&pot_id=p-a&types=event", []string{allEvents[0]}},
		{"two prefixes", "event_type=honnypotter.&event_type=cowrie.session.&types=event", []string{allEvents[1], allEvents[3]}},
	}
	conns := make([]*websocket.Conn, len(tests))
	for i, tt := range tests {
		conns[i] = p.dial(t, "/stream?"+tt.give, nil)
		if f := mustRead(t, conns[i]); f.Type != "ack" {
			t.Fatalf("%s: first frame %q, want ack", tt.name, f.Type)
		}
	}

	seqs := []uint64{
		e.event(1, "p-a", "cowrie.login.failed"),
		e.event(1, "p-b", "cowrie.session.connect"),
		e.event(2, "p-a", "cowrie.login.success"),
		e.event(2, "p-b", "honnypotter.login.failed"),
	}
	e.publish(c.Node(1, bus.LifecycleStatus), bus.NodeLifecycle{Kind: bus.LifecycleStatus, NodeID: 1, NodeIDStr: "1", Status: proto.NodeRunning})
	e.publish(c.Node(2, bus.LifecycleRegistered), bus.NodeLifecycle{Kind: bus.LifecycleRegistered, NodeID: 2, NodeIDStr: "2"})
	e.publish(c.Pot(1, "p-a"), bus.PotRecord{NodeID: 1, NodeIDStr: "1", PotID: "p-a", Status: proto.PotRunning})
	e.publish(c.Pot(2, "p-b"), bus.PotRecord{NodeID: 2, NodeIDStr: "2", PotID: "p-b", Status: proto.PotStopped})
	// Once the proxy has published all of it to the hub, a subscribe's
	// ack queues behind every frame a client will get.
	eventually(t, "upstream consumed", func() bool {
		return p.metric(t, `honeybee_wsproxy_upstream_messages_total{kind="event"}`) == 4 &&
			p.metric(t, `honeybee_wsproxy_upstream_messages_total{kind="node"}`) == 2 &&
			p.metric(t, `honeybee_wsproxy_upstream_messages_total{kind="pot"}`) == 2
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send(t, conns[i], `{"type":"subscribe","types":["node"],"node_id":["999"]}`)
			var got []string
			for {
				f := mustRead(t, conns[i])
				if f.Type == "ack" {
					break
				}
				if f.Type == "event" {
					ev := f.event(t)
					idx := slices.Index(allEvents, describe(t, f))
					if idx < 0 || f.Seq != seqs[idx] {
						t.Errorf("event %v has seq %d", ev, f.Seq)
					}
				}
				got = append(got, describe(t, f))
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
}

func TestStreamSubscribe(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(nil)
	conn := p.dial(t, "/stream?node_id=1", nil)
	if f := mustRead(t, conn); f.Type != "ack" || !slices.Equal(f.Filter.NodeIDs, []string{"1"}) {
		t.Fatalf("first ack %+v", f)
	}

	send(t, conn, `{"type":"subscribe","id":7,"node_id":[18446744073709551615, "2"],"event_type":"cowrie.","types":["event"]}`)
	f := mustRead(t, conn)
	if f.Type != "ack" || string(f.ID) != "7" || !slices.Equal(f.Filter.NodeIDs, []string{"18446744073709551615", "2"}) ||
		!slices.Equal(f.Filter.EventTypes, []string{"cowrie."}) || !slices.Equal(f.Filter.Types, []string{"event"}) {
		t.Fatalf("ack %+v", f)
	}
	e.event(1, "p", "cowrie.login.failed")         // node 1: no longer wanted
	e.event(2, "p", "honnypotter.login.failed")    // wrong type
	want := e.event(2, "p", "cowrie.login.failed") // wanted
	e.event(18446744073709551615, "p", "cowrie.x") // wanted
	f = mustRead(t, conn)
	if f.Type != "event" || f.Seq != want {
		t.Fatalf("got %s seq %d, want event seq %d", f.Type, f.Seq, want)
	}
	f = mustRead(t, conn)
	if ev := f.event(t); ev.NodeID != 18446744073709551615 || ev.NodeIDStr != "18446744073709551615" {
		t.Fatalf("got %+v", ev)
	}

	// A subscribe with an empty filter gets everything again.
	send(t, conn, `{"type":"subscribe","id":"all"}`)
	if f := mustRead(t, conn); f.Type != "ack" || len(f.Filter.Types) != 3 {
		t.Fatalf("ack %+v", f)
	}
	seq := e.event(1, "p", "x")
	if f := mustRead(t, conn); f.Seq != seq {
		t.Fatalf("got seq %d, want %d", f.Seq, seq)
	}
}

// TestStreamBadInput: each kind of bad input gets an error frame or a
// close with a reason, and another client on the same proxy is unaffected.
func TestStreamBadInput(t *testing.T) {
	e := newEnv(t)
	p := e.startProxy(func(cfg *wsproxy.Config) { cfg.ReadLimit = 4096 })
	bystander := p.dial(t, "/stream", nil)
	mustRead(t, bystander) // ack

	errorFrames := []struct {
		name string
		give string
		want string
	}{
		{"not JSON", `{"type":`, "message is not JSON"},
		{"not an object", `[1,2]`, "message must be a JSON object"},
		{"unknown type", `{"type":"unsubscribe","id":"u"}`, `unknown message type "unsubscribe"`},
		{"bad node id", `{"type":"subscribe","id":1,"node_id":["-1"]}`, `bad filter: node_id "-1"`},
		{"bad type", `{"type":"subscribe","id":2,"types":["events"]}`, `bad filter: types: "events"`},
		{"bad value shape", `{"type":"subscribe","id":3,"pot_id":{"a":1}}`, `bad filter`},
		{"empty prefix", `{"type":"subscribe","event_type":[""]}`, `empty prefix`},
		{"too many values", `{"type":"subscribe","pot_id":[` + strings.Repeat(`"a",`, 64) + `"b"]}`, `at most 64`},
	}
	conn := p.dial(t, "/stream?node_id=5", nil)
	mustRead(t, conn)
	for _, tt := range errorFrames {
		t.Run(tt.name, func(t *testing.T) {
			send(t, conn, tt.give)
			f := mustRead(t, conn)
			if f.Type != "error" || !strings.Contains(f.Error, tt.want) {
				t.Fatalf("got %+v, want an error containing %q", f, tt.want)
			}
		})
	}
	// The filter is unchanged after the bad subscribes.
	e.event(6, "p", "x")
	seq := e.event(5, "p", "x")
	if f := mustRead(t, conn); f.Seq != seq {
		t.Fatalf("after bad subscribes: got seq %d, want %d", f.Seq, seq)
	}

	closes := []struct {
		name   string
		typ    websocket.MessageType
		give   []byte
		status websocket.StatusCode
	}{
		{"binary", websocket.MessageBinary, []byte(`{"type":"subscribe"}`), websocket.StatusUnsupportedData},
		{"enormous", websocket.MessageText, []byte(`{"type":"subscribe","pot_id":"` + strings.Repeat("a", 5000) + `"}`), websocket.StatusMessageTooBig},
	}
	for _, tt := range closes {
		t.Run(tt.name, func(t *testing.T) {
			conn := p.dial(t, "/stream", nil)
			mustRead(t, conn)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = conn.Write(ctx, tt.typ, tt.give)
			for {
				_, err := read(t, conn, 5*time.Second)
				if err == nil {
					continue // events published meanwhile
				}
				if got := websocket.CloseStatus(err); got != tt.status {
					t.Fatalf("closed with %v (%v), want %v", got, err, tt.status)
				}
				return
			}
		})
	}

	t.Run("bad query", func(t *testing.T) {
		for _, q := range []string{"node_id=abc", "types=x", "since=-3", "since=1&since=2", "event_type="} {
			_, resp, err := p.tryDial("/stream?"+q, nil)
			if q == "event_type=" {
				// An empty value is no filter at all.
				if err != nil {
					t.Errorf("%s: %v", q, err)
				}
				continue
			}
			if err == nil || resp == nil || resp.StatusCode != 400 {
				t.Errorf("%s: want HTTP 400, got %v", q, err)
				continue
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error.Code != "BAD_FILTER" {
				t.Errorf("%s: body %+v", q, body)
			}
		}
	})

	// The bystander got every event, in order, undisturbed.
	var got []uint64
	for len(got) < 2 {
		f := mustRead(t, bystander)
		got = append(got, f.Seq)
	}
	if got[1] != seq || got[0] != seq-1 {
		t.Fatalf("bystander got %v", got)
	}
}
