package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// Latency histogram: log buckets of 1% width over nanoseconds.
const nBuckets = 2600

var logBase = math.Log(1.01)

func bucket(ns int64) int {
	if ns < 1 {
		return 0
	}
	i := int(math.Log(float64(ns)) / logBase)
	return min(i, nBuckets-1)
}

func bucketValue(i int) time.Duration { return time.Duration(math.Exp(float64(i+1) * logBase)) }

// result is what the clients process reports.
type result struct {
	Connected int              `json:"connected"`
	Received  int64            `json:"received"`
	Closes    map[string]int   `json:"closes"`
	Hist      []uint64         `json:"hist"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	CPU       time.Duration    `json:"-"`
}

func (r result) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range r.Hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i, n := range r.Hist {
		acc += n
		if acc >= want {
			return bucketValue(i)
		}
	}
	return bucketValue(len(r.Hist) - 1)
}

// runClients is the child: it opens the clients, says READY on stdout,
// reads until stdin closes (or -max elapses), then prints a result.
func runClients(fs *flag.FlagSet, args []string) error {
	url := fs.String("url", "", "ws:// URL with path and query")
	n := fs.Int("clients", 1000, "clients to open")
	idle := fs.Bool("idle", false, "read nothing after the ack (CloseRead)")
	warmup := fs.Duration("warmup", 3*time.Second, "latencies before this are not recorded (from READY)")
	maxRun := fs.Duration("max", 10*time.Minute, "hard limit of the run")
	_ = fs.Parse(args)

	ctx, cancel := context.WithTimeout(context.Background(), *maxRun)
	defer cancel()
	conns := make([]*websocket.Conn, *n)
	var dialErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			defer dcancel()
			c, _, err := websocket.Dial(dctx, *url, nil)
			if err != nil {
				dialErr.Store(err)
				return
			}
			c.SetReadLimit(1 << 20)
			if _, _, err := c.Read(dctx); err != nil { // the ack
				dialErr.Store(err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	res := result{Connected: len(conns), Closes: map[string]int{}, Hist: make([]uint64, nBuckets)}
	fmt.Println("READY")
	start := time.Now()
	recordAfter := start.Add(*warmup).UnixNano()

	var mu sync.Mutex
	var received atomic.Int64
	key := []byte(`"sent_ns":`)
	for _, c := range conns {
		if *idle {
			c.CloseRead(ctx)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hist := make([]uint64, nBuckets)
			var got int64
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					mu.Lock()
					res.Closes[closeName(err)]++
					for i, v := range hist {
						res.Hist[i] += v
					}
					mu.Unlock()
					received.Add(got)
					return
				}
				now := time.Now().UnixNano()
				got++
				if i := bytes.Index(b, key); i >= 0 && now >= recordAfter {
					j := i + len(key)
					k := j
					for k < len(b) && b[k] >= '0' && b[k] <= '9' {
						k++
					}
					if sent, err := strconv.ParseInt(string(b[j:k]), 10, 64); err == nil {
						hist[bucket(now-sent)]++
					}
				}
			}
		}()
	}
	// Until the parent closes stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.CloseNow()
	}
	cancel()
	wg.Wait()
	res.Received = received.Load()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func closeName(err error) string {
	if s := websocket.CloseStatus(err); s != -1 {
		var ce websocket.CloseError
		if ok := asClose(err, &ce); ok && ce.Reason != "" {
			return s.String() + ": " + ce.Reason
		}
		return s.String()
	}
	return "closed by us or reset"
}

// child is a running clients process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startChild(url string, n int, extra ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"clients", "-url", url, "-clients", strconv.Itoa(n)}, extra...)...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := ch.out.ReadString('\n')
	if err != nil || line != "READY\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("clients process: %q %v", line, err)
	}
	return ch, nil
}

// finish ends the child and returns its result, with its CPU time.
func (c *child) finish() (result, error) {
	_ = c.stdin.Close()
	var r result
	err := json.NewDecoder(c.out).Decode(&r)
	werr := c.cmd.Wait()
	if err == nil {
		err = werr
	}
	if st := c.cmd.ProcessState; st != nil {
		r.CPU = st.UserTime() + st.SystemTime()
	}
	return r, err
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
