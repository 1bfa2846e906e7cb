package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/honeybee/core/scripts/load/internal/drive"
	"github.com/honeybee/core/scripts/load/internal/idle"
	"github.com/honeybee/core/scripts/load/internal/jsbench"
	"github.com/honeybee/core/scripts/load/internal/procstat"
	"github.com/honeybee/core/scripts/load/internal/sim"
)

// Modes of running the core.
const (
	Embedded = "embedded" // services/honeybee: one process, embedded NATS
	Separate = "separate" // nats-server, node-gateway, api, ws-proxy
)

// Config is one benchmark run.
type Config struct {
	// Bin holds the binaries: honeybee, nats-server, node-gateway, api,
	// ws-proxy.
	Bin string
	// WorkDir holds data directories and logs ("" makes a temporary one,
	// removed afterwards unless Keep).
	WorkDir string
	Keep    bool
	// Modes to run, in order.
	Modes []string
	// Quick shortens every phase (a smoke test of the orchestrator).
	Quick bool
	// IdleNodes and IdleWS are the idle connection counts.
	IdleNodes, IdleWS int
	// FanoutSubs is how many subscribers the fan-out steps use.
	FanoutSubs int
	// Ports of the core.
	Ports Ports
	// Timeout bounds the whole run.
	Timeout time.Duration
	// MeasureIdle runs an idle-connection measurement in child processes
	// (injected by the command line, which knows how to re-execute the
	// tool); nil skips the idle phases.
	MeasureIdle func(ctx context.Context, cfg idle.Config, token, target string, settle time.Duration, log io.Writer) (idle.Result, error)
	// PerfDir, when set, receives perf CPU profiles of the core processes
	// during the ingest and latency phases.
	PerfDir string
	// Log receives progress and each phase's detailed table.
	Log io.Writer
}

// Report is everything one run measured.
type Report struct {
	Date      time.Time              `json:"date"`
	Machine   Machine                `json:"machine"`
	Commands  []string               `json:"commands"`
	Quick     bool                   `json:"quick"`
	Modes     map[string]*ModeReport `json:"modes"`
	Order     []string               `json:"order"`
	Seconds   float64                `json:"seconds"`
	LoadStart string                 `json:"loadavg_start"`
	LoadEnd   string                 `json:"loadavg_end"`
	// CPU seconds of the whole machine during the run (busy, summed over
	// cores): the core's processes, the load tool with its children,
	// interrupts (loopback networking), and everything else; Busiest
	// lists the other processes that used the most.
	TotalCPUSecs float64          `json:"total_busy_cpu_s"`
	CoreCPUSecs  float64          `json:"core_cpu_s"`
	LoadCPUSecs  float64          `json:"load_cpu_s"`
	IRQCPUSecs   float64          `json:"irq_cpu_s"`
	OtherCPUSecs float64          `json:"other_cpu_s"`
	Busiest      []procstat.Named `json:"busiest"`
	Errors       []string         `json:"errors,omitempty"`
}

// Machine describes the host.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	NoFile uint64 `json:"nofile"`
}

// ModeReport is one mode's figures.
type ModeReport struct {
	Mode   string          `json:"mode"`
	Raw    *jsbench.Result `json:"raw_publish,omitempty"`
	Ingest *drive.Result   `json:"ingest,omitempty"`
	// Sustained is the fastest paced ingest run with nothing lost (the
	// as-fast-as-accepted run itself when it lost nothing).
	Sustained *drive.Result `json:"sustained,omitempty"`
	// SustainTries are the paced runs tried to find it.
	SustainTries []*drive.Result `json:"sustain_tries,omitempty"`
	Latency      *drive.Result   `json:"latency,omitempty"`
	Commands     *drive.Result   `json:"commands,omitempty"`
	IdleNodes    *idle.Result    `json:"idle_nodes,omitempty"`
	IdleWS       *idle.Result    `json:"idle_ws,omitempty"`
	Fanout       []FanoutStep    `json:"fanout,omitempty"`
	Errors       []string        `json:"errors,omitempty"`
	// CoreCPUSecs is the CPU the core's processes used over their whole
	// lives in this mode.
	CoreCPUSecs float64 `json:"core_cpu_s"`
}

// FanoutStep is one offered event rate with many subscribers.
type FanoutStep struct {
	Rate      float64       `json:"rate"`
	Subs      int           `json:"subscribers"`
	Sustained bool          `json:"sustained"`
	Result    *drive.Result `json:"result"`
}

// Ratio is the sustained lossless end-to-end ingest rate over the raw
// publish rate (0 when unknown).
func (m *ModeReport) Ratio() float64 {
	if m.Raw == nil || m.Sustained == nil || m.Raw.MsgsPerSec == 0 {
		return 0
	}
	return m.Sustained.Events.E2ERate / m.Raw.MsgsPerSec
}

// lossless reports whether a run delivered and stored every event to
// every subscriber, once.
func lossless(r *drive.Result) bool {
	return r != nil && r.Events.Sent > 0 && r.Events.Lost == 0 && r.Events.StoreLost == 0 && r.Events.Duplicated == 0 &&
		r.Subscribers.Closed == 0 && r.Subscribers.Connected == r.Subscribers.Requested
}

// sustain finds the fastest paced ingest with nothing lost and p99 under
// a second (a backlog that keeps growing is not sustained): when the
// as-fast-as-accepted run lost nothing it is the answer; otherwise paced
// runs start at 90% of what the subscriber got before it fell behind and
// step down by 20% (at most four tries), then one step up by 10% from a
// lossless rate.
func sustain(ctx context.Context, log io.Writer, mode string, base drive.Config, fast *drive.Result, ph phases, m *ModeReport) *drive.Result {
	if fast == nil {
		return nil
	}
	if lossless(fast) && fast.Latency.P99 < time.Second {
		return fast
	}
	rate := 0.9 * fast.Events.E2ERate
	if rate <= 0 {
		rate = 1000
	}
	var best *drive.Result
	for try := 0; try < 5 && ctx.Err() == nil; try++ {
		c := base
		c.Rate, c.Duration = float64(int(rate/100)*100), ph.sustain
		r := phase(ctx, log, mode, fmt.Sprintf("sustained ingest: paced at %.0f events/s", c.Rate), c, m)
		if r == nil {
			break
		}
		m.SustainTries = append(m.SustainTries, r)
		// A backlog that grows for the whole run is not sustained, even
		// when it drains after the senders stop: p99 must stay under 1 s.
		ok := lossless(r) && r.Events.SendRate >= 0.95*c.Rate && r.Latency.P99 < time.Second
		switch {
		case ok && best == nil:
			best = r
			rate *= 1.1
		case ok:
			return r
		case best != nil:
			return best
		default:
			rate *= 0.8
		}
	}
	return best
}

// MaxFanout returns the sustained step with the most deliveries per second.
func (m *ModeReport) MaxFanout() *FanoutStep {
	var best *FanoutStep
	for i := range m.Fanout {
		s := &m.Fanout[i]
		if s.Sustained && (best == nil || s.Result.Events.DeliveryRate > best.Result.Events.DeliveryRate) {
			best = s
		}
	}
	return best
}

func (m *ModeReport) fail(err error) { m.Errors = append(m.Errors, err.Error()) }

// phases holds the durations and sizes of a run.
type phases struct {
	rawMsgs                             int
	ingest, latency, commands, step     time.Duration
	sustain                             time.Duration
	settle                              time.Duration
	steps                               []float64
	ingestNodes, latencyNodes, cmdNodes int
}

func (c Config) phases() phases {
	if c.Quick {
		return phases{rawMsgs: 20_000, sustain: 2 * time.Second, ingest: 3 * time.Second, latency: 3 * time.Second, commands: 3 * time.Second,
			step: 2 * time.Second, settle: 2 * time.Second, steps: []float64{500, 1000},
			ingestNodes: 20, latencyNodes: 20, cmdNodes: 5}
	}
	return phases{rawMsgs: 300_000, sustain: 10 * time.Second, ingest: 20 * time.Second, latency: 30 * time.Second, commands: 15 * time.Second,
		step: 8 * time.Second, settle: 10 * time.Second, steps: []float64{1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000},
		ingestNodes: 50, latencyNodes: 100, cmdNodes: 20}
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Ports == (Ports{}) {
		cfg.Ports = DefaultPorts
	}
	if err := portsFree(cfg.Ports); err != nil {
		return nil, err
	}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "honeybee-bench-")
		if err != nil {
			return nil, err
		}
		cfg.WorkDir = dir
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.WorkDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	rep := &Report{Date: time.Now().UTC(), Machine: machine(), Quick: cfg.Quick, Modes: map[string]*ModeReport{}}
	rep.LoadStart, _ = procstat.LoadAvg()
	cpu0, _ := procstat.SystemCPU()
	self0, _ := procstat.Read(os.Getpid())
	snap0 := procstat.Snapshot()
	start := time.Now()
	for _, mode := range cfg.Modes {
		if ctx.Err() != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: not run: %v", mode, ctx.Err()))
			break
		}
		m := runMode(ctx, cfg, mode)
		rep.Modes[mode] = m
		rep.Order = append(rep.Order, mode)
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.LoadEnd, _ = procstat.LoadAvg()
	cpu1, _ := procstat.SystemCPU()
	self1, _ := procstat.Read(os.Getpid())
	snap1 := procstat.Snapshot()
	rep.TotalCPUSecs = (cpu1.Busy - cpu0.Busy).Seconds()
	rep.IRQCPUSecs = (cpu1.IRQ - cpu0.IRQ).Seconds()
	// The load tool and the children it waited for: idle holders and the
	// core processes (whose CPU is also in CoreCPUSecs).
	rep.LoadCPUSecs = (self1.CPU - self0.CPU).Seconds()
	children := (self1.ChildrenCPU - self0.ChildrenCPU).Seconds()
	for _, m := range rep.Modes {
		rep.CoreCPUSecs += m.CoreCPUSecs
	}
	rep.LoadCPUSecs += max(children-rep.CoreCPUSecs, 0)
	rep.OtherCPUSecs = max(rep.TotalCPUSecs-rep.IRQCPUSecs-rep.LoadCPUSecs-rep.CoreCPUSecs, 0)
	self := os.Getpid()
	rep.Busiest = procstat.Busiest(snap0, snap1, 5, func(n procstat.Named) bool { return n.PID == self || n.PPID == self })
	for i := range rep.Busiest {
		rep.Busiest[i].CPU = rep.Busiest[i].CPU.Round(10 * time.Millisecond)
	}
	return rep, nil
}

func runMode(ctx context.Context, cfg Config, mode string) *ModeReport {
	m := &ModeReport{Mode: mode}
	ph := cfg.phases()
	log := cfg.Log
	token := randomToken()
	// Idle connections first, each on fresh processes with an empty store
	// (separate mode only: the targets are per gateway and per ws-proxy
	// process). A flood of node state changes left by one phase must not
	// weigh on the next one's memory.
	if mode == Separate && cfg.MeasureIdle != nil {
		if cfg.IdleNodes > 0 && ctx.Err() == nil {
			withCore(ctx, cfg, mode, "idle-nodes", token, m, func(st *stack, base drive.Config) {
				fmt.Fprintf(log, "\n--- %s: %d idle node connections\n", mode, cfg.IdleNodes)
				ic := idle.Config{Kind: idle.Nodes, Count: cfg.IdleNodes, GatewayAddr: base.GatewayAddr,
					Heartbeat: 30 * time.Second, SrcIPs: 8, DialParallel: 128}
				r, err := cfg.MeasureIdle(ctx, ic, token, "node-gateway="+strconv.Itoa(st.pid("node-gateway")), ph.settle, log)
				if err != nil {
					m.fail(fmt.Errorf("idle nodes: %w", err))
				}
				if r.PID != 0 {
					m.IdleNodes = &r
				}
			})
		}
		if cfg.IdleWS > 0 && ctx.Err() == nil {
			withCore(ctx, cfg, mode, "idle-ws", token, m, func(st *stack, base drive.Config) {
				fmt.Fprintf(log, "\n--- %s: %d idle WebSocket clients\n", mode, cfg.IdleWS)
				ic := idle.Config{Kind: idle.WS, Count: cfg.IdleWS, WSURL: base.WSURL, SrcIPs: 8, DialParallel: 128}
				r, err := cfg.MeasureIdle(ctx, ic, token, "ws-proxy="+strconv.Itoa(st.pid("ws-proxy")), ph.settle, log)
				if err != nil {
					m.fail(fmt.Errorf("idle ws: %w", err))
				}
				if r.PID != 0 {
					m.IdleWS = &r
				}
			})
		}
	}
	if ctx.Err() != nil {
		return m
	}
	withCore(ctx, cfg, mode, "load", token, m, func(st *stack, base drive.Config) {
		activePhases(ctx, cfg, mode, st, base, m)
	})
	return m
}

// withCore starts a fresh core (its own data directory), runs f, stops
// the core and adds the CPU its processes used over their whole life.
func withCore(ctx context.Context, cfg Config, mode, name, token string, m *ModeReport, f func(*stack, drive.Config)) {
	fmt.Fprintf(cfg.Log, "\n=== %s: starting the core (%s)\n", mode, name)
	st, err := startCore(ctx, cfg, mode, name, token)
	if err != nil {
		m.fail(err)
		if st != nil {
			m.CoreCPUSecs += st.cpu.Seconds()
			_ = st.stop()
		}
		return
	}
	defer func() {
		if err := st.stop(); err != nil {
			m.fail(err)
		}
		m.CoreCPUSecs += st.cpu.Seconds()
	}()
	p := cfg.Ports
	base := drive.DefaultConfig()
	base.GatewayAddr = "127.0.0.1:" + strconv.Itoa(p.Gateway)
	base.WSURL = "ws://127.0.0.1:" + strconv.Itoa(p.WS) + "/stream"
	base.APIURL = "http://127.0.0.1:" + strconv.Itoa(p.API)
	base.NATSURL = "nats://127.0.0.1:" + strconv.Itoa(p.NATS)
	base.APIToken, base.WSToken = token, token
	base.Procs = append(st.specs(), "load="+strconv.Itoa(os.Getpid()))
	// Every phase starts on an empty events stream, as the raw publish does
	// on its own fresh stream: no phase measures a store (and, embedded, a
	// heap) that the phases before it filled.
	base.PurgeEvents = true
	base.Progress = time.Second
	f(st, base)
	if err := st.alive(); err != nil {
		m.fail(err)
	}
}

// activePhases runs raw publish, ingest, latency, commands and fan-out on
// one core.
func activePhases(ctx context.Context, cfg Config, mode string, st *stack, base drive.Config, m *ModeReport) {
	ph := cfg.phases()
	log := cfg.Log
	prof, err := newProfiler(cfg.PerfDir, log)
	if err != nil {
		m.fail(err)
	}
	var procs []procstat.Proc
	for _, s := range st.specs() {
		if p, err := procstat.Resolve([]string{s}); err == nil {
			procs = append(procs, p...)
		}
	}

	// (1) Raw JetStream publish on the same server, same message size.
	fmt.Fprintf(log, "\n--- %s: raw JetStream async publish, %d msgs\n", mode, ph.rawMsgs)
	payload, err := EventPayload()
	if err != nil {
		m.fail(err)
		return
	}
	raw, err := jsbench.Run(ctx, jsbench.Config{URL: base.NATSURL, Msgs: ph.rawMsgs, Payload: payload, MsgID: true})
	if err != nil {
		m.fail(fmt.Errorf("raw publish: %w", err))
	} else {
		m.Raw = &raw
		fmt.Fprintf(log, "raw: %.0f msgs/s of %d B (%.1f MB/s), %d stored, %d errors\n", raw.MsgsPerSec, raw.Size, raw.MBPerSec, raw.Stored, raw.Errors)
	}

	// (2) End-to-end ingest as fast as the core accepts, then the fastest
	// lossless paced rate.
	ingest := base
	ingest.Nodes, ingest.Rate, ingest.Subscribers, ingest.Duration = ph.ingestNodes, 0, 1, ph.ingest
	wait := prof.record(ctx, mode+"-ingest", procs, 3*time.Second, ingest.Duration-5*time.Second)
	m.Ingest = phase(ctx, log, mode, "end-to-end ingest, as fast as accepted", ingest, m)
	wait()
	m.Sustained = sustain(ctx, log, mode, ingest, m.Ingest, ph, m)

	// (3) Latency at 1,000 events/s.
	lat := base
	lat.Nodes, lat.Rate, lat.Subscribers, lat.Duration = ph.latencyNodes, 1000, 1, ph.latency
	wait = prof.record(ctx, mode+"-latency", procs, 3*time.Second, lat.Duration-5*time.Second)
	m.Latency = phase(ctx, log, mode, "latency at 1,000 events/s", lat, m)
	wait()

	// (4) Command round trips.
	cmd := base
	cmd.Nodes, cmd.NoEvents, cmd.Subscribers, cmd.Duration = ph.cmdNodes, true, 0, ph.commands
	cmd.CmdWorkers, cmd.CmdPause, cmd.CmdPoll = 1, 5*time.Millisecond, 250*time.Microsecond
	m.Commands = phase(ctx, log, mode, "command round trips", cmd, m)

	// (5) Fan-out: many subscribers, rising event rates.
	if mode == Separate && cfg.FanoutSubs > 0 {
		for _, rate := range ph.steps {
			if ctx.Err() != nil || st.alive() != nil {
				break
			}
			f := base
			f.Nodes, f.Rate, f.Subscribers, f.Duration = 50, rate, cfg.FanoutSubs, ph.step
			f.DrainQuiet = 2 * time.Second
			r := phase(ctx, log, mode, fmt.Sprintf("fan-out: %d subscribers at %.0f events/s", cfg.FanoutSubs, rate), f, m)
			if r == nil {
				break
			}
			ok := r.Events.Lost == 0 && r.Subscribers.Closed == 0 && r.Subscribers.Connected == cfg.FanoutSubs &&
				r.Events.SendRate >= 0.95*rate && r.Latency.P99 < time.Second
			m.Fanout = append(m.Fanout, FanoutStep{Rate: rate, Subs: cfg.FanoutSubs, Sustained: ok, Result: r})
			if !ok {
				break
			}
		}
	}
}

// phase runs one drive scenario and logs its table.
func phase(ctx context.Context, log io.Writer, mode, title string, cfg drive.Config, m *ModeReport) *drive.Result {
	if ctx.Err() != nil {
		return nil
	}
	fmt.Fprintf(log, "\n--- %s: %s\n", mode, title)
	r, err := drive.Run(ctx, cfg, log)
	if err != nil {
		m.fail(fmt.Errorf("%s: %w", title, err))
		if r.Started.IsZero() {
			return nil
		}
	}
	_ = r.WriteText(log)
	return &r
}

func startCore(ctx context.Context, cfg Config, mode, name, token string) (*stack, error) {
	st := &stack{mode: mode + "-" + name, ports: cfg.Ports}
	p := cfg.Ports
	data := filepath.Join(cfg.WorkDir, mode+"-"+name+"-data")
	logs := filepath.Join(cfg.WorkDir, "logs")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(p.NATS)
	common := []string{
		"HONEYBEE_NATS_URL=" + natsURL,
		"HONEYBEE_TOKENS=admin:" + token,
		"HONEYBEE_LOG_LEVEL=warn",
		"HONEYBEE_API_RATE_LIMIT=0",
		"HONEYBEE_WS_MAX_CLIENTS=" + strconv.Itoa(max(cfg.IdleWS+1000, 20000)),
		"HONEYBEE_GATEWAY_LISTEN=127.0.0.1:" + strconv.Itoa(p.Gateway),
		"HONEYBEE_GATEWAY_ADMIN_LISTEN=127.0.0.1:" + strconv.Itoa(p.GatewayAdmin),
		"HONEYBEE_API_ADDR=127.0.0.1:" + strconv.Itoa(p.API),
		"HONEYBEE_WS_ADDR=127.0.0.1:" + strconv.Itoa(p.WS),
		"HONEYBEE_GATEWAY_ID=bench",
	}
	bin := func(name string) string { return filepath.Join(cfg.Bin, name) }
	switch mode {
	case Embedded:
		env := append(common, "HONEYBEE_DATA_DIR="+data, "HONEYBEE_NATS_LISTEN=127.0.0.1:"+strconv.Itoa(p.NATS))
		if _, err := st.start(ctx, "honeybee", bin("honeybee"), nil, env, logs); err != nil {
			return st, err
		}
	case Separate:
		if _, err := st.start(ctx, "nats-server", bin("nats-server"),
			[]string{"-js", "-sd", data, "-a", "127.0.0.1", "-p", strconv.Itoa(p.NATS)}, nil, logs); err != nil {
			return st, err
		}
		if err := st.waitTCP(ctx, "127.0.0.1:"+strconv.Itoa(p.NATS), 30*time.Second); err != nil {
			return st, err
		}
		for _, name := range []string{"node-gateway", "api", "ws-proxy"} {
			if _, err := st.start(ctx, name, bin(name), nil, common, logs); err != nil {
				return st, err
			}
		}
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	ready := []string{
		fmt.Sprintf("http://127.0.0.1:%d/ready", p.API),
		fmt.Sprintf("http://127.0.0.1:%d/ready", p.WS),
	}
	if mode == Separate {
		ready = append(ready, fmt.Sprintf("http://127.0.0.1:%d/readyz", p.GatewayAdmin))
	}
	for _, u := range ready {
		if err := st.waitHTTP(ctx, u, 60*time.Second); err != nil {
			return st, err
		}
	}
	if err := st.waitTCP(ctx, "127.0.0.1:"+strconv.Itoa(p.Gateway), 30*time.Second); err != nil {
		return st, err
	}
	return st, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// EventPayload returns a payload as large as the average normalized
// attack event of the three dialects (what the gateway stores).
func EventPayload() ([]byte, error) {
	var total int
	var first []byte
	for _, d := range sim.Dialects {
		b, err := sim.StoredSample(d)
		if err != nil {
			return nil, err
		}
		total += len(b)
		if first == nil {
			first = b
		}
	}
	avg := total / len(sim.Dialects)
	if len(first) >= avg {
		return first[:avg], nil
	}
	return append(first, []byte(strings.Repeat(" ", avg-len(first)))...), nil
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if _, v, ok := strings.Cut(line, ":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
