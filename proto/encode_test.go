package proto_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
)

func TestMarshalExact(t *testing.T) {
	tests := []struct {
		name string
		give proto.Message
		want string
	}{
		{"ack with null optionals", &proto.RegistrationAck{NodeID: 1, Accepted: true},
			`{"version":2,"message":{"RegistrationAck":{"node_id":1,"accepted":true,"message":null,"totp_key":null}}}`},
		{"ack refused with message", &proto.RegistrationAck{NodeID: 18446744073709551615, Message: "bad code"},
			`{"version":2,"message":{"RegistrationAck":{"node_id":18446744073709551615,"accepted":false,"message":"bad code","totp_key":null}}}`},
		{"ack with totp key", &proto.RegistrationAck{NodeID: 7, Accepted: true, TOTPKey: "JBSWY3DPEHPK3PXP"},
			`{"version":2,"message":{"RegistrationAck":{"node_id":7,"accepted":true,"message":null,"totp_key":"JBSWY3DPEHPK3PXP"}}}`},
		{"Restart as an object", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdRestart}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"Restart":{}}}}}`},
		{"UpdateConfig as an object", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdUpdateConfig}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"UpdateConfig":{}}}}}`},
		{"GetInstalledPots as an object", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdGetInstalledPots}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"GetInstalledPots":{}}}}}`},
		{"StopPot with a string", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdStopPot, PotID: "id"}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"StopPot":"id"}}}}`},
		{"DeployPot with a string", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdDeployPot, PotID: "cowrie-01"}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"DeployPot":"cowrie-01"}}}}`},
		{"InstallPot with null git_url and empty config", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "cowrie-01",
			Install: &proto.InstallPot{PotID: "cowrie-01", HoneypotType: "cowrie", AutoStart: true}}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{},"auto_start":true}}}}}`},
		{"InstallPot with git and config", &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "p",
			Install: &proto.InstallPot{PotID: "p", HoneypotType: "cowrie", GitURL: strp("https://g/x.git"), GitBranch: strp("main"), Config: map[string]string{"ssh_port": "2222"}}}},
			`{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"p","honeypot_type":"cowrie","git_url":"https://g/x.git","git_branch":"main","config":{"ssh_port":"2222"},"auto_start":false}}}}}`},
		{"NodeDrop as an object", &proto.NodeDrop{}, `{"version":2,"message":{"NodeDrop":{}}}`},
		{"BackendDrop as a string", &proto.BackendDrop{}, `{"version":2,"message":"BackendDrop"}`},
		{"BackendCommand unit", &proto.BackendCommand{Kind: proto.BackendGetNodes}, `{"version":2,"message":{"BackendCommand":"GetNodes"}}`},
		{"BackendCommand GetNode", &proto.BackendCommand{Kind: proto.BackendGetNode, NodeID: 3}, `{"version":2,"message":{"BackendCommand":{"GetNode":{"node_id":3}}}}`},
		{"BackendCommand NodeCommand", &proto.BackendCommand{Kind: proto.BackendNodeCommand, NodeID: 3, Command: proto.Command{Kind: proto.CmdStopPot, PotID: "p"}},
			`{"version":2,"message":{"BackendCommand":{"NodeCommand":{"command":{"StopPot":"p"},"node_id":3}}}}`},
		{"BackendRegistration Custom", &proto.BackendRegistration{BackendName: "g", BackendType: proto.BackendType{Kind: "Custom", Custom: "grafana"}},
			`{"version":2,"message":{"BackendRegistration":{"backend_name":"g","backend_type":{"Custom":"grafana"}}}}`},
		{"BackendResponse success", &proto.BackendResponse{Success: true, Message: "ok", Data: json.RawMessage(`{"count":2}`)},
			`{"version":2,"message":{"BackendResponse":{"Success":{"message":"ok","data":{"count":2}}}}}`},
		{"BackendResponse success without data", &proto.BackendResponse{Success: true, Message: "ok"},
			`{"version":2,"message":{"BackendResponse":{"Success":{"message":"ok","data":null}}}}`},
		{"BackendResponse failure", &proto.BackendResponse{Failure: "no such node"},
			`{"version":2,"message":{"BackendResponse":{"Failure":"no such node"}}}`},
		{"PotEvent compact", &proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Timestamp: time.Unix(1764302400, 0), Data: json.RawMessage(`{"ip":"203.0.113.9"}`), Form: proto.PotEventCompact},
			`{"version":2,"message":{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","message":null,"metadata":{"ip":"203.0.113.9"},"timestamp":1764302400}}}`},
		{"PotEvent compact before 1970 has no timestamp", &proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Timestamp: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), Form: proto.PotEventCompact},
			`{"version":2,"message":{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","message":null}}}`},
		{"PotEvent compact past the year 5138 has no timestamp", &proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Timestamp: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Form: proto.PotEventCompact},
			`{"version":2,"message":{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","message":null}}}`},
		{"PotEvent documented", &proto.PotEvent{NodeID: 1, PotID: "p", PotType: "cowrie", EventType: "e", Timestamp: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), Data: json.RawMessage(`{}`)},
			`{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"cowrie","event_type":"e","timestamp":"2024-01-15T10:30:00Z","data":{}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Marshal =\n%s\nwant\n%s", got, tt.want)
			}
			var buf bytes.Buffer
			if err := proto.Encode(&buf, tt.give); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want+"\n" {
				t.Fatalf("Encode = %q, want the envelope and one newline", buf.String())
			}
			app, err := proto.AppendEnvelope([]byte("prefix:"), tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if string(app) != "prefix:"+tt.want {
				t.Fatalf("AppendEnvelope = %s", app)
			}
		})
	}
}

// everyVariant returns one value of each message type, with its optional
// fields set, for round trips.
func everyVariant() []proto.Message {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)
	install := &proto.InstallPot{PotID: "cowrie-01", HoneypotType: "cowrie", GitURL: strp("https://example.org/p.git"), Config: map[string]string{"ssh_port": "2222"}, AutoStart: true}
	msgs := []proto.Message{
		&proto.NodeRegistration{NodeID: 18446744073709551615, NodeName: "edge <fra> & 01", Address: "0.0.0.0", Port: 8080, NodeType: proto.NodeTypeFull},
		&proto.NodeRegistration{NodeID: 1, NodeName: "n", NodeType: proto.NodeTypeAgent, TOTPCode: "123456"},
		&proto.NodeEvent{Type: proto.NodeEventStarted},
		&proto.NodeEvent{Type: proto.NodeEventError, Message: "m", Description: "d"},
		&proto.NodeDrop{},
		&proto.PotStatusUpdate{NodeID: 1, PotID: "p.1 *>", PotType: "cowrie", Status: proto.PotRunning, Message: strp("ok")},
		&proto.PotStatusUpdate{NodeID: 1, PotID: "p", Message: strp("login attempt")},
		&proto.PotEvent{NodeID: 1, PotID: "p", PotType: "cowrie", EventType: "cowrie.login.failed", Message: strp("m"), Timestamp: ts, Data: json.RawMessage(`{"src_ip":"192.0.2.1","n":[1,2]}`)},
		&proto.PotEvent{NodeID: 1, PotID: "p", PotType: "cowrie", EventType: "e"},
		&proto.PotEvent{NodeID: 42, PotID: "p", EventType: "honnypotter.login.failed", Timestamp: ts.Truncate(time.Second), Data: json.RawMessage(`{"ip":"203.0.113.9"}`), Form: proto.PotEventCompact},
		&proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Message: strp(""), Form: proto.PotEventCompact},
		&proto.RegistrationAck{NodeID: 1, Accepted: true, TOTPKey: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"},
		&proto.RegistrationAck{NodeID: 1, Message: "refused"},
		&proto.NodeCommand{NodeID: 9, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "cowrie-01", Install: install}},
		&proto.BackendRegistration{BackendName: "web-ui", BackendType: proto.BackendType{Kind: "Web"}},
		&proto.BackendRegistration{BackendName: "g", BackendType: proto.BackendType{Kind: "Custom", Custom: "grafana"}},
		&proto.BackendCommand{Kind: proto.BackendGetNodesByStatus, Status: proto.NodeFailed},
		&proto.BackendCommand{Kind: proto.BackendBroadcastCommand, Command: proto.Command{Kind: proto.CmdUpdateConfig}},
		&proto.BackendDrop{},
		&proto.BackendResponse{Success: true, Message: "registered", Data: json.RawMessage(`{"backend_id":7}`)},
		&proto.BackendResponse{Success: true, Message: "none"},
		&proto.BackendResponse{Failure: "reason"},
	}
	for _, s := range []proto.NodeStatus{proto.NodeConnected, proto.NodeDeploying, proto.NodeRunning, proto.NodeStopped, proto.NodeFailed, proto.NodeUnknown} {
		msgs = append(msgs, &proto.NodeStatusUpdate{NodeID: 5, Status: s})
	}
	for _, k := range []proto.CommandKind{proto.CmdDeployPot, proto.CmdStopPot, proto.CmdRestartPot, proto.CmdGetPotStatus, proto.CmdGetPotLogs, proto.CmdGetPotMetrics, proto.CmdGetPotInfo} {
		msgs = append(msgs, &proto.NodeCommand{NodeID: 9, Command: proto.Command{Kind: k, PotID: "pot-" + string(k)}})
	}
	for _, k := range []proto.CommandKind{proto.CmdRestart, proto.CmdUpdateConfig, proto.CmdGetInstalledPots} {
		msgs = append(msgs, &proto.NodeCommand{NodeID: 9, Command: proto.Command{Kind: k}})
	}
	for _, k := range []string{"Web", "Api", "Monitoring", "Cli"} {
		msgs = append(msgs, &proto.BackendRegistration{BackendName: "b", BackendType: proto.BackendType{Kind: k}})
	}
	for _, k := range []proto.BackendCommandKind{proto.BackendGetNodes, proto.BackendGetNodeCount, proto.BackendGetActiveConnections} {
		msgs = append(msgs, &proto.BackendCommand{Kind: k})
	}
	for _, k := range []proto.BackendCommandKind{proto.BackendGetNode, proto.BackendRemoveNode} {
		msgs = append(msgs, &proto.BackendCommand{Kind: k, NodeID: 18446744073709551615})
	}
	msgs = append(msgs, &proto.BackendCommand{Kind: proto.BackendNodeCommand, NodeID: 3, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "cowrie-01", Install: install}})
	return msgs
}

func TestRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range everyVariant() {
		seen[m.Variant()] = true
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal %+v: %v", m, err)
		}
		e, err := proto.Decode(b)
		if err != nil {
			t.Fatalf("Decode(Marshal(%T %+v)): %v\n%s", m, m, err, b)
		}
		if e.Version != proto.Version {
			t.Errorf("version %d", e.Version)
		}
		sameMessage(t, e.Message, m)
	}
	for _, v := range []string{"NodeRegistration", "NodeStatusUpdate", "NodeEvent", "NodeDrop", "PotStatusUpdate", "PotEvent",
		"RegistrationAck", "NodeCommand", "BackendRegistration", "BackendCommand", "BackendDrop", "BackendResponse"} {
		if !seen[v] {
			t.Errorf("no round trip of %s", v)
		}
	}
}

// TestRoundTripTimestamps: the compact form carries whole seconds, the
// documented form nanoseconds; both come back in UTC.
func TestRoundTripTimestamps(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	ts := time.Date(2024, 1, 15, 11, 30, 0, 987654321, paris)
	tests := []struct {
		name string
		form proto.PotEventForm
		want time.Time
	}{
		{"documented keeps nanoseconds", proto.PotEventDocumented, ts},
		{"compact keeps seconds", proto.PotEventCompact, ts.Truncate(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(&proto.PotEvent{NodeID: 1, PotID: "p", EventType: "e", Timestamp: ts, Form: tt.form})
			if err != nil {
				t.Fatal(err)
			}
			e, err := proto.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got := e.Message.(*proto.PotEvent).Timestamp
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("timestamp %v, want %v in UTC", got, tt.want)
			}
		})
	}
}

func TestMarshalNil(t *testing.T) {
	tests := []struct {
		name string
		give proto.Message
	}{
		{"nil interface", nil},
		{"nil RegistrationAck", (*proto.RegistrationAck)(nil)},
		{"nil NodeCommand", (*proto.NodeCommand)(nil)},
		{"nil PotEvent", (*proto.PotEvent)(nil)},
		{"nil BackendCommand", (*proto.BackendCommand)(nil)},
		{"nil BackendResponse", (*proto.BackendResponse)(nil)},
		{"nil NodeRegistration", (*proto.NodeRegistration)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(tt.give)
			if !errors.Is(err, proto.ErrInvalidField) {
				t.Fatalf("Marshal = %s, %v; want ErrInvalidField", b, err)
			}
			dst := []byte("keep")
			got, err := proto.AppendEnvelope(dst, tt.give)
			if err == nil || string(got) != "keep" {
				t.Fatalf("AppendEnvelope = %q, %v; want dst unchanged and an error", got, err)
			}
		})
	}
}

func TestMarshalInvalidData(t *testing.T) {
	tests := []struct {
		name string
		give proto.Message
	}{
		{"pot event data not JSON", &proto.PotEvent{NodeID: 1, PotID: "p", EventType: "e", Data: json.RawMessage(`{`)}},
		{"backend response data not JSON", &proto.BackendResponse{Success: true, Data: json.RawMessage(`nope`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := proto.AppendEnvelope(dst, tt.give)
			if err == nil {
				t.Fatalf("AppendEnvelope = %s, want an error", got)
			}
			if string(got) != "keep" {
				t.Errorf("AppendEnvelope on error = %q, want dst unchanged", got)
			}
			if _, err := proto.Marshal(tt.give); err == nil {
				t.Error("Marshal succeeded")
			}
		})
	}
}

type failingWriter struct{ calls int }

func (w *failingWriter) Write(p []byte) (int, error) { w.calls++; return 0, errors.New("broken pipe") }

func TestEncode(t *testing.T) {
	t.Run("one write, one newline", func(t *testing.T) {
		var buf bytes.Buffer
		if err := proto.Encode(&buf, &proto.NodeDrop{}); err != nil {
			t.Fatal(err)
		}
		if err := proto.Encode(&buf, &proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdRestart}}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(buf.String(), "\n")
		if len(lines) != 3 || lines[2] != "" {
			t.Fatalf("Encode wrote %q, want two lines each ending in one newline", buf.String())
		}
	})
	t.Run("write error", func(t *testing.T) {
		w := &failingWriter{}
		if err := proto.Encode(w, &proto.NodeDrop{}); err == nil || w.calls != 1 {
			t.Fatalf("Encode = %v after %d writes, want the write error after one write", err, w.calls)
		}
	})
	t.Run("marshal error writes nothing", func(t *testing.T) {
		w := &failingWriter{}
		if err := proto.Encode(w, nil); err == nil || w.calls != 0 {
			t.Fatalf("Encode(nil) = %v after %d writes", err, w.calls)
		}
	})
}

func TestNodeID(t *testing.T) {
	tests := []struct {
		give    string
		want    uint64
		wantErr bool
	}{
		{"0", 0, false},
		{"42", 42, false},
		{"18446744073709551615", 18446744073709551615, false},
		{"18446744073709551616", 0, true},
		{"-1", 0, true},
		{"+1", 0, true},
		{"1.0", 0, true},
		{" 1", 0, true},
		{"", 0, true},
		{"0x10", 0, true},
	}
	for _, tt := range tests {
		got, err := proto.ParseNodeID(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseNodeID(%q) = %d, %v", tt.give, got, err)
		}
		if err != nil && !errors.Is(err, proto.ErrInvalidField) {
			t.Errorf("ParseNodeID(%q) error %v does not wrap ErrInvalidField", tt.give, err)
		}
		if err == nil && proto.FormatNodeID(got) != tt.give {
			t.Errorf("FormatNodeID(%d) = %q, want %q", got, proto.FormatNodeID(got), tt.give)
		}
	}
}
