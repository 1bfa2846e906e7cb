package drive

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/honeybee/core/scripts/load/internal/procstat"
	"github.com/honeybee/core/scripts/load/internal/wsclient"
)

// progress prints one line per interval while a scenario runs.
type progress struct {
	w        io.Writer
	every    time.Duration
	t0       time.Time
	live     []*fleetNode
	subs     []*wsclient.Subscriber
	store    *streamCounter
	base     uint64
	procs    []procstat.Proc
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	lastSent uint64
	lastRecv uint64
	lastAt   time.Time
	lastCPU  []procstat.Sample
}

func newProgress(w io.Writer, every time.Duration, t0 time.Time, live []*fleetNode, subs []*wsclient.Subscriber,
	store *streamCounter, base uint64, procs []procstat.Proc) *progress {
	return &progress{w: w, every: every, t0: t0, live: live, subs: subs, store: store, base: base, procs: procs}
}

func (p *progress) start(ctx context.Context) {
	if p.w == nil || p.every <= 0 {
		return
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.lastAt = p.t0
	p.lastCPU = sampleProcs(p.procs)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.line(ctx)
			}
		}
	}()
}

func (p *progress) stop() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
}

func (p *progress) line(ctx context.Context) {
	now := time.Now()
	dt := now.Sub(p.lastAt).Seconds()
	var sent uint64
	for _, f := range p.live {
		sent += f.node.Sent()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "t=%5.1fs sent=%d (%.0f/s)", now.Sub(p.t0).Seconds(), sent, float64(sent-p.lastSent)/dt)
	if len(p.subs) > 0 {
		recv := ^uint64(0)
		for _, s := range p.subs {
			recv = min(recv, s.Distinct())
		}
		fmt.Fprintf(&b, " recv(min)=%d (%.0f/s)", recv, float64(recv-p.lastRecv)/dt)
		p.lastRecv = recv
	}
	if p.store != nil {
		if seq, err := p.store.lastSeq(ctx); err == nil {
			fmt.Fprintf(&b, " stream+=%d", seq-p.base)
		}
	}
	cur := sampleProcs(p.procs)
	for i, pr := range p.procs {
		if cur[i].PID == 0 || p.lastCPU[i].PID == 0 {
			continue
		}
		u := procstat.Between(pr.Name, p.lastCPU[i], cur[i])
		fmt.Fprintf(&b, " | %s %.0f%% %.0fMiB", pr.Name, u.CPUPct, float64(u.RSS)/(1<<20))
	}
	fmt.Fprintln(p.w, b.String())
	p.lastSent, p.lastAt, p.lastCPU = sent, now, cur
}
