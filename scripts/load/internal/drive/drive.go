package drive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/scripts/load/internal/apiclient"
	"github.com/honeybee/core/scripts/load/internal/procstat"
	"github.com/honeybee/core/scripts/load/internal/sim"
	"github.com/honeybee/core/scripts/load/internal/stats"
	"github.com/honeybee/core/scripts/load/internal/wsclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Result is everything one scenario measured.
type Result struct {
	Started time.Time     `json:"started"`
	Config  Config        `json:"config"`
	Nodes   NodeResult    `json:"nodes"`
	Events  EventResult   `json:"events"`
	Latency stats.Summary `json:"latency"`
	// LatencyIngest is send -> gateway received_at; LatencyDelivery is
	// received_at -> subscriber (the rest of the path).
	LatencyIngest   stats.Summary    `json:"latency_ingest"`
	LatencyDelivery stats.Summary    `json:"latency_delivery"`
	Subscribers     SubscriberResult `json:"subscribers"`
	Commands        *CommandResult   `json:"commands,omitempty"`
	Processes       []procstat.Usage `json:"processes,omitempty"`
	// Errors holds the first errors met (connections, commands, ...).
	Errors []string `json:"errors,omitempty"`
}

// NodeResult describes the simulated fleet.
type NodeResult struct {
	Requested    int     `json:"requested"`
	Connected    int     `json:"connected"`
	Refused      int     `json:"refused"`
	Failed       int     `json:"failed"`       // dial or registration errors other than a refusal
	Disconnected int     `json:"disconnected"` // connections lost while running
	ConnectSecs  float64 `json:"connect_s"`
}

// EventResult counts attack events end to end.
type EventResult struct {
	Sent     uint64  `json:"sent"`
	SendSecs float64 `json:"send_s"`
	SendRate float64 `json:"send_rate"`
	// Stored is how many of the events are in the events stream (-1 when
	// not counted).
	Stored int64 `json:"stored"`
	// Received is the fewest distinct events any subscriber got.
	Received uint64 `json:"received"`
	// Lost is the most events any subscriber missed; StoreLost those
	// missing from the stream.
	Lost      uint64 `json:"lost"`
	StoreLost int64  `json:"store_lost"`
	// Duplicated counts deliveries of an event already delivered, summed
	// over subscribers.
	Duplicated uint64 `json:"duplicated"`
	// E2ERate is Received over the time from the first send to the last
	// delivery (the slowest subscriber): the sustained end-to-end rate.
	E2ERate float64 `json:"e2e_rate"`
	// Deliveries is distinct events delivered, summed over subscribers,
	// and DeliveryRate that over the same window (fan-out).
	Deliveries   uint64  `json:"deliveries"`
	DeliveryRate float64 `json:"delivery_rate"`
	// StoredBytes is the average stored message size (0 when unknown).
	AvgStoredBytes float64 `json:"avg_stored_bytes,omitempty"`
}

// SubscriberResult describes the WebSocket subscribers.
type SubscriberResult struct {
	Requested    int            `json:"requested"`
	Connected    int            `json:"connected"`
	Closed       int            `json:"closed"` // closed by the server or failed while running
	CloseReasons map[string]int `json:"close_reasons,omitempty"`
}

// CommandResult describes the command round trips.
type CommandResult struct {
	Sent        int `json:"sent"`
	Errors      int `json:"errors"`
	Undelivered int `json:"undelivered"` // the node never saw the command
	Incomplete  int `json:"incomplete"`  // the api never showed the node's answer
	Failed      int `json:"failed"`      // the api showed the command failed
	// Post is POST -> 202; Delivery is POST sent -> NodeCommand read by
	// the node; Complete is POST sent -> the api shows the node's answer.
	Post     stats.Summary `json:"post"`
	Delivery stats.Summary `json:"delivery"`
	Complete stats.Summary `json:"complete"`
}

type errList struct {
	mu   sync.Mutex
	errs []string
	n    int
}

func (e *errList) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.errs) < 20 {
		e.errs = append(e.errs, err.Error())
	}
}

func (e *errList) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Clone(e.errs)
	if e.n > len(e.errs) {
		out = append(out, fmt.Sprintf("... and %d more", e.n-len(e.errs)))
	}
	return out
}

type fleetNode struct {
	node *sim.Node
	seen chan time.Time // NodeCommand arrivals
}

// Run executes the scenario and returns what it measured. Progress lines
// go to progress (nil for none). It returns an error only when nothing
// could be measured (no node connected, bad config).
func Run(ctx context.Context, cfg Config, progress io.Writer) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{Started: time.Now().UTC(), Config: cfg}
	var errs errList
	defer func() { res.Errors = errs.list() }()

	procs, err := procstat.Resolve(cfg.Procs)
	if err != nil {
		return res, fmt.Errorf("-procs: %w", err)
	}
	c, err := bus.New(cfg.Prefix)
	if err != nil {
		return res, err
	}
	var api *apiclient.Client
	if cfg.APIURL != "" {
		api = apiclient.New(cfg.APIURL, cfg.APIToken)
		defer api.CloseIdle()
	}
	var store *streamCounter
	if cfg.NATSURL != "" {
		store, err = newStreamCounter(ctx, cfg.NATSURL, c)
		if err != nil {
			errs.add(err)
			store = nil
		} else {
			defer store.close()
			if cfg.PurgeEvents {
				if err := store.stream.Purge(ctx); err != nil {
					errs.add(fmt.Errorf("purging the events stream: %w", err))
				}
			}
		}
	}

	// Subscribers first, so they see every event.
	subCtx, stopSubs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSubs()
	var subs []*wsclient.Subscriber
	var subWG sync.WaitGroup
	var subClosed atomic.Int64
	for i := range cfg.Subscribers {
		s, err := wsclient.Subscribe(ctx, wsclient.Config{URL: cfg.WSURL, Token: cfg.WSToken, LocalIP: SourceIP(cfg.WSURL[strings.Index(cfg.WSURL, "//")+2:], cfg.SrcIPs, i)})
		if err != nil {
			errs.add(fmt.Errorf("subscriber %d: %w", i, err))
			continue
		}
		subs = append(subs, s)
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			if err := s.Run(subCtx); err != nil {
				subClosed.Add(1)
				errs.add(fmt.Errorf("subscriber: %w", err))
			}
		}()
	}
	res.Subscribers = SubscriberResult{Requested: cfg.Subscribers, Connected: len(subs)}
	defer func() {
		stopSubs()
		subWG.Wait()
	}()

	// Nodes.
	runCtx, stopNodes := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNodes()
	fleet, nr := dialFleet(ctx, cfg, api, &errs)
	res.Nodes = nr
	var nodeWG sync.WaitGroup
	var disconnected atomic.Int64
	var live []*fleetNode
	for _, f := range fleet {
		if f == nil {
			continue
		}
		live = append(live, f)
		nodeWG.Add(1)
		go func() {
			defer nodeWG.Done()
			if err := f.node.Run(runCtx, cfg.Heartbeat); err != nil {
				disconnected.Add(1)
				errs.add(err)
			}
		}()
	}
	defer func() {
		stopNodes()
		nodeWG.Wait()
		res.Nodes.Disconnected = int(disconnected.Load())
	}()
	if len(live) == 0 && cfg.Nodes > 0 {
		return res, errors.New("no node connected; see errors")
	}

	// Send.
	before := sampleProcs(procs)
	var storeBase uint64
	if store != nil {
		storeBase, _ = store.lastSeq(ctx)
	}
	sendCtx, stopSend := context.WithTimeout(ctx, cfg.Duration)
	defer stopSend()
	start := time.Now()
	var pumpWG sync.WaitGroup
	perNode := 0.0
	if cfg.Rate > 0 && len(live) > 0 {
		perNode = cfg.Rate / float64(len(live))
	}
	for _, f := range live {
		if cfg.NoEvents {
			break
		}
		pumpWG.Add(1)
		go func() {
			defer pumpWG.Done()
			if err := f.node.Pump(sendCtx, perNode, cfg.Batch); err != nil {
				errs.add(fmt.Errorf("node %s: send: %w", f.node.Config().NodeName, err))
			}
		}()
	}
	var cmdRes *CommandResult
	var cmdWG sync.WaitGroup
	if cfg.CmdWorkers > 0 && len(live) > 0 {
		cmdRes = &CommandResult{}
		runCommands(sendCtx, &cmdWG, cfg, api, live, cmdRes, &errs)
	}
	prog := newProgress(progress, cfg.Progress, start, live, subs, store, storeBase, procs)
	prog.start(ctx)
	pumpWG.Wait()
	if cfg.NoEvents {
		<-sendCtx.Done()
	}
	cmdWG.Wait()
	sendEnd := time.Now()
	after := sampleProcs(procs)
	var sent uint64
	for _, f := range live {
		sent += f.node.Sent()
	}

	// Drain: wait for the subscribers (or the stream) to catch up.
	drain(ctx, cfg, sent, subs, store, storeBase)
	prog.stop()
	stopSubs()
	subWG.Wait()

	ev := EventResult{Sent: sent, SendSecs: sendEnd.Sub(start).Seconds(), Stored: -1, StoreLost: -1}
	if ev.SendSecs > 0 {
		ev.SendRate = float64(sent) / ev.SendSecs
	}
	if store != nil {
		n, avg, err := store.countNodes(ctx, live)
		if err != nil {
			errs.add(err)
		} else {
			ev.Stored, ev.AvgStoredBytes = int64(n), avg
			ev.StoreLost = max(int64(sent)-int64(n), 0)
		}
	}
	var lat, latIn, latOut stats.Histogram
	var lastAt time.Time
	reasons := map[string]int{}
	for i, s := range subs {
		d := s.Tracker.Distinct()
		if i == 0 || d < ev.Received {
			ev.Received = d
		}
		if sent > d {
			ev.Lost = max(ev.Lost, sent-d)
		}
		ev.Duplicated += s.Tracker.Duplicates()
		ev.Deliveries += d
		lat.Merge(&s.Latency)
		latIn.Merge(&s.Ingest)
		latOut.Merge(&s.Delivery)
		if t := s.LastAt(); t.After(lastAt) {
			lastAt = t
		}
		if s.CloseStatus != -1 {
			reasons[fmt.Sprintf("%d %s", int(s.CloseStatus), s.CloseReason)]++
		}
	}
	if len(subs) > 0 && lastAt.After(start) {
		w := lastAt.Sub(start).Seconds()
		ev.E2ERate = float64(ev.Received) / w
		ev.DeliveryRate = float64(ev.Deliveries) / w
	}
	res.Events = ev
	res.Latency = lat.Summary()
	res.LatencyIngest, res.LatencyDelivery = latIn.Summary(), latOut.Summary()
	res.Subscribers.Closed = int(subClosed.Load())
	if len(reasons) > 0 {
		res.Subscribers.CloseReasons = reasons
	}
	res.Commands = cmdRes
	res.Processes = usages(procs, before, after)
	return res, nil
}

// dialFleet connects cfg.Nodes nodes, DialParallel at a time. The slice
// has nil where a node failed.
func dialFleet(ctx context.Context, cfg Config, api *apiclient.Client, errs *errList) ([]*fleetNode, NodeResult) {
	runID := make([]byte, 3)
	_, _ = rand.Read(runID)
	fleet := make([]*fleetNode, cfg.Nodes)
	sem := make(chan struct{}, max(cfg.DialParallel, 1))
	var wg sync.WaitGroup
	var refused, failed atomic.Int64
	start := time.Now()
	for i := range cfg.Nodes {
		if ctx.Err() != nil {
			failed.Add(1)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f := &fleetNode{seen: make(chan time.Time, 1)}
			nc := sim.Config{
				Addr: cfg.GatewayAddr, TLS: cfg.TLS, LocalIP: SourceIP(cfg.GatewayAddr, cfg.SrcIPs, i),
				Index: uint32(i), NodeID: mrand.Uint64() | 1, NodeName: fmt.Sprintf("load-%s-%05d", hex.EncodeToString(runID), i),
				Pots: cfg.Pots, SendBuffer: cfg.SendBuffer, Dialect: cfg.Dialects[i%len(cfg.Dialects)],
				OnCommand: func(_ proto.NodeCommand, at time.Time) {
					select {
					case f.seen <- at:
					default:
					}
				},
			}
			if cfg.TOTP == "enroll" {
				secret, err := api.Enroll(ctx, nc.NodeName)
				if err != nil {
					failed.Add(1)
					errs.add(fmt.Errorf("enroll %s: %w", nc.NodeName, err))
					return
				}
				nc.TOTPSecret = secret
			}
			n, err := sim.Dial(ctx, nc)
			if err == nil {
				err = n.Announce()
				if err != nil {
					n.Close()
				}
			}
			if err != nil {
				if errors.Is(err, sim.ErrRefused) {
					refused.Add(1)
				} else {
					failed.Add(1)
				}
				errs.add(err)
				return
			}
			f.node = n
			fleet[i] = f
		}()
	}
	wg.Wait()
	nr := NodeResult{Requested: cfg.Nodes, Refused: int(refused.Load()), Failed: int(failed.Load()), ConnectSecs: time.Since(start).Seconds()}
	for _, f := range fleet {
		if f != nil {
			nr.Connected++
		}
	}
	return fleet, nr
}

// runCommands starts cfg.CmdWorkers workers; worker w owns the nodes at
// positions w, w+workers, ... so no node has two commands in flight.
func runCommands(ctx context.Context, wg *sync.WaitGroup, cfg Config, api *apiclient.Client, live []*fleetNode, out *CommandResult, errs *errList) {
	var mu sync.Mutex
	var post, delivery, complete stats.Histogram
	var done sync.WaitGroup
	for w := range min(cfg.CmdWorkers, len(live)) {
		var mine []*fleetNode
		for p := w; p < len(live); p += cfg.CmdWorkers {
			mine = append(mine, live[p])
		}
		done.Add(1)
		go func() {
			defer done.Done()
			for k := 0; ctx.Err() == nil; k++ {
				f := mine[k%len(mine)]
				cmd := json.RawMessage(`{"DeployPot":"` + sim.PotID(0) + `"}`)
				if k%2 == 1 {
					cmd = json.RawMessage(`{"StopPot":"` + sim.PotID(0) + `"}`)
				}
				r := commandOnce(ctx, api, f, cmd, cfg.CmdPoll, &post, &delivery, &complete)
				mu.Lock()
				r.addTo(out)
				mu.Unlock()
				if r.err != nil {
					errs.add(r.err)
				}
				if cfg.CmdPause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(cfg.CmdPause):
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		done.Wait()
		out.Post, out.Delivery, out.Complete = post.Summary(), delivery.Summary(), complete.Summary()
	}()
}

type cmdOutcome struct {
	sent, undelivered, incomplete, failed bool
	err                                   error
}

func (r cmdOutcome) addTo(out *CommandResult) {
	if r.sent {
		out.Sent++
	}
	if r.err != nil && !r.sent {
		out.Errors++
	}
	if r.undelivered {
		out.Undelivered++
	}
	if r.incomplete {
		out.Incomplete++
	}
	if r.failed {
		out.Failed++
	}
}

const cmdWait = 5 * time.Second

func commandOnce(ctx context.Context, api *apiclient.Client, f *fleetNode, cmd json.RawMessage, poll time.Duration, post, delivery, complete *stats.Histogram) cmdOutcome {
	select { // forget a late arrival of an earlier command
	case <-f.seen:
	default:
	}
	// The round trip is measured whole even when the send window closes
	// meanwhile; ctx only stops new commands.
	octx := context.WithoutCancel(ctx)
	t0 := time.Now()
	acc, err := api.SendCommand(octx, f.node.Config().NodeID, cmd)
	if err != nil {
		return cmdOutcome{err: fmt.Errorf("command to %s: %w", f.node.Config().NodeName, err)}
	}
	post.Record(time.Since(t0))
	out := cmdOutcome{sent: true}
	select {
	case at := <-f.seen:
		delivery.Record(at.Sub(t0))
	case <-time.After(cmdWait):
		out.undelivered = true
		out.err = fmt.Errorf("command %s: node %s never received it", acc.CommandID, f.node.Config().NodeName)
		return out
	}
	deadline := t0.Add(cmdWait)
	for {
		st, err := api.Command(octx, acc.CommandID)
		if err == nil {
			switch st.State {
			case bus.CommandSucceeded:
				complete.Record(time.Since(t0))
				return out
			case bus.CommandFailed:
				out.failed = true
				return out
			}
		} else if !errors.Is(err, apiclient.ErrStatus) {
			out.err = err
		}
		if time.Now().After(deadline) {
			out.incomplete = true
			if out.err == nil {
				out.err = fmt.Errorf("command %s: state %q after %v, never succeeded (%v)", acc.CommandID, st.State, cmdWait, err)
			}
			return out
		}
		time.Sleep(poll)
	}
}

// drain waits until every subscriber (or, without subscribers, the
// stream) has caught up with sent, or nothing new arrived at any
// subscriber nor in the stream for DrainQuiet, or Drain passed.
func drain(ctx context.Context, cfg Config, sent uint64, subs []*wsclient.Subscriber, store *streamCounter, base uint64) {
	if len(subs) == 0 && store == nil {
		return
	}
	deadline := time.Now().Add(cfg.Drain)
	var last uint64
	lastChange := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var activity uint64 // grows while anything still arrives
		done := true
		for _, s := range subs {
			r := s.Distinct()
			activity += s.Received()
			if r < sent {
				done = false
			}
		}
		if store != nil {
			seq, err := store.lastSeq(ctx)
			if err == nil {
				activity += seq
				if len(subs) == 0 && seq-base < sent {
					done = false
				}
			}
		}
		if done {
			return
		}
		if activity != last {
			last, lastChange = activity, time.Now()
		} else if time.Since(lastChange) > cfg.DrainQuiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamCounter reads the events stream.
type streamCounter struct {
	nc     *nats.Conn
	stream jetstream.Stream
	c      bus.Contract
}

func newStreamCounter(ctx context.Context, url string, c bus.Contract) (*streamCounter, error) {
	nc, err := nats.Connect(url, nats.Name("load"))
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	st, err := js.Stream(ctx, c.EventsStream())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("events stream %s: %w", c.EventsStream(), err)
	}
	return &streamCounter{nc: nc, stream: st, c: c}, nil
}

func (s *streamCounter) close() { s.nc.Close() }

func (s *streamCounter) lastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// countNodes sums the stored messages on the event subjects of the given
// nodes, and returns the stream's average message size.
func (s *streamCounter) countNodes(ctx context.Context, live []*fleetNode) (uint64, float64, error) {
	var total atomic.Uint64
	var firstErr error
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, f := range live {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.c.EventsOf(f.node.Config().NodeID, nil)))
			if err != nil {
				mu.Lock()
				firstErr = cmpOr(firstErr, fmt.Errorf("stream info: %w", err))
				mu.Unlock()
				return
			}
			var n uint64
			for _, c := range info.State.Subjects {
				n += c
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	info, err := s.stream.Info(ctx)
	var avg float64
	if err == nil && info.State.Msgs > 0 {
		avg = float64(info.State.Bytes) / float64(info.State.Msgs)
	}
	return total.Load(), avg, firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func sampleProcs(procs []procstat.Proc) []procstat.Sample {
	out := make([]procstat.Sample, len(procs))
	for i, p := range procs {
		if s, err := procstat.Read(p.PID); err == nil {
			out[i] = s
		}
	}
	return out
}

func usages(procs []procstat.Proc, before, after []procstat.Sample) []procstat.Usage {
	var out []procstat.Usage
	for i, p := range procs {
		if after[i].PID == 0 || before[i].PID == 0 {
			continue
		}
		out = append(out, procstat.Between(p.Name, before[i], after[i]))
	}
	return out
}
