package api_test

import (
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/api"
	"github.com/honeybee/core/services/api/internal/testbus"
)

func TestEnrollments(t *testing.T) {
	e := start(t)
	var created struct {
		NodeName   string     `json:"node_name"`
		Source     string     `json:"source"`
		CreatedAt  *time.Time `json:"created_at"`
		Secret     string     `json:"secret"`
		OTPAuthURI string     `json:"otpauth_uri"`
	}
	e.admin("POST", "/api/v1/enrollments", `{"node_name":"sensor 1.eu"}`).wantStatus(t, http.StatusCreated).decode(t, &created)
	if created.NodeName != "sensor 1.eu" || created.Source != bus.TOTPEnrolled || created.CreatedAt == nil {
		t.Errorf("created = %+v", created)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(created.Secret)
	if err != nil || len(key) != 20 || len(created.Secret) != 32 {
		t.Errorf("secret %q: %d bytes, %v", created.Secret, len(key), err)
	}
	u, err := url.Parse(created.OTPAuthURI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != created.Secret ||
		u.Query().Get("issuer") != "HoneyBee" || !strings.HasSuffix(u.Path, "HoneyBee:sensor 1.eu") {
		t.Errorf("otpauth uri %q", created.OTPAuthURI)
	}
	// Stored where the gateway reads it.
	entry, err := e.bus.TOTP.Get(t.Context(), bus.TOTPKey("sensor 1.eu"))
	if err != nil {
		t.Fatal(err)
	}
	var rec bus.TOTPRecord
	if err := json.Unmarshal(entry.Value(), &rec); err != nil || rec.Secret != created.Secret || rec.Source != bus.TOTPEnrolled || rec.NodeName != "sensor 1.eu" {
		t.Errorf("record = %+v, %v", rec, err)
	}
	// A name issued by the gateway (tofu) is listed too.
	testbus.Put(t, e.bus.TOTP, bus.TOTPKey("tofu-node"), bus.TOTPRecord{NodeName: "tofu-node", Secret: "SECRETSECRETSECRETSECRETSECRETSE", Source: bus.TOTPTOFU})

	e.admin("POST", "/api/v1/enrollments", `{"node_name":"sensor 1.eu"}`).wantError(t, http.StatusConflict, "ENROLLMENT_EXISTS")

	r := e.get("/api/v1/enrollments").wantStatus(t, http.StatusOK)
	if strings.Contains(string(r.body), created.Secret) || strings.Contains(string(r.body), "SECRETSECRET") || strings.Contains(string(r.body), "secret") {
		t.Fatalf("list shows a secret: %s", r.body)
	}
	var list struct {
		Enrollments []struct {
			NodeName string `json:"node_name"`
			Source   string `json:"source"`
		} `json:"enrollments"`
	}
	r.decode(t, &list)
	if len(list.Enrollments) != 2 || list.Enrollments[0].NodeName != "sensor 1.eu" || list.Enrollments[1].Source != "tofu" {
		t.Errorf("list = %+v", list)
	}

	e.admin("DELETE", "/api/v1/enrollments/"+url.PathEscape("sensor 1.eu"), "").wantStatus(t, http.StatusOK)
	if _, err := e.bus.TOTP.Get(t.Context(), bus.TOTPKey("sensor 1.eu")); err == nil {
		t.Error("secret still stored after revoke")
	}
	e.admin("DELETE", "/api/v1/enrollments/"+url.PathEscape("sensor 1.eu"), "").wantError(t, http.StatusNotFound, "ENROLLMENT_NOT_FOUND")
	// Enrolling again after a revoke issues a new secret.
	var again struct{ Secret string }
	e.admin("POST", "/api/v1/enrollments", `{"node_name":"sensor 1.eu"}`).wantStatus(t, http.StatusCreated).decode(t, &again)
	if again.Secret == created.Secret || again.Secret == "" {
		t.Error("re-enrollment reused the secret")
	}
	e.admin("DELETE", "/api/v1/enrollments/tofu-node", "").wantStatus(t, http.StatusOK)
	// The secret never reaches the logs.
	if strings.Contains(e.logs.String(), created.Secret) {
		t.Error("a TOTP secret was logged")
	}
}

func TestStats(t *testing.T) {
	e := start(t)
	fleet(t, e)
	storeEvents(t, e)
	var s struct {
		Nodes struct {
			Total, Connected, Disconnected int
			ByStatus                       map[string]int `json:"by_status"`
		} `json:"nodes"`
		Honeypots struct {
			Total    int
			ByStatus map[string]int `json:"by_status"`
		} `json:"honeypots"`
		Events struct {
			Stored         uint64
			LastHour       uint64         `json:"last_hour"`
			LastDay        uint64         `json:"last_day"`
			LastHourByType map[string]int `json:"last_hour_by_type"`
			LastDayByType  map[string]int `json:"last_day_by_type"`
			TopSourceIPs   []struct {
				SrcIP  string `json:"src_ip"`
				Events int    `json:"events"`
			} `json:"top_source_ips"`
			Scan struct {
				Limit, Scanned int
				Complete       bool
			} `json:"scan"`
		} `json:"events"`
	}
	e.get("/api/v1/stats").wantStatus(t, http.StatusOK).decode(t, &s)
	n := s.Nodes
	if n.Total != 5 || n.Connected != 2 || n.Disconnected != 3 || n.ByStatus["Running"] != 3 || n.ByStatus["Stopped"] != 1 || n.ByStatus["Failed"] != 1 {
		t.Errorf("nodes = %+v", n)
	}
	if p := s.Honeypots; p.Total != 4 || p.ByStatus["Running"] != 1 || p.ByStatus["Installing"] != 1 {
		t.Errorf("pots = %+v", p)
	}
	ev := s.Events
	if ev.Stored != 60 || ev.LastHour != 60 || ev.LastDay != 60 {
		t.Errorf("event counts = %d %d %d", ev.Stored, ev.LastHour, ev.LastDay)
	}
	if ev.LastHourByType["cowrie.login.success"] != 20 || ev.LastDayByType["cowrie.login.failed"] != 40 {
		t.Errorf("by type = %v / %v", ev.LastHourByType, ev.LastDayByType)
	}
	if len(ev.TopSourceIPs) != 2 || ev.TopSourceIPs[0].SrcIP != "198.51.100.1" || ev.TopSourceIPs[0].Events != 40 {
		t.Errorf("top ips = %+v", ev.TopSourceIPs)
	}
	if ev.Scan.Scanned != 60 || !ev.Scan.Complete || ev.Scan.Limit != api.DefaultConfig().StatsScan {
		t.Errorf("scan = %+v", ev.Scan)
	}
	// Within the cache time the event figures are reused; node counts are live.
	e.bus.MustPublishEvent(t, attack(100, 1, "p", "x", "10.0.0.1"))
	e.bus.PutNode(t, node(77, "new", proto.NodeRunning, false, ""))
	testbus.Eventually(t, func() bool { return e.get("/api/v1/nodes/77").status == http.StatusOK })
	e.get("/api/v1/stats").wantStatus(t, http.StatusOK).decode(t, &s)
	if s.Events.Stored != 60 || s.Nodes.Total != 6 {
		t.Errorf("second stats: stored %d (want the cached 60), nodes %d (want 6)", s.Events.Stored, s.Nodes.Total)
	}
}

func TestStatsScanBound(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.StatsScan, c.StatsCacheTTL = 10, 0 }))
	storeEvents(t, e)
	var s struct {
		Events struct {
			LastDay uint64         `json:"last_day"`
			ByType  map[string]int `json:"last_day_by_type"`
			Scan    struct {
				Limit, Scanned int
				Complete       bool
			} `json:"scan"`
		} `json:"events"`
	}
	e.get("/api/v1/stats").wantStatus(t, http.StatusOK).decode(t, &s)
	total := 0
	for _, n := range s.Events.ByType {
		total += n
	}
	if s.Events.LastDay != 60 || s.Events.Scan.Scanned != 10 || s.Events.Scan.Complete || total != 10 {
		t.Errorf("stats = %+v", s.Events)
	}
	// Without the cache every request is current.
	e.bus.MustPublishEvent(t, attack(100, 1, "p", "x", "10.0.0.1"))
	e.get("/api/v1/stats").wantStatus(t, http.StatusOK).decode(t, &s)
	if s.Events.LastDay != 61 {
		t.Errorf("last_day = %d after one more event, want 61", s.Events.LastDay)
	}
}

func TestBadInput(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.MaxBodyBytes = 2048 }))
	storeEvents(t, e)
	nodesCursor := "bjox" // base64url("n:1"): a nodes cursor
	var ev eventsPage
	e.get("/api/v1/events?limit=1").decode(t, &ev)
	evCursor := url.QueryEscape(*ev.NextCursor)
	big := `{"node_name":"` + strings.Repeat("x", 4096) + `"}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   string
	}{
		{"malformed json enrollment", "POST", "/api/v1/enrollments", `{"node_name":`, 400, "INVALID_JSON"},
		{"malformed json command", "POST", "/api/v1/nodes/1/commands", `{{`, 400, "INVALID_JSON"},
		{"malformed json broadcast", "POST", "/api/v1/commands/broadcast", `nope`, 400, "INVALID_JSON"},
		{"empty enrollment body", "POST", "/api/v1/enrollments", ``, 400, "INVALID_JSON"},
		{"wrong type", "POST", "/api/v1/enrollments", `{"node_name":5}`, 400, "INVALID_BODY"},
		{"array body", "POST", "/api/v1/enrollments", `["x"]`, 400, "INVALID_BODY"},
		{"missing field", "POST", "/api/v1/enrollments", `{}`, 400, "INVALID_BODY"},
		{"null name", "POST", "/api/v1/enrollments", `{"node_name":null}`, 400, "INVALID_BODY"},
		{"empty name", "POST", "/api/v1/enrollments", `{"node_name":""}`, 400, "INVALID_NODE_NAME"},
		{"control char name", "POST", "/api/v1/enrollments", `{"node_name":"a\u0000b"}`, 400, "INVALID_NODE_NAME"},
		{"oversized body", "POST", "/api/v1/enrollments", big, 413, "BODY_TOO_LARGE"},
		{"oversized command", "POST", "/api/v1/nodes/1/commands", `{"StopPot":"` + strings.Repeat("x", 4096) + `"}`, 413, "BODY_TOO_LARGE"},
		{"node id letters", "GET", "/api/v1/nodes/abc", "", 400, "INVALID_NODE_ID"},
		{"node id negative", "GET", "/api/v1/nodes/-5", "", 400, "INVALID_NODE_ID"},
		{"node id too big", "GET", "/api/v1/nodes/18446744073709551616", "", 400, "INVALID_NODE_ID"},
		{"node id filter", "GET", "/api/v1/honeypots?node_id=1e3", "", 400, "INVALID_NODE_ID"},
		{"node id events filter", "GET", "/api/v1/events?node_id=x", "", 400, "INVALID_NODE_ID"},
		{"status filter", "GET", "/api/v1/nodes?status=Bogus", "", 400, "INVALID_FILTER"},
		{"node type filter", "GET", "/api/v1/nodes?node_type=Huge", "", 400, "INVALID_FILTER"},
		{"connected filter", "GET", "/api/v1/nodes?connected=maybe", "", 400, "INVALID_FILTER"},
		{"empty status filter", "GET", "/api/v1/nodes?status=", "", 400, "INVALID_FILTER"},
		{"pot status filter", "GET", "/api/v1/honeypots?status=Sleeping", "", 400, "INVALID_FILTER"},
		{"src ip filter", "GET", "/api/v1/events?src_ip=not-an-ip", "", 400, "INVALID_FILTER"},
		{"since filter", "GET", "/api/v1/events?since=yesterday", "", 400, "INVALID_FILTER"},
		{"until before since", "GET", "/api/v1/events?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z", "", 400, "INVALID_FILTER"},
		{"long filter", "GET", "/api/v1/events?event_type=" + strings.Repeat("a", 300), "", 400, "INVALID_FILTER"},
		{"order", "GET", "/api/v1/events?order=sideways", "", 400, "INVALID_PARAMETER"},
		{"limit zero", "GET", "/api/v1/nodes?limit=0", "", 400, "INVALID_PARAMETER"},
		{"limit text", "GET", "/api/v1/honeypots?limit=ten", "", 400, "INVALID_PARAMETER"},
		{"events limit too big", "GET", "/api/v1/events?limit=1001", "", 400, "INVALID_PARAMETER"},
		{"nodes limit too big", "GET", "/api/v1/nodes?limit=10001", "", 400, "INVALID_PARAMETER"},
		{"malformed query", "GET", "/api/v1/nodes?cursor=%%%", "", 400, "INVALID_PARAMETER"},
		{"garbage cursor nodes b64", "GET", "/api/v1/nodes?cursor=Zm9vYmFy", "", 400, "INVALID_CURSOR"},
		{"garbage cursor events", "GET", "/api/v1/events?cursor=!!!", "", 400, "INVALID_CURSOR"},
		{"garbage cursor pots", "GET", "/api/v1/honeypots?cursor=cDp4", "", 400, "INVALID_CURSOR"},
		{"nodes cursor on events", "GET", "/api/v1/events?cursor=" + nodesCursor, "", 400, "INVALID_CURSOR"},
		{"events cursor on nodes", "GET", "/api/v1/nodes?cursor=" + evCursor, "", 400, "INVALID_CURSOR"},
		{"zero events cursor", "GET", "/api/v1/events?cursor=ZW46MA", "", 400, "INVALID_CURSOR"},
		{"command id", "GET", "/api/v1/commands/a*b", "", 400, "INVALID_COMMAND_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.admin(tt.method, tt.path, tt.body).wantError(t, tt.status, tt.code)
		})
	}
	// A valid nodes cursor works where the garbage ones fail.
	e.get("/api/v1/nodes?cursor="+nodesCursor).wantStatus(t, http.StatusOK)
}

func TestRateLimit(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.RateLimit, c.RateBurst = 0.01, 2 }))
	for range 2 {
		e.get("/api/v1/nodes").wantStatus(t, http.StatusOK)
	}
	r := e.get("/api/v1/nodes")
	r.wantError(t, http.StatusTooManyRequests, "RATE_LIMITED")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Per token: the admin token has its own budget.
	e.admin("GET", "/api/v1/nodes", "").wantStatus(t, http.StatusOK)
	// Without a valid token the client address is limited (guessing too).
	for range 2 {
		e.do("GET", "/api/v1/nodes", "guess", "").wantStatus(t, http.StatusUnauthorized)
	}
	e.do("GET", "/api/v1/nodes", "guess", "").wantError(t, http.StatusTooManyRequests, "RATE_LIMITED")
	// Health stays open.
	e.do("GET", "/health", "", "").wantStatus(t, http.StatusOK)
}

func TestMetricsAndRequestLog(t *testing.T) {
	e := start(t)
	e.get("/api/v1/nodes/7").wantError(t, http.StatusNotFound, "NODE_NOT_FOUND")
	r := e.do("GET", "/metrics", "", "").wantStatus(t, http.StatusOK)
	body := string(r.body)
	for _, want := range []string{
		`honeybee_api_http_requests_total{code="404",method="GET",route="/api/v1/nodes/:node_id"} 1`,
		`honeybee_api_http_request_duration_seconds_bucket`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// One JSON log line per request with the essentials, and the request id
	// echoed to the client.
	req, _ := http.NewRequest("GET", e.base+"/api/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	req.Header.Set("X-Request-Id", "trace-me-42")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("X-Request-Id") != "trace-me-42" {
		t.Errorf("request id %q not echoed", res.Header.Get("X-Request-Id"))
	}
	var line map[string]any
	testbus.Eventually(t, func() bool {
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, `"trace-me-42"`) && strings.Contains(l, `"message":"request"`) {
				return json.Unmarshal([]byte(l), &line) == nil
			}
		}
		return false
	})
	if line["method"] != "GET" || line["path"] != "/api/v1/stats" || line["status"] != float64(200) || line["latency"] == nil ||
		line["request_id"] != "trace-me-42" || line["service"] != "api" || line["token"] != "read#1" {
		t.Errorf("log line = %v", line)
	}
}

func TestNodeRecordsWithHostileInput(t *testing.T) {
	e := start(t)
	// A record whose name and pot ids carry subject syntax must list fine.
	e.bus.PutNode(t, bus.NodeRecord{NodeID: 9, NodeName: "a.b *>", NodeType: proto.NodeTypeAgent, Status: proto.NodeRunning})
	e.bus.PutPot(t, bus.PotRecord{NodeID: 9, PotID: "x.>", Status: proto.PotRunning})
	// A malformed record is skipped, not fatal.
	if _, err := e.bus.Nodes.Put(t.Context(), "10", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	var n nodeJSON
	testbus.Eventually(t, func() bool {
		r := e.get("/api/v1/nodes/9")
		if r.status != http.StatusOK {
			return false
		}
		r.decode(t, &n)
		return len(n.Honeypots) == 1
	})
	e.get("/api/v1/nodes/9").decode(t, &n)
	if n.NodeName != "a.b *>" || len(n.Honeypots) != 1 || n.Honeypots[0].PotID != "x.>" {
		t.Errorf("node = %+v", n)
	}
	e.get("/api/v1/nodes/10").wantError(t, http.StatusNotFound, "NODE_NOT_FOUND")
}

func TestNATSDown(t *testing.T) {
	e := start(t, withConfig(func(c *api.Config) { c.NATSTimeout, c.CommandTimeout = 300*time.Millisecond, 300*time.Millisecond }))
	fleet(t, e)
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	testbus.Eventually(t, func() bool { return e.do("GET", "/ready", "", "").status == http.StatusServiceUnavailable })
	e.do("GET", "/health", "", "").wantStatus(t, http.StatusOK)
	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/api/v1/commands/abc", "", 503, "UNAVAILABLE"},
		{"GET", "/api/v1/events", "", 503, "UNAVAILABLE"},
		{"GET", "/api/v1/stats", "", 503, "UNAVAILABLE"},
		{"GET", "/api/v1/enrollments", "", 503, "UNAVAILABLE"},
		{"DELETE", "/api/v1/nodes/3", "", 503, "UNAVAILABLE"},
		{"POST", "/api/v1/nodes/1/commands", `{"Restart":{}}`, 503, "UNAVAILABLE"},
		{"POST", "/api/v1/commands/broadcast", `{"Restart":{}}`, 503, "UNAVAILABLE"},
		{"POST", "/api/v1/enrollments", `{"node_name":"x"}`, 503, "UNAVAILABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			e.admin(tt.method, tt.path, tt.body).wantError(t, tt.status, tt.code)
		})
	}
	// The view still answers what it last knew.
	e.get("/api/v1/nodes/1").wantStatus(t, http.StatusOK)
}
