package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
)

func TestNodeAppendJSON(t *testing.T) {
	strs := []string{"", "plain", "a\"b\\c", "tab\there\nnl\r\x00\x01\x1f", "é日本", "\u2028\u2029", "bad\xffutf8\xc3", "<&>", "x.y *>"}
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)
	pick := func() string { return strs[rng.IntN(len(strs))] }
	for i := range 2000 {
		n := Node{NodeID: rng.Uint64(), NodeIDStr: pick(), NodeName: pick(), NodeType: proto.NodeType(pick()),
			Status: proto.NodeStatus(pick()), Connected: i%2 == 0, GatewayID: pick(), Address: pick(),
			Port: uint16(rng.IntN(65536)), RemoteAddr: pick()}
		if i%3 == 0 {
			n.ConnectedSince, n.LastSeen = &now, &now
		}
		if i%5 == 0 {
			r := pick()
			n.DisconnectReason, n.DisconnectedAt = &r, &now
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(n); err != nil {
			t.Fatal(err)
		}
		got := n.appendJSON(nil)
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("node %+v:\n got %s\nwant %s", n, got, want.Bytes())
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
	}
}
