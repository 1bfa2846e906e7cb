package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
)

type eventJSON struct {
	Seq       uint64          `json:"seq"`
	StoredAt  time.Time       `json:"stored_at"`
	EventID   string          `json:"event_id"`
	NodeID    uint64          `json:"node_id"`
	NodeIDStr string          `json:"node_id_str"`
	PotID     string          `json:"pot_id"`
	EventType string          `json:"event_type"`
	SrcIP     string          `json:"src_ip"`
	Data      json.RawMessage `json:"data"`
}

type eventsPage struct {
	Events      []eventJSON `json:"events"`
	NextCursor  *string     `json:"next_cursor"`
	Scanned     int         `json:"scanned"`
	ScanLimited bool        `json:"scan_limited"`
}

func attack(i int, node uint64, pot, typ, ip string) bus.AttackEvent {
	data, _ := json.Marshal(map[string]any{"src_ip": ip, "username": "root"})
	now := time.Now().UTC()
	return bus.AttackEvent{EventID: fmt.Sprint("ev-", i), NodeID: node, NodeIDStr: fmt.Sprint(node), NodeName: "n",
		PotID: pot, PotType: "cowrie", EventType: typ, Timestamp: now, ReceivedAt: now, SrcIP: ip, Data: data}
}

// storeEvents publishes 60 events: node 1 pot cowrie-01 (even i), node
// maxID pot a.b (odd i); every third a login success from 192.0.2.9.
func storeEvents(t *testing.T, e *env) []uint64 {
	var seqs []uint64
	for i := range 60 {
		node, pot := uint64(1), "cowrie-01"
		if i%2 == 1 {
			node, pot = maxID, "a.b"
		}
		typ, ip := "cowrie.login.failed", "198.51.100.1"
		if i%3 == 0 {
			typ, ip = "cowrie.login.success", "192.0.2.9"
		}
		seqs = append(seqs, e.bus.MustPublishEvent(t, attack(i, node, pot, typ, ip)))
	}
	return seqs
}

func seqsOf(evs []eventJSON) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

func TestEvents(t *testing.T) {
	e := start(t)
	seqs := storeEvents(t, e)
	rev := slices.Clone(seqs)
	slices.Reverse(rev)
	pick := func(s []uint64, f func(i int) bool) []uint64 {
		var out []uint64
		for i, v := range s {
			if f(i) {
				out = append(out, v)
			}
		}
		return out
	}
	// Index i of seqs is event i.
	tests := []struct {
		give string
		want []uint64
	}{
		{"", rev},
		{"?order=newest", rev},
		{"?order=oldest", seqs},
		{"?node_id=1&order=oldest", pick(seqs, func(i int) bool { return i%2 == 0 })},
		{"?node_id=18446744073709551615&order=oldest", pick(seqs, func(i int) bool { return i%2 == 1 })},
		{"?pot_id=a.b&order=oldest", pick(seqs, func(i int) bool { return i%2 == 1 })},
		{"?node_id=1&pot_id=a.b", nil},
		{"?event_type=cowrie.login.succ&order=oldest", pick(seqs, func(i int) bool { return i%3 == 0 })},
		{"?event_type=cowrie.&order=oldest", seqs},
		{"?event_type=honnypotter", nil},
		{"?src_ip=192.0.2.9&node_id=1&order=oldest", pick(seqs, func(i int) bool { return i%6 == 0 })},
		{"?limit=5", rev[:5]},
		{"?limit=5&order=oldest", seqs[:5]},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var p eventsPage
			e.get("/api/v1/events"+tt.give).wantStatus(t, http.StatusOK).decode(t, &p)
			if got := seqsOf(p.Events); !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			if p.Events == nil {
				t.Error("events is null, want []")
			}
		})
	}

	// An event carries everything the gateway stored.
	var p eventsPage
	e.get("/api/v1/events?limit=1").decode(t, &p)
	if ev := p.Events[0]; ev.NodeID != maxID || ev.NodeIDStr != "18446744073709551615" || ev.PotID != "a.b" ||
		ev.EventID != "ev-59" || ev.StoredAt.IsZero() || !strings.Contains(string(ev.Data), `"username":"root"`) {
		t.Errorf("event = %+v", ev)
	}

	// since/until select by stored time.
	var all eventsPage
	e.get("/api/v1/events?order=oldest&limit=1000").decode(t, &all)
	since, until := all.Events[10].StoredAt, all.Events[20].StoredAt
	q := "?order=oldest&since=" + url.QueryEscape(since.Format(time.RFC3339Nano)) + "&until=" + url.QueryEscape(until.Format(time.RFC3339Nano))
	e.get("/api/v1/events"+q).decode(t, &p)
	if got := seqsOf(p.Events); !slices.Equal(got, seqs[10:21]) {
		t.Errorf("since/until: %v, want %v", got, seqs[10:21])
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	e.get("/api/v1/events?since="+future).decode(t, &p)
	if len(p.Events) != 0 || p.NextCursor != nil {
		t.Errorf("events after now: %v", seqsOf(p.Events))
	}
}

func TestEventsPagination(t *testing.T) {
	e := start(t)
	seqs := storeEvents(t, e)
	for _, order := range []string{"newest", "oldest"} {
		for _, filter := range []string{"", "&node_id=1", "&event_type=cowrie.login.success"} {
			t.Run(order+filter, func(t *testing.T) {
				var want []uint64
				var all eventsPage
				e.get("/api/v1/events?limit=1000&order="+order+filter).decode(t, &all)
				want = seqsOf(all.Events)
				if len(want) == 0 || len(want) > len(seqs) {
					t.Fatalf("reference page has %d events", len(want))
				}
				var got []uint64
				path := "/api/v1/events?limit=7&order=" + order + filter
				for range 100 {
					var p eventsPage
					e.get(path).wantStatus(t, http.StatusOK).decode(t, &p)
					got = append(got, seqsOf(p.Events)...)
					if p.NextCursor == nil {
						break
					}
					path = "/api/v1/events?limit=7&order=" + order + filter + "&cursor=" + url.QueryEscape(*p.NextCursor)
				}
				if !slices.Equal(got, want) {
					t.Errorf("paged %v, want %v", got, want)
				}
			})
		}
	}
	// A cursor belongs to its order.
	var p eventsPage
	e.get("/api/v1/events?limit=5").decode(t, &p)
	e.get("/api/v1/events?order=oldest&cursor="+url.QueryEscape(*p.NextCursor)).wantError(t, http.StatusBadRequest, "INVALID_CURSOR")
}

func TestEventsScanBound(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.EventsMaxScan = 1000 }))
	for i := range 1500 {
		e.bus.MustPublishEvent(t, attack(i, 1, "p", "cowrie.login.failed", "198.51.100.1"))
	}
	rare := e.bus.MustPublishEvent(t, attack(2000, 1, "p", "rare.thing", "198.51.100.1"))
	var p eventsPage
	// The rare event is the newest: found at once.
	e.get("/api/v1/events?event_type=rare.").wantStatus(t, http.StatusOK).decode(t, &p)
	if !slices.Equal(seqsOf(p.Events), []uint64{rare}) {
		t.Errorf("got %v, want [%d]", seqsOf(p.Events), rare)
	}
	// Oldest first, the scan stops at the bound and says so.
	e.get("/api/v1/events?event_type=rare.&order=oldest").wantStatus(t, http.StatusOK).decode(t, &p)
	if len(p.Events) != 0 || !p.ScanLimited || p.NextCursor == nil || p.Scanned > 1000 {
		t.Fatalf("page = %+v", p)
	}
	e.get("/api/v1/events?event_type=rare.&order=oldest&cursor="+url.QueryEscape(*p.NextCursor)).decode(t, &p)
	if !slices.Equal(seqsOf(p.Events), []uint64{rare}) {
		t.Errorf("continued scan: %v", seqsOf(p.Events))
	}
}
