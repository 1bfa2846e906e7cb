// Command wsload measures one ws-proxy replica on loopback: delivery
// latency, memory per idle client, and the most deliveries per second.
//
// The parent process runs an embedded NATS server (with the events stream
// and buckets created as the gateway creates them), one ws-proxy and the
// event publisher; the WebSocket clients run in a child process (this
// binary again, mode "clients"), so that neither side needs more than
// 20,000 open files and the proxy's memory is measured alone. Every run
// is bounded by its flags in time and count.
//
//	go run ./internal/cmd/wsload latency -clients 1000 -rate 1000 -duration 20s
//	go run ./internal/cmd/wsload idle -clients 10000
//	go run ./internal/cmd/wsload throughput -clients 200 -rates 1000,2000,4000,8000 -step 5s
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	var err error
	switch mode {
	case "latency":
		err = runLatency(fs, args)
	case "idle":
		err = runIdle(fs, args)
	case "throughput":
		err = runThroughput(fs, args)
	case "clients":
		err = runClients(fs, args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: wsload latency|idle|throughput [flags]  (wsload MODE -h for flags)")
	os.Exit(2)
}
