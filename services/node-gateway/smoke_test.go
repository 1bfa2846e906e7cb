package gateway

import (
	"testing"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
)

func TestSmoke(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns)
	n := dialNode(t, tg.Addr().String())
	n.register(77, "smoke")
	n.status(proto.NodeRunning)
	n.potEvent("cowrie-01", "cowrie.login.failed")
	n.send(&proto.NodeDrop{})
	if !n.closed() {
		t.Fatal("not closed")
	}
	rec := tg.waitNode(t, 77, "disconnected", func(r bus.NodeRecord) bool { return !r.Connected })
	if rec.DisconnectReason != bus.ReasonDrop || rec.Status != proto.NodeRunning {
		t.Fatalf("record %+v", rec)
	}
	eventually(t, "1 event", func() bool { return len(tg.nodeEvents(t, 77)) == 1 })
}
