package events

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/testbus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T) (*Store, *testbus.Bus) { return newStoreB(t) }

func newStoreB(t testing.TB) (*Store, *testbus.Bus) {
	t.Helper()
	srv := testbus.Server(t)
	nc := testbus.Connect(t, srv)
	b := testbus.MustCreate(t, nc, bus.Default())
	return New(nc, b.Stream, bus.Default(), 5*time.Second), b
}

func attack(i int, node uint64, pot, typ, ip string) bus.AttackEvent {
	data, _ := json.Marshal(map[string]string{"src_ip": ip})
	return bus.AttackEvent{
		EventID: fmt.Sprint("ev-", i), NodeID: node, NodeIDStr: fmt.Sprint(node), PotID: pot,
		EventType: typ, Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC(), SrcIP: ip, Data: data,
	}
}

func ptr[T any](v T) *T { return &v }

// all returns every stored event in sequence order, read one by one.
func all(t *testing.T, s *Store) []Event {
	t.Helper()
	var out []Event
	_, _, _, err := s.Scan(context.Background(), Query{}, func(ev *Event) bool {
		out = append(out, *ev)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func matches(t *testing.T, q Query, e Event) bool {
	ev, err := e.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return (q.NodeID == nil || ev.NodeID == *q.NodeID) &&
		(q.PotID == nil || ev.PotID == *q.PotID) &&
		strings.HasPrefix(ev.EventType, q.EventType) &&
		(q.SrcIP == "" || ev.SrcIP == q.SrcIP) &&
		(q.Since.IsZero() || !e.StoredAt.Before(q.Since)) &&
		(q.Until.IsZero() || !e.StoredAt.After(q.Until))
}

// pages follows cursors until the end and returns every sequence seen.
func pages(t *testing.T, s *Store, q Query) []uint64 {
	t.Helper()
	var seqs []uint64
	for range 10000 {
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > q.Limit {
			t.Fatalf("page of %d events, limit %d", len(p.Events), q.Limit)
		}
		if !p.Limited && p.Scanned > q.MaxScan && q.MaxScan > 0 {
			t.Fatalf("scanned %d, MaxScan %d", p.Scanned, q.MaxScan)
		}
		for _, ev := range p.Events {
			seqs = append(seqs, ev.Seq)
		}
		if p.Next == 0 {
			return seqs
		}
		q.After = p.Next
	}
	t.Fatal("pagination does not end")
	return nil
}

func TestQueryMatchesReference(t *testing.T) {
	s, b := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	nodes := []uint64{1, 18446744073709551615, 42}
	pots := []string{"cowrie-01", "a.b", "*"}
	types := []string{"cowrie.login.failed", "cowrie.login.success", "cowrie.session.connect", "honnypotter.login.failed"}
	ips := []string{"10.0.0.1", "10.0.0.2", "192.0.2.7"}
	const n = 1500
	for i := range n {
		// A skewed mix: node 42 is rare, so its windows must grow.
		node := nodes[rng.IntN(2)]
		if rng.IntN(100) == 0 {
			node = nodes[2]
		}
		b.MustPublishEvent(t, attack(i, node, pots[rng.IntN(3)], types[rng.IntN(4)], ips[rng.IntN(3)]))
	}
	ref := all(t, s)
	if len(ref) != n {
		t.Fatalf("stored %d events, want %d", len(ref), n)
	}
	since, until := ref[400].StoredAt, ref[1100].StoredAt
	queries := []Query{
		{},
		{NodeID: ptr(nodes[1])},
		{NodeID: ptr(nodes[2])},
		{NodeID: ptr(nodes[2]), Limit: 1},
		{EventType: "honnypotter.", Limit: 7},
		{PotID: ptr("a.b")},
		{PotID: ptr("*")},
		{NodeID: ptr(nodes[0]), PotID: ptr("cowrie-01")},
		{EventType: "cowrie.login"},
		{EventType: "honnypotter."},
		{SrcIP: "192.0.2.7"},
		{NodeID: ptr(nodes[2]), SrcIP: "10.0.0.1", EventType: "cowrie"},
		{Since: since},
		{Until: until},
		{Since: since, Until: until, NodeID: ptr(nodes[2])},
		{EventType: "nothing"},
		{NodeID: ptr(uint64(7))},
	}
	for i, base := range queries {
		var want []uint64
		for _, ev := range ref {
			if matches(t, base, ev) {
				want = append(want, ev.Seq)
			}
		}
		for _, newest := range []bool{false, true} {
			for _, limit := range []int{50, 1000} {
				t.Run(fmt.Sprintf("q%d/newest=%v/limit=%d", i, newest, limit), func(t *testing.T) {
					q := base
					q.Newest = newest
					if q.Limit == 0 {
						q.Limit = limit
					} else if limit != 50 {
						t.Skip("fixed limit")
					}
					got := pages(t, s, q)
					w := slices.Clone(want)
					if newest {
						slices.Reverse(w)
					}
					if !slices.Equal(got, w) {
						t.Fatalf("got %d events %v..., want %d %v...", len(got), head(got), len(w), head(w))
					}
				})
			}
		}
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 5)] }

func TestQueryMaxScan(t *testing.T) {
	s, b := newStore(t)
	for i := range 500 {
		typ := "cowrie.login.failed"
		if i == 10 || i == 490 {
			typ = "rare.event"
		}
		b.MustPublishEvent(t, attack(i, 1, "p", typ, "10.0.0.1"))
	}
	for _, newest := range []bool{true, false} {
		t.Run(fmt.Sprint("newest=", newest), func(t *testing.T) {
			q := Query{EventType: "rare.", Newest: newest, Limit: 10, MaxScan: 100}
			var got []uint64
			limitedPages := 0
			for range 100 {
				p, err := s.Query(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				if p.Scanned > q.MaxScan {
					t.Fatalf("scanned %d > MaxScan %d", p.Scanned, q.MaxScan)
				}
				if p.Limited {
					limitedPages++
				}
				for _, ev := range p.Events {
					got = append(got, ev.Seq)
				}
				if p.Next == 0 {
					break
				}
				q.After = p.Next
			}
			want := []uint64{11, 491}
			if newest {
				want = []uint64{491, 11}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if limitedPages == 0 {
				t.Error("no page reported Limited")
			}
		})
	}
}

func TestQueryEmptyStream(t *testing.T) {
	s, _ := newStore(t)
	for _, newest := range []bool{true, false} {
		p, err := s.Query(context.Background(), Query{Newest: newest, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 0 || p.Next != 0 {
			t.Errorf("newest=%v: got %d events, next %d", newest, len(p.Events), p.Next)
		}
	}
	seq, err := s.SeqAt(context.Background(), time.Now())
	if err != nil || seq != 0 {
		t.Errorf("SeqAt = %d, %v; want 0, nil", seq, err)
	}
}

func TestQueryDecodesEvent(t *testing.T) {
	s, b := newStore(t)
	ev := attack(1, 18446744073709551615, "a.b", "cowrie.login.failed", "198.51.100.1")
	ev.Message = ptr("hello")
	seq := b.MustPublishEvent(t, ev)
	// A message that is not an attack event is skipped.
	if _, err := b.JS.Publish(context.Background(), bus.Default().Event(1, "x"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	p, err := s.Query(context.Background(), Query{Newest: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 {
		t.Fatalf("got %d events, want 1", len(p.Events))
	}
	got, err := p.Events[0].Decode()
	if err != nil {
		t.Fatal(err)
	}
	if p.Events[0].Seq != seq || p.Events[0].StoredAt.IsZero() || p.Events[0].EventType != "cowrie.login.failed" || got.NodeID != ev.NodeID || got.PotID != "a.b" || got.SrcIP != "198.51.100.1" ||
		*got.Message != "hello" {
		t.Errorf("got %+v", got)
	}
}

func TestEventMarshalJSON(t *testing.T) {
	ev := Event{Seq: 42, StoredAt: time.Date(2024, 1, 15, 10, 30, 0, 5, time.UTC), Raw: json.RawMessage(`{"event_id":"x","data":{}}`)}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"seq":42,"stored_at":"2024-01-15T10:30:00.000000005Z","event_id":"x","data":{}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	b, err = json.Marshal(Event{Seq: 1, StoredAt: time.Unix(0, 0), Raw: json.RawMessage(`{ }`)})
	if err != nil || string(b) != `{"seq":1,"stored_at":"1970-01-01T00:00:00Z"}` {
		t.Errorf("empty object: %s, %v", b, err)
	}
}

func TestNeedle(t *testing.T) {
	tests := []struct {
		key, give string
		want      string
	}{
		{"event_type", "cowrie.login", `"event_type":"cowrie.login`},
		{"src_ip", "::1", `"src_ip":"::1`},
		{"event_type", "a<b", ""},
		{"event_type", "é", ""},
		{"event_type", `a"b`, ""},
		{"event_type", "", ""},
	}
	for _, tt := range tests {
		if got := string(needle(tt.key, tt.give)); got != tt.want {
			t.Errorf("needle(%q, %q) = %q, want %q", tt.key, tt.give, got, tt.want)
		}
	}
}

func TestUnavailable(t *testing.T) {
	s, b := newStore(t)
	if err := b.JS.DeleteStream(context.Background(), bus.Default().EventsStream()); err != nil {
		t.Fatal(err)
	}
	_, err := s.Query(context.Background(), Query{Newest: true, Limit: 10})
	if err == nil {
		t.Fatal("query on a deleted stream succeeded")
	}
}
