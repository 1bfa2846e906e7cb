package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api/internal/events"
	"github.com/labstack/echo/v4"
)

// EventsPage is the answer of GET /api/v1/events.
type EventsPage struct {
	Events     []events.Event `json:"events"`
	NextCursor *string        `json:"next_cursor"`
	// Scanned is how many stored events the query examined.
	Scanned int `json:"scanned"`
	// ScanLimited is true when the query stopped at the scan bound before
	// filling the page; next_cursor continues it.
	ScanLimited bool `json:"scan_limited"`
}

func (h *handler) listEvents(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	var q events.Query
	if q.NodeID, err = nodeIDFilter(c); err != nil {
		return err
	}
	if q.PotID, err = filterParam(c, "pot_id"); err != nil {
		return err
	}
	if v, err := filterParam(c, "event_type"); err != nil {
		return err
	} else if v != nil {
		q.EventType = *v
	}
	if v, err := filterParam(c, "src_ip"); err != nil {
		return err
	} else if v != nil {
		if _, err := netip.ParseAddr(*v); err != nil {
			return badRequest(CodeInvalidFilter, "src_ip must be an IPv4 or IPv6 address")
		}
		q.SrcIP = *v
	}
	if q.Since, err = timeParam(c, "since"); err != nil {
		return err
	}
	if q.Until, err = timeParam(c, "until"); err != nil {
		return err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return badRequest(CodeInvalidFilter, "until is before since")
	}
	order := c.QueryParam("order")
	switch order {
	case "", "newest":
		order, q.Newest = "newest", true
	case "oldest":
	default:
		return badRequest(CodeInvalidParameter, "order must be newest or oldest")
	}
	if q.Limit, err = limitParam(c, defaultEventPage, maxEventPage); err != nil {
		return err
	}
	kind := "e" + order[:1]
	if pos, ok, err := decodeCursor(c, kind); err != nil {
		return err
	} else if ok {
		if q.After, err = cursorUint(pos); err != nil {
			return err
		}
		if q.After == 0 {
			return badRequest(CodeInvalidCursor, "cursor is not one this endpoint returned")
		}
	}
	q.MaxScan = h.EventsMaxScan
	p, err := b.Events.Query(c.Request().Context(), q)
	if err != nil {
		return unavailable("reading events", err)
	}
	out := EventsPage{Events: p.Events, Scanned: p.Scanned, ScanLimited: p.Limited}
	if out.Events == nil {
		out.Events = []events.Event{}
	}
	if p.Next != 0 {
		cur := encodeCursor(kind, strconv.FormatUint(p.Next, 10))
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}

// Stats is the answer of GET /api/v1/stats.
type Stats struct {
	Nodes  NodeStats  `json:"nodes"`
	Pots   PotStats   `json:"honeypots"`
	Events EventStats `json:"events"`
}

// NodeStats counts nodes.
type NodeStats struct {
	Total        int            `json:"total"`
	Connected    int            `json:"connected"`
	Disconnected int            `json:"disconnected"`
	ByStatus     map[string]int `json:"by_status"`
}

// PotStats counts pots.
type PotStats struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
}

// EventStats summarizes recent attack events.
type EventStats struct {
	// Stored is the number of events in the stream.
	Stored uint64 `json:"stored"`
	// LastHour and LastDay are exact counts (from stream sequences).
	LastHour uint64 `json:"last_hour"`
	LastDay  uint64 `json:"last_day"`
	// The breakdowns come from a scan of the newest events of the last
	// day, bounded by Scan.Limit.
	LastHourByType map[string]int `json:"last_hour_by_type"`
	LastDayByType  map[string]int `json:"last_day_by_type"`
	TopSourceIPs   []IPCount      `json:"top_source_ips"`
	Scan           ScanInfo       `json:"scan"`
}

// IPCount is one source address and its events in the scan.
type IPCount struct {
	SrcIP  string `json:"src_ip"`
	Events int    `json:"events"`
}

// ScanInfo says how much of the last day the breakdowns cover.
type ScanInfo struct {
	Limit   int `json:"limit"`
	Scanned int `json:"scanned"`
	// Complete is true when the scan covered every event of the last day.
	Complete bool `json:"complete"`
	// Since is the stored time of the oldest event scanned.
	Since *time.Time `json:"since"`
}

const topIPs = 10

func (h *handler) stats(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out Stats
	alive := aliveFunc(ctx, b)
	out.Nodes.ByStatus = map[string]int{}
	b.View.EachNode(func(r *bus.NodeRecord) {
		out.Nodes.Total++
		if r.Live(alive) {
			out.Nodes.Connected++
		}
		out.Nodes.ByStatus[string(r.Status)]++
	})
	out.Nodes.Disconnected = out.Nodes.Total - out.Nodes.Connected
	out.Pots.ByStatus = map[string]int{}
	b.View.EachPot(func(p *bus.PotRecord) {
		out.Pots.Total++
		out.Pots.ByStatus[string(p.Status)]++
	})

	es, err := h.eventStats(ctx, b)
	if err != nil {
		return err
	}
	out.Events = es
	return c.JSON(http.StatusOK, out)
}

// eventStats computes the event statistics, or reuses ones computed less
// than StatsCacheTTL ago: a dashboard polling every replica every second
// then costs one bounded scan per replica per TTL.
func (h *handler) eventStats(ctx context.Context, b *Backend) (EventStats, error) {
	h.statsMu.Lock()
	defer h.statsMu.Unlock()
	if h.StatsCacheTTL > 0 && time.Since(h.statsAt) < h.StatsCacheTTL {
		return h.statsLast, nil
	}
	var es EventStats
	now := time.Now()
	hour, day := now.Add(-time.Hour), now.Add(-24*time.Hour)
	first, last, err := b.Events.Bounds(ctx)
	if err != nil {
		return es, unavailable("reading events", err)
	}
	if last >= first {
		es.Stored = last - first + 1
	}
	countSince := func(t time.Time) (uint64, error) {
		seq, err := b.Events.SeqAt(ctx, t)
		if err != nil || seq == 0 || seq > last {
			return 0, err
		}
		return last - seq + 1, nil
	}
	if es.LastHour, err = countSince(hour); err != nil {
		return es, unavailable("reading events", err)
	}
	if es.LastDay, err = countSince(day); err != nil {
		return es, unavailable("reading events", err)
	}
	es.LastHourByType, es.LastDayByType = map[string]int{}, map[string]int{}
	ips := map[string]int{}
	es.Scan.Limit = h.StatsScan
	var oldest time.Time
	_, scanned, limited, err := b.Events.Scan(ctx, events.Query{Newest: true, Since: day, Limit: h.StatsScan, MaxScan: h.StatsScan},
		func(ev *events.Event) bool {
			if ev.StoredAt.After(hour) {
				es.LastHourByType[ev.EventType]++
			}
			es.LastDayByType[ev.EventType]++
			if ev.SrcIP != "" {
				ips[ev.SrcIP]++
			}
			oldest = ev.StoredAt
			return true
		})
	if err != nil {
		return es, unavailable("reading events", err)
	}
	es.Scan.Scanned = scanned
	es.Scan.Complete = !limited && uint64(scanned) >= es.LastDay
	es.Scan.Since = optTime(oldest)
	es.TopSourceIPs = make([]IPCount, 0, len(ips))
	for ip, n := range ips {
		es.TopSourceIPs = append(es.TopSourceIPs, IPCount{SrcIP: ip, Events: n})
	}
	sort.Slice(es.TopSourceIPs, func(i, j int) bool {
		a, b := es.TopSourceIPs[i], es.TopSourceIPs[j]
		return a.Events > b.Events || a.Events == b.Events && a.SrcIP < b.SrcIP
	})
	if len(es.TopSourceIPs) > topIPs {
		es.TopSourceIPs = es.TopSourceIPs[:topIPs]
	}
	h.statsAt, h.statsLast = time.Now(), es
	return es, nil
}
