package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrNoReplica is returned by the dialer when no replica accepts a
// connection; the proxy answers 502.
var ErrNoReplica = errors.New("no upstream replica available")

// downFor is how long a replica whose dial failed gets no new connections
// unless a probe finds it ready again first.
const downFor = 10 * time.Second

// replica is one resolved upstream address.
type replica struct {
	addr      string    // ip:port
	ready     bool      // last probe answered 2xx (or probing is off)
	downUntil time.Time // set when a dial failed
}

// pool is the set of upstream replicas and the round-robin cursor. It is
// safe for concurrent use: the resolver loop replaces entries while
// client connections pick from them.
type pool struct {
	cfg    Config
	log    zerolog.Logger
	dialer net.Dialer
	probe  *http.Client

	mu       sync.Mutex
	replicas []*replica // sorted by addr
	next     int
}

func newPool(cfg Config, log zerolog.Logger) *pool {
	return &pool{
		cfg:    cfg,
		log:    log,
		dialer: net.Dialer{Timeout: cfg.DialTimeout},
		probe: &http.Client{
			Timeout:   cfg.DialTimeout + time.Second,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
}

// run resolves and probes the replicas every ResolveInterval until ctx is
// done.
func (p *pool) run(ctx context.Context) {
	t := time.NewTicker(p.cfg.ResolveInterval)
	defer t.Stop()
	for {
		p.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh resolves the upstream host, probes every address, and replaces
// the replica set. A failed lookup that is not "no such host" keeps the
// previous set: a DNS hiccup must not drop every client.
func (p *pool) refresh(ctx context.Context) {
	host, port, _ := net.SplitHostPort(p.cfg.Upstream)
	lookup := p.cfg.Lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	lctx, cancel := context.WithTimeout(ctx, p.cfg.ResolveInterval+time.Second)
	ips, err := lookup(lctx, host)
	cancel()
	var dnsErr *net.DNSError
	switch {
	case err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		ips = nil // every replica is gone
	case err != nil:
		if ctx.Err() == nil {
			p.log.Warn().Err(err).Str("upstream", p.cfg.Upstream).Msg("resolve failed; keeping the previous replicas")
		}
		return
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip, port))
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)

	ready := make([]bool, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { ready[i] = p.ready(ctx, a) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	old := make(map[string]*replica, len(p.replicas))
	for _, r := range p.replicas {
		old[r.addr] = r
	}
	next := make([]*replica, 0, len(addrs))
	for i, a := range addrs {
		r, ok := old[a]
		if !ok {
			r = &replica{addr: a}
			p.log.Info().Str("replica", a).Bool("ready", ready[i]).Msg("replica added")
		} else if r.ready != ready[i] {
			p.log.Info().Str("replica", a).Bool("ready", ready[i]).Msg("replica readiness changed")
		}
		r.ready = ready[i]
		if ready[i] && p.cfg.HealthPath != "" {
			r.downUntil = time.Time{} // a fresh probe beats an old dial failure
		}
		delete(old, a)
		next = append(next, r)
	}
	for a := range old {
		p.log.Info().Str("replica", a).Msg("replica removed")
	}
	p.replicas = next
}

// ready probes one replica's HealthPath.
func (p *pool) ready(ctx context.Context, addr string) bool {
	if p.cfg.HealthPath == "" {
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p.cfg.HealthPath, nil)
	if err != nil {
		return false
	}
	resp, err := p.probe.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode <= 299
}

// candidates returns the usable replicas in round-robin order, advancing
// the cursor by one.
func (p *pool) candidates() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var out []string
	n := len(p.replicas)
	for i := range n {
		r := p.replicas[(p.next+i)%n]
		if r.ready && now.After(r.downUntil) {
			out = append(out, r.addr)
		}
	}
	if n > 0 {
		p.next = (p.next + 1) % n
	}
	return out
}

// usable reports how many replicas would get new connections.
func (p *pool) usable() (usable, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for _, r := range p.replicas {
		if r.ready && now.After(r.downUntil) {
			usable++
		}
	}
	return usable, len(p.replicas)
}

func (p *pool) markDown(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.replicas {
		if r.addr == addr {
			r.downUntil = time.Now().Add(downFor)
		}
	}
}

// dial connects to the next usable replica, trying the others in turn
// when one refuses. Nothing has been sent when a dial fails, so trying
// the next replica is safe for any request.
func (p *pool) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var errs []error
	for _, addr := range p.candidates() {
		c, err := p.dialer.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.log.Warn().Err(err).Str("replica", addr).Msg("dial failed; trying the next replica")
		p.markDown(addr)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrNoReplica, p.cfg.Upstream, errors.Join(errs...))
}
