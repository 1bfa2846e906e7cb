// Command wstail is a minimal WebSocket client for trying ws-proxy from a
// shell: it connects, sends each -send message as a text frame, and
// prints every frame it receives on its own line until interrupted (or
// until -n frames have arrived).
//
//	go run ./internal/cmd/wstail -token "$TOKEN" 'ws://127.0.0.1:9003/stream?event_type=cowrie.login.'
//	go run ./internal/cmd/wstail -n 1 -send '{"version":2,"message":{"BackendCommand":"GetNodes"}}' ws://127.0.0.1:9003/ws
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"

	"github.com/coder/websocket"
)

type sends []string

func (s *sends) String() string     { return fmt.Sprint(*s) }
func (s *sends) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var msgs sends
	token := flag.String("token", os.Getenv("HONEYBEE_TOKEN"), "bearer token (default $HONEYBEE_TOKEN)")
	n := flag.Int("n", 0, "exit after this many frames (0: never)")
	flag.Var(&msgs, "send", "text frame to send after connecting (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wstail [-token T] [-n N] [-send MSG]... ws://host:9003/stream")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	hdr := http.Header{}
	if *token != "" {
		hdr.Set("Authorization", "Bearer "+*token)
	}
	conn, resp, err := websocket.Dial(ctx, flag.Arg(0), &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		if resp != nil {
			fmt.Fprintf(os.Stderr, "HTTP %s\n", resp.Status)
		}
		fmt.Fprintln(os.Stderr, "wstail:", err)
		os.Exit(1)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)
	for _, m := range msgs {
		if err := conn.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			fmt.Fprintln(os.Stderr, "wstail:", err)
			os.Exit(1)
		}
	}
	for i := 0; *n == 0 || i < *n; i++ {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "wstail:", err)
				os.Exit(1)
			}
			return
		}
		fmt.Println(string(b))
	}
	conn.Close(websocket.StatusNormalClosure, "")
}
