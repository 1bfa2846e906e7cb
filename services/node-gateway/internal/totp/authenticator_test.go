package totp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

func record(t *testing.T, kv jetstream.KeyValue, name string) bus.TOTPRecord {
	t.Helper()
	e, err := kv.Get(testCtx(t), bus.TOTPKey(name))
	if err != nil {
		t.Fatalf("get %q: %v", name, err)
	}
	var rec bus.TOTPRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestOffAcceptsEverything(t *testing.T) {
	a := totp.NewAuthenticator(totp.Off, nil, testLog(t))
	for _, code := range []string{"", "000000", "garbage"} {
		key, err := a.Check(testCtx(t), "edge-1", code, "10.0.0.1", base)
		if err != nil || key != "" {
			t.Errorf("Check(code %q) = %q, %v; want accepted without a key", code, key, err)
		}
	}
}

func TestTOFU(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	a := totp.NewAuthenticator(totp.TOFU, kv, testLog(t), totp.WithRateLimit(0, 0))
	const name = "edge.1 *>"

	// First registration: a fresh secret is issued, whatever code comes along
	// (the deployed node sends codes from a secret of its own).
	key, err := a.Check(ctx, name, "123456", "10.0.0.1", base)
	if err != nil || len(key) != 32 {
		t.Fatalf("first Check: key of %d characters, %v; want a 32-character key", len(key), err)
	}
	rec := record(t, kv, name)
	if rec.Secret != key || rec.Source != bus.TOTPTOFU || rec.NodeName != name || rec.LastStep != 0 || !rec.CreatedAt.Equal(base) {
		t.Fatalf("stored record %+v does not match the issued key", rec)
	}

	steps := []struct {
		name    string
		code    string
		at      time.Time
		wantErr error
	}{
		{name: "no code", code: "", at: base, wantErr: totp.ErrCodeRequired},
		{name: "wrong code", code: wrongCode(mustCode(t, key, base)), at: base, wantErr: totp.ErrInvalidCode},
		{name: "valid code", code: mustCode(t, key, base), at: base, wantErr: nil},
		{name: "same code replayed", code: mustCode(t, key, base), at: base, wantErr: totp.ErrInvalidCode},
		{name: "same code replayed a step later", code: mustCode(t, key, base), at: base.Add(totp.Period), wantErr: totp.ErrInvalidCode},
		{name: "next step's code", code: mustCode(t, key, base.Add(totp.Period)), at: base.Add(totp.Period), wantErr: nil},
		{name: "code two steps late", code: mustCode(t, key, base.Add(2*totp.Period)), at: base.Add(4 * totp.Period), wantErr: totp.ErrInvalidCode},
	}
	for _, st := range steps {
		issued, err := a.Check(ctx, name, st.code, "10.0.0.1", st.at)
		if !errors.Is(err, st.wantErr) || issued != "" {
			t.Fatalf("%s: Check = %q, %v; want no key, %v", st.name, issued, err, st.wantErr)
		}
	}
	if got := record(t, kv, name).LastStep; got != base.Unix()/30+1 {
		t.Errorf("LastStep = %d, want %d", got, base.Unix()/30+1)
	}
	if got := record(t, kv, name).Secret; got != key {
		t.Error("secret changed after the first registration")
	}
}

// wrongCode returns a well-formed code that differs from c.
func wrongCode(c string) string {
	if c == "000000" {
		return "000001"
	}
	return "000000"
}

func TestTOFUConcurrentFirstRegistration(t *testing.T) {
	s := startNATS(t)
	kv1, _ := openKV(t, s)
	kv2, _ := openKV(t, s)
	ctx := testCtx(t)
	// Two gateways on their own connections, racing for the same names.
	gws := []*totp.Authenticator{
		totp.NewAuthenticator(totp.TOFU, kv1, testLog(t)),
		totp.NewAuthenticator(totp.TOFU, kv2, testLog(t)),
	}
	const names = 20
	type result struct {
		key string
		err error
	}
	results := make([][2]result, names)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for n := range names {
		for g := range gws {
			wg.Go(func() {
				<-start
				key, err := gws[g].Check(ctx, fmt.Sprintf("node-%d", n), "", fmt.Sprintf("10.0.%d.%d", g, n), base)
				results[n][g] = result{key, err}
			})
		}
	}
	close(start)
	wg.Wait()

	for n, r := range results {
		var issued []string
		for _, res := range r {
			switch {
			case res.err == nil && res.key != "":
				issued = append(issued, res.key)
			case errors.Is(res.err, totp.ErrCodeRequired) && res.key == "":
				// lost the race: checked against the winner's secret
			default:
				t.Fatalf("node-%d: Check = %q, %v", n, res.key, res.err)
			}
		}
		if len(issued) != 1 {
			t.Fatalf("node-%d: %d keys issued, want exactly 1", n, len(issued))
		}
		if got := record(t, kv1, fmt.Sprintf("node-%d", n)).Secret; got != issued[0] {
			t.Fatalf("node-%d: stored secret differs from the issued key", n)
		}
	}
}

func TestCodeAcceptedOnceAcrossGateways(t *testing.T) {
	s := startNATS(t)
	ctx := testCtx(t)
	kv, _ := openKV(t, s)
	rec, err := totp.Enroll(ctx, kv, "edge-1", base)
	if err != nil {
		t.Fatal(err)
	}
	code := mustCode(t, rec.Secret, base)

	const gateways, perGateway = 3, 4
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	start := make(chan struct{})
	for g := range gateways {
		gkv, _ := openKV(t, s)
		a := totp.NewAuthenticator(totp.Enrolled, gkv, testLog(t))
		for i := range perGateway {
			wg.Go(func() {
				<-start
				_, err := a.Check(ctx, "edge-1", code, fmt.Sprintf("10.1.%d.%d", g, i), base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case !errors.Is(err, totp.ErrInvalidCode):
					t.Errorf("Check: %v, want nil or ErrInvalidCode", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if accepted != 1 {
		t.Fatalf("code accepted %d times, want exactly once", accepted)
	}
	if got := record(t, kv, "edge-1").LastStep; got != base.Unix()/30 {
		t.Errorf("LastStep = %d, want %d", got, base.Unix()/30)
	}
}

func TestEnrolled(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	a := totp.NewAuthenticator(totp.Enrolled, kv, testLog(t), totp.WithRateLimit(0, 0))
	rec, err := totp.Enroll(ctx, kv, "enrolled node", base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		node    string
		code    string
		wantErr error
	}{
		{name: "unknown name without code", node: "stranger", code: "", wantErr: totp.ErrNotEnrolled},
		{name: "unknown name with code", node: "stranger", code: "123456", wantErr: totp.ErrNotEnrolled},
		{name: "enrolled without code", node: "enrolled node", code: "", wantErr: totp.ErrCodeRequired},
		{name: "enrolled with wrong code", node: "enrolled node", code: wrongCode(mustCode(t, rec.Secret, base)), wantErr: totp.ErrInvalidCode},
		{name: "enrolled with valid code", node: "enrolled node", code: mustCode(t, rec.Secret, base), wantErr: nil},
		{name: "enrolled with replayed code", node: "enrolled node", code: mustCode(t, rec.Secret, base), wantErr: totp.ErrInvalidCode},
	}
	for _, tt := range tests {
		key, err := a.Check(ctx, tt.node, tt.code, "10.0.0.1", base)
		if !errors.Is(err, tt.wantErr) || key != "" {
			t.Errorf("%s: Check = %q, %v; want no key, %v", tt.name, key, err, tt.wantErr)
		}
	}
	if _, err := kv.Get(ctx, bus.TOTPKey("stranger")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("enrolled mode created a record for an unknown name: %v", err)
	}
}

func TestRateLimitPerIP(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	a := totp.NewAuthenticator(totp.Enrolled, kv, testLog(t), totp.WithRateLimit(3, time.Minute))
	rec, err := totp.Enroll(ctx, kv, "edge-1", base)
	if err != nil {
		t.Fatal(err)
	}
	bad := wrongCode(mustCode(t, rec.Secret, base))

	// Three failures from one address (different ports, and an unknown name).
	for i, give := range []struct{ node, code, addr string }{
		{"edge-1", bad, "192.0.2.7:40001"},
		{"edge-1", "", "192.0.2.7:40002"},
		{"stranger", "123456", "192.0.2.7"},
	} {
		if _, err := a.Check(ctx, give.node, give.code, give.addr, base.Add(time.Duration(i)*time.Second)); err == nil || errors.Is(err, totp.ErrRateLimited) {
			t.Fatalf("failure %d: Check = %v, want an authentication failure", i, err)
		}
	}
	// Now even the right code is refused unchecked, and nothing is stored.
	if _, err := a.Check(ctx, "edge-1", mustCode(t, rec.Secret, base), "192.0.2.7:40003", base.Add(5*time.Second)); !errors.Is(err, totp.ErrRateLimited) {
		t.Fatalf("Check after 3 failures = %v, want ErrRateLimited", err)
	}
	if got := record(t, kv, "edge-1").LastStep; got != 0 {
		t.Fatalf("a rate-limited attempt advanced LastStep to %d", got)
	}
	// Another address is unaffected.
	if _, err := a.Check(ctx, "edge-1", mustCode(t, rec.Secret, base), "[2001:db8::1]:5000", base.Add(5*time.Second)); err != nil {
		t.Fatalf("Check from another address = %v, want accepted", err)
	}
	// Once the failures leave the window, the first address may try again.
	later := base.Add(time.Minute + 3*time.Second)
	if _, err := a.Check(ctx, "edge-1", mustCode(t, rec.Secret, later), "192.0.2.7", later); err != nil {
		t.Fatalf("Check after the window = %v, want accepted", err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Run("connection closed", func(t *testing.T) {
		kv, nc := openKV(t, startNATS(t))
		a := totp.NewAuthenticator(totp.TOFU, kv, testLog(t), totp.WithRateLimit(1, time.Minute))
		nc.Close()
		for range 3 { // unavailability is not the node's fault: never rate limited
			key, err := a.Check(testCtx(t), "edge-1", "", "10.0.0.1", base)
			if !errors.Is(err, totp.ErrUnavailable) || key != "" {
				t.Fatalf("Check = %q, %v; want ErrUnavailable", key, err)
			}
			if got := totp.Reason(err); got != "authentication unavailable, retry" {
				t.Fatalf("Reason = %q", got)
			}
		}
	})
	for _, give := range []string{"{not json", `{"node_name":"edge-1","secret":"not base32!","source":"enrolled"}`} {
		t.Run("corrupt record", func(t *testing.T) {
			kv := newKV(t)
			if _, err := kv.Put(testCtx(t), bus.TOTPKey("edge-1"), []byte(give)); err != nil {
				t.Fatal(err)
			}
			a := totp.NewAuthenticator(totp.TOFU, kv, testLog(t), totp.WithMaxTrackedAddrs(10))
			if _, err := a.Check(testCtx(t), "edge-1", "123456", "10.0.0.1", base); !errors.Is(err, totp.ErrUnavailable) {
				t.Fatalf("Check = %v, want ErrUnavailable", err)
			}
		})
	}
	t.Run("context done", func(t *testing.T) {
		kv := newKV(t)
		a := totp.NewAuthenticator(totp.Enrolled, kv, testLog(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := a.Check(ctx, "edge-1", "123456", "10.0.0.1", base)
		if !errors.Is(err, totp.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Check = %v, want ErrUnavailable wrapping context.Canceled", err)
		}
	})
}

func TestReason(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{give: nil, want: ""},
		{give: totp.ErrCodeRequired, want: "totp code required"},
		{give: fmt.Errorf("x: %w", totp.ErrInvalidCode), want: "invalid totp code"},
		{give: totp.ErrNotEnrolled, want: "node name not enrolled"},
		{give: totp.ErrRateLimited, want: "too many failed authentication attempts, retry later"},
		{give: fmt.Errorf("%w: %w", totp.ErrUnavailable, errors.New("nats: timeout")), want: "authentication unavailable, retry"},
		{give: errors.New("something internal"), want: "authentication failed"},
	}
	for _, tt := range tests {
		if got := totp.Reason(tt.give); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsNeverHoldSecretsOrCodes(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	var out syncBuffer
	a := totp.NewAuthenticator(totp.TOFU, kv, zerolog.New(&out).Level(zerolog.DebugLevel), totp.WithRateLimit(2, time.Minute))

	key, err := a.Check(ctx, "edge-1", "", "10.0.0.9:1234", base)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := mustCode(t, key, base), "314159"
	if good == bad {
		bad = "271828"
	}
	codes := []string{good, good, bad, bad}
	for _, c := range codes {
		_, _ = a.Check(ctx, "edge-1", c, "10.0.0.9:1234", base)
	}
	logs := out.String()
	for _, secret := range []string{key, strings.ToLower(key), good, bad} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log output contains a secret or code:\n%s", logs)
		}
	}
	for _, want := range []string{`"node_name":"edge-1"`, `"remote_ip":"10.0.0.9:1234"`,
		`"outcome":"issued"`, `"outcome":"accepted"`, `"outcome":"invalid_code"`, `"outcome":"rate_limited"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log output lacks %s:\n%s", want, logs)
		}
	}
}

func TestNewAuthenticatorPanicsOnMisuse(t *testing.T) {
	tests := []struct {
		name string
		mode totp.Mode
	}{
		{name: "unknown mode", mode: "strict"},
		{name: "nil bucket outside off", mode: totp.TOFU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewAuthenticator did not panic")
				}
			}()
			totp.NewAuthenticator(tt.mode, nil, zerolog.Nop())
		})
	}
}
