package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/honeybee/core/scripts/load/internal/bench"
	"github.com/honeybee/core/scripts/load/internal/jsbench"
	"github.com/nats-io/nats.go/jetstream"
)

func cmdJSBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg jsbench.Config
	fs.StringVar(&cfg.URL, "nats", "nats://127.0.0.1:4222", "NATS URL")
	fs.IntVar(&cfg.Msgs, "msgs", 200_000, "messages to publish")
	size := fs.Int("size", 0, "message size in bytes (0: the average stored attack event)")
	fs.BoolVar(&cfg.MsgID, "msgid", true, "set a unique Nats-Msg-Id on each message, as the gateway does")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "parallel publishing connections")
	fs.IntVar(&cfg.MaxPending, "max-pending", 4000, "unacknowledged async publishes per publisher")
	fs.IntVar(&cfg.Subjects, "subjects", 100, "subjects the messages are spread over")
	memory := fs.Bool("memory", false, "memory storage instead of file (the events stream uses file)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	payload, err := bench.EventPayload()
	if err != nil {
		return err
	}
	if *size > 0 {
		payload = bytes.Repeat([]byte("x"), *size)
	}
	cfg.Payload = payload
	if *memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	res, err := jsbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "jsbench: %d msgs of %d B, %d publisher(s), msg ids %v: %.0f msgs/s, %.1f MB/s, %d stored, %d errors, %.2fs\n",
		res.Msgs, res.Size, res.Publishers, cfg.MsgID, res.MsgsPerSec, res.MBPerSec, res.Stored, res.Errors, res.Seconds)
	return nil
}
