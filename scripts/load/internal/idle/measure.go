package idle

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/honeybee/core/scripts/load/internal/procstat"
)

// Result is the memory cost of idle connections to one core process.
type Result struct {
	Kind        Kind    `json:"kind"`
	Count       int     `json:"count"`
	Procs       int     `json:"procs"`
	Connected   int     `json:"connected"`
	Failed      int     `json:"failed"`
	Dropped     int     `json:"dropped"` // lost while held
	ConnectSecs float64 `json:"connect_s"`
	Target      string  `json:"target"`
	PID         int     `json:"pid"`
	RSSBefore   int64   `json:"rss_before_bytes"`
	RSSAfter    int64   `json:"rss_after_bytes"`
	PeakRSS     int64   `json:"peak_rss_bytes"`
	Threads     int     `json:"threads"`
	// PerConn is (RSSAfter - RSSBefore) / Connected, in bytes.
	PerConn float64  `json:"per_conn_bytes"`
	Errors  []string `json:"errors,omitempty"`
}

// Spawn builds the command of a child holding n connections from offset;
// the child must speak RunChild's protocol on stdin and stdout.
type Spawn func(n, offset int) *exec.Cmd

// Measure samples target, opens cfg.Count connections (over cfg.Procs
// processes when spawn is not nil), waits settle, samples target again,
// then closes everything. Progress notes go to log (nil: none).
func Measure(ctx context.Context, cfg Config, target procstat.Proc, settle time.Duration, spawn Spawn, log io.Writer) (Result, error) {
	if log == nil {
		log = io.Discard
	}
	res := Result{Kind: cfg.Kind, Count: cfg.Count, Procs: max(cfg.Procs, 1), Target: target.Name, PID: target.PID}
	before, err := procstat.Read(target.PID)
	if err != nil {
		return res, fmt.Errorf("sample %s: %w", target.Name, err)
	}
	res.RSSBefore = before.RSS
	start := time.Now()
	holders, err := startHolders(ctx, cfg, spawn, log)
	if err != nil {
		return res, err
	}
	for _, h := range holders {
		r := h.ready
		res.Connected += r.Connected
		res.Failed += r.Failed
		res.Errors = append(res.Errors, r.Errors...)
	}
	res.ConnectSecs = time.Since(start).Seconds()
	fmt.Fprintf(log, "idle %s: %d connected, %d failed in %.1fs; settling %v\n", cfg.Kind, res.Connected, res.Failed, res.ConnectSecs, settle)
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
	after, err := procstat.Read(target.PID)
	for _, h := range holders {
		d, herr := h.stop()
		res.Dropped += d
		if herr != nil {
			res.Errors = append(res.Errors, herr.Error())
		}
	}
	if err != nil {
		return res, fmt.Errorf("sample %s: %w", target.Name, err)
	}
	res.RSSAfter, res.PeakRSS, res.Threads = after.RSS, after.HWM, after.Threads
	if res.Connected == 0 {
		return res, fmt.Errorf("idle %s: no connection succeeded (%d failed)", cfg.Kind, res.Failed)
	}
	res.PerConn = float64(res.RSSAfter-res.RSSBefore) / float64(res.Connected)
	return res, ctx.Err()
}

type holder struct {
	ready Ready
	stop  func() (dropped int, err error)
}

// startHolders starts the holders and waits until each is ready.
func startHolders(ctx context.Context, cfg Config, spawn Spawn, log io.Writer) ([]*holder, error) {
	procs := max(cfg.Procs, 1)
	if spawn == nil || procs == 1 {
		h, err := startLocal(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return []*holder{h}, nil
	}
	var hs []*holder
	per, extra := cfg.Count/procs, cfg.Count%procs
	offset := 0
	for p := range procs {
		n := per
		if p < extra {
			n++
		}
		h, err := startChild(spawn(n, offset), log)
		if err != nil {
			for _, h := range hs {
				h.stop()
			}
			return nil, err
		}
		hs = append(hs, h)
		offset += n
	}
	return hs, nil
}

func startLocal(ctx context.Context, cfg Config) (*holder, error) {
	hctx, cancel := context.WithCancel(ctx)
	readyc := make(chan Ready, 1)
	type out struct {
		dropped int
		err     error
	}
	done := make(chan out, 1)
	go func() {
		d, err := Hold(hctx, cfg, cfg.Count, 0, func(r Ready) { readyc <- r })
		done <- out{d, err}
	}()
	select {
	case r := <-readyc:
		return &holder{ready: r, stop: func() (int, error) {
			cancel()
			o := <-done
			return o.dropped, o.err
		}}, nil
	case o := <-done:
		cancel()
		return nil, fmt.Errorf("hold: %w", o.err)
	}
}

// Child protocol: the child writes one JSON Ready line when its
// connections are open, holds them until its stdin closes, then writes
// one JSON line {"dropped": n} and exits.
type childDone struct {
	Dropped int    `json:"dropped"`
	Error   string `json:"error,omitempty"`
}

func startChild(cmd *exec.Cmd, log io.Writer) (*holder, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if cmd.Stderr == nil {
		cmd.Stderr = log
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start holder %s: %w", cmd.Path, err)
	}
	sc := bufio.NewScanner(stdout)
	var ready Ready
	if !sc.Scan() {
		stdin.Close()
		werr := cmd.Wait()
		return nil, fmt.Errorf("holder exited before it was ready: %v", errors.Join(sc.Err(), werr))
	}
	if err := json.Unmarshal(sc.Bytes(), &ready); err != nil {
		stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("holder: bad ready line %q: %w", sc.Text(), err)
	}
	var once sync.Once
	var dropped int
	var stopErr error
	return &holder{ready: ready, stop: func() (int, error) {
		once.Do(func() {
			stdin.Close()
			var d childDone
			if sc.Scan() {
				stopErr = json.Unmarshal(sc.Bytes(), &d)
				if d.Error != "" {
					stopErr = errors.New(d.Error)
				}
			}
			_, _ = io.Copy(io.Discard, stdout)
			stopErr = errors.Join(stopErr, cmd.Wait())
			dropped = d.Dropped
		})
		return dropped, stopErr
	}}, nil
}

// RunChild is the child side: it holds n connections from offset, writes
// the Ready line to stdout, holds until stdin reaches EOF (or ctx ends),
// then closes them and writes the final line.
func RunChild(ctx context.Context, cfg Config, n, offset int, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	enc := json.NewEncoder(stdout)
	var encErr error
	dropped, err := Hold(ctx, cfg, n, offset, func(r Ready) { encErr = enc.Encode(r) })
	d := childDone{Dropped: dropped}
	if err != nil {
		d.Error = err.Error()
	}
	return errors.Join(encErr, enc.Encode(d), err)
}
