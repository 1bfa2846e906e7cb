package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMainExitCodes(t *testing.T) {
	tests := []struct {
		give []string
		want int
		out  string
	}{
		{nil, 2, "usage"},
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"help"}, 0, "commands"},
		{[]string{"run", "-h"}, 0, "-rate"},
		{[]string{"run", "-totp", "maybe"}, 1, "-totp"},
		{[]string{"run", "-dialects", "klingon"}, 1, "-dialects"},
		{[]string{"bench", "-modes", "cloud"}, 1, "unknown mode"},
		{[]string{"idle-nodes", "-loaders", "1", "-n", "1000000"}, 1, "open files"},
	}
	for _, tt := range tests {
		var stdout, stderr strings.Builder
		got := Main(context.Background(), tt.give, &stdout, &stderr)
		if got != tt.want || !strings.Contains(stdout.String()+stderr.String(), tt.out) {
			t.Errorf("Main(%q) = %d, output %q; want %d and %q", tt.give, got, stdout.String()+stderr.String(), tt.want, tt.out)
		}
	}
}

func TestJSBenchCommand(t *testing.T) {
	s, err := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"jsbench", "-nats", s.ClientURL(), "-msgs", "2000", "-json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res struct {
		Msgs   int    `json:"msgs"`
		Size   int    `json:"msg_bytes"`
		Stored uint64 `json:"stored"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if res.Msgs != 2000 || res.Stored != 2000 || res.Size < 500 {
		t.Errorf("result %+v", res)
	}
}
