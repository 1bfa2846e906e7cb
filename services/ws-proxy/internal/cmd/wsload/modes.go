package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

func asClose(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }

func wsURL(b *bench, query string) string {
	return "ws" + strings.TrimPrefix(b.base, "http") + "/stream?" + query
}

// waitMetric polls a metric until it reaches want or d passes.
func waitMetric(b *bench, name string, want float64, d time.Duration) float64 {
	deadline := time.Now().Add(d)
	for {
		v := b.metric(name)
		if v >= want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const sentMetric = `honeybee_wsproxy_frames_sent_total{kind="event"}`
const slowMetric = `honeybee_wsproxy_slow_consumers_total`

func runLatency(fs *flag.FlagSet, args []string) error {
	clients := fs.Int("clients", 1000, "stream clients")
	rate := fs.Int("rate", 1000, "events per second")
	d := fs.Duration("duration", 20*time.Second, "publishing time")
	warmup := fs.Duration("warmup", 3*time.Second, "first part of the run not recorded")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the proxy process")
	_ = fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	b, err := startBench(0)
	if err != nil {
		return err
	}
	defer b.close()
	ch, err := startChild(wsURL(b, "types=event"), *clients, "-warmup", warmup.String())
	if err != nil {
		return err
	}
	cpu0, wall0 := cpuTime(), time.Now()
	sent, err := b.publish(*rate, *d)
	if err != nil {
		return err
	}
	want := float64(sent) * float64(*clients)
	got := waitMetric(b, sentMetric, want, 10*time.Second)
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	r, err := ch.finish()
	if err != nil {
		return err
	}
	fmt.Printf("latency: %d clients, %d events/s for %v (%d events, %.0f deliveries expected)\n", *clients, *rate, *d, sent, want)
	fmt.Printf("  proxy wrote %.0f, clients received %d, slow-consumer closes %.0f, closes %v\n", got, r.Received, b.metric(slowMetric), r.Closes)
	fmt.Printf("  publish -> client read (after %v warm-up): p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n", *warmup,
		r.quantile(0.5).Round(time.Microsecond), r.quantile(0.9).Round(time.Microsecond), r.quantile(0.99).Round(time.Microsecond),
		r.quantile(0.999).Round(time.Microsecond), r.quantile(1).Round(time.Microsecond))
	fmt.Printf("  CPU: proxy process (NATS, publisher, proxy) %.1fs over %.1fs = %.2f µs per delivery; clients process %.1fs in all\n",
		cpu.Seconds(), wall.Seconds(), float64(cpu.Microseconds())/got, r.CPU.Seconds())
	return nil
}

func runIdle(fs *flag.FlagSet, args []string) error {
	clients := fs.Int("clients", 10000, "idle stream clients")
	memprofile := fs.String("memprofile", "", "write a heap profile of the proxy process with the clients connected")
	_ = fs.Parse(args)
	b, err := startBench(0)
	if err != nil {
		return err
	}
	defer b.close()
	// A first small batch warms up pools and the listener, so the
	// measured delta is per client, not start-up.
	warm, err := startChild(wsURL(b, ""), 100, "-idle")
	if err != nil {
		return err
	}
	if _, err := warm.finish(); err != nil {
		return err
	}
	waitMetric(b, `honeybee_wsproxy_clients{endpoint="stream"}`, 0, time.Second)
	time.Sleep(time.Second)
	heap0, rss0 := memory()
	g0 := runtime.NumGoroutine()
	ch, err := startChild(wsURL(b, ""), *clients, "-idle")
	if err != nil {
		return err
	}
	if n := waitMetric(b, `honeybee_wsproxy_clients{endpoint="stream"}`, float64(*clients), 30*time.Second); n < float64(*clients) {
		return fmt.Errorf("only %v clients connected", n)
	}
	time.Sleep(2 * time.Second)
	heap1, rss1 := memory()
	g1 := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
		f.Close()
	}
	if _, err := ch.finish(); err != nil {
		return err
	}
	n := float64(*clients)
	fmt.Printf("idle: %d /stream clients on one replica (clients in a separate process)\n", *clients)
	fmt.Printf("  heap in use: %.1f MiB -> %.1f MiB: %.0f bytes per client\n", mib(heap0), mib(heap1), (float64(heap1)-float64(heap0))/n)
	fmt.Printf("  RSS:         %.1f MiB -> %.1f MiB: %.0f bytes per client\n", mib(rss0), mib(rss1), (float64(rss1)-float64(rss0))/n)
	fmt.Printf("  goroutines:  %d -> %d: %.2f per client (goroutine stacks in use with clients: %.1f MiB)\n", g0, g1, float64(g1-g0)/n, mib(ms.StackInuse))
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func runThroughput(fs *flag.FlagSet, args []string) error {
	clients := fs.Int("clients", 200, "stream clients")
	rates := fs.String("rates", "1000,2000,4000,8000", "event rates to try, in order")
	step := fs.Duration("step", 5*time.Second, "publishing time per rate")
	queue := fs.Int("queue", 4096, "proxy queue size per client")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the proxy process")
	_ = fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	b, err := startBench(*queue)
	if err != nil {
		return err
	}
	defer b.close()
	ch, err := startChild(wsURL(b, "types=event"), *clients, "-warmup", "0s")
	if err != nil {
		return err
	}
	fmt.Printf("throughput: %d clients, proxy queue %d per client\n", *clients, *queue)
	best := 0.0
	for _, s := range strings.Split(*rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		e0, slow0 := b.metric(sentMetric), b.metric(slowMetric)
		start, cpu0 := time.Now(), cpuTime()
		sent, err := b.publish(rate, *step)
		if err != nil {
			return err
		}
		want := e0 + float64(sent)*float64(*clients)
		e1 := waitMetric(b, sentMetric, want, 10*time.Second)
		el := time.Since(start)
		slow := b.metric(slowMetric) - slow0
		perSec := (e1 - e0) / el.Seconds()
		complete := e1 >= want
		cpu := cpuTime() - cpu0
		fmt.Printf("  %6d events/s: %9.0f deliveries/s (%.0f of %.0f delivered in %v), slow closes %.0f, proxy process CPU %.2f cores, %.2f µs per delivery\n",
			rate, perSec, e1-e0, want-e0, el.Round(time.Millisecond), slow, cpu.Seconds()/el.Seconds(), float64(cpu.Microseconds())/(e1-e0))
		if !complete || slow > 0 {
			break
		}
		best = max(best, perSec)
	}
	r, err := ch.finish()
	if err != nil {
		return err
	}
	fmt.Printf("  most sustained: %.0f deliveries/s; clients received %d in all, closes %v; clients process CPU %.1fs\n", best, r.Received, r.Closes, r.CPU.Seconds())
	return nil
}
