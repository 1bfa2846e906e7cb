package procstat

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseStat(t *testing.T) {
	tests := []struct {
		give string
		want time.Duration
	}{
		{"1234 (node-gateway) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615", 3 * time.Second},
		{"1 (a) b) c) R 0 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1 1", 100 * time.Millisecond},
	}
	for _, tt := range tests {
		_, children, _ := parseStatChildren([]byte(tt.give))
		if children != 0 {
			t.Errorf("children of %q = %v, want 0", tt.give, children)
		}
		got, err := parseStat([]byte(tt.give))
		if err != nil || got != tt.want {
			t.Errorf("parseStat(%q) = %v, %v; want %v", tt.give, got, err, tt.want)
		}
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Error("want an error for garbage")
	}
}

func TestParseStatus(t *testing.T) {
	rss, hwm, th := parseStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t9\n"))
	if rss != 1024*1024 || hwm != 2048*1024 || th != 9 {
		t.Errorf("rss %d hwm %d threads %d", rss, hwm, th)
	}
}

func TestReadSelfAndFind(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Threads <= 0 {
		t.Errorf("self sample %+v: want RSS and threads > 0", s)
	}
	if _, err := Find("no-such-process-xyz"); err == nil {
		t.Error("Find of a missing name: want ErrNotFound")
	}
}

func TestFindFakeRoot(t *testing.T) {
	old := Root
	Root = t.TempDir()
	defer func() { Root = old }()
	for pid, comm := range map[string]string{"10": "node-gateway\n", "11": "api\n", "12": "ws-proxy\n", "self": "x\n"} {
		if err := os.MkdirAll(filepath.Join(Root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(Root, pid, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pids, err := Find("api")
	if err != nil || len(pids) != 1 || pids[0] != 11 {
		t.Errorf("Find(api) = %v, %v; want [11]", pids, err)
	}
}

func TestBetween(t *testing.T) {
	t0 := time.Now()
	u := Between("x", Sample{PID: 1, At: t0, CPU: time.Second}, Sample{PID: 1, At: t0.Add(2 * time.Second), CPU: 2 * time.Second, RSS: 5})
	if u.CPUPct != 50 || u.CPUSecs != 1 || u.RSS != 5 {
		t.Errorf("usage %+v", u)
	}
}

func TestSnapshotBusiestSystem(t *testing.T) {
	a := Snapshot()
	x := 0
	for i := range 2_000_000 {
		x += i
	}
	_ = x
	b := Snapshot()
	if len(a) == 0 || len(b) == 0 {
		t.Fatal("empty snapshot")
	}
	top := Busiest(a, b, 3, func(n Named) bool { return false })
	if len(top) > 3 {
		t.Errorf("Busiest returned %d, want at most 3", len(top))
	}
	c, err := SystemCPU()
	if err != nil || c.Total <= 0 || c.Busy > c.Total || c.IRQ > c.Busy {
		t.Errorf("SystemCPU = %+v, %v", c, err)
	}
	if la, err := LoadAvg(); err != nil || la == "" {
		t.Errorf("LoadAvg = %q, %v", la, err)
	}
}

func TestBusiestOrder(t *testing.T) {
	before := []Named{{PID: 1, Name: "a", CPU: time.Second}, {PID: 2, Name: "b", CPU: time.Second}}
	after := []Named{{PID: 1, Name: "a", CPU: 2 * time.Second}, {PID: 2, Name: "b", CPU: 4 * time.Second}, {PID: 3, Name: "c", CPU: time.Second}, {PID: 4, Name: "skip", CPU: time.Hour}}
	got := Busiest(before, after, 2, func(n Named) bool { return n.Name == "skip" })
	if len(got) != 2 || got[0].Name != "b" || got[0].CPU != 3*time.Second || got[1].CPU != time.Second {
		t.Errorf("Busiest = %+v, want b (3s) then a or c (1s)", got)
	}
}
