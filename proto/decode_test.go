package proto_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
)

func strp(s string) *string { return &s }

// env wraps a message value in a version 2 envelope.
func env(msg string) string { return `{"version":2,"message":` + msg + `}` }

// sameMessage compares two decoded messages; timestamps compare with Equal
// and raw JSON compares compacted, so formatting differences do not matter.
func sameMessage(t *testing.T, got, want proto.Message) {
	t.Helper()
	if g, w := fmt.Sprintf("%T", got), fmt.Sprintf("%T", want); g != w {
		t.Fatalf("got %s %+v, want %s %+v", g, got, w, want)
	}
	switch w := want.(type) {
	case *proto.PotEvent:
		g := *got.(*proto.PotEvent)
		w2 := *w
		if !g.Timestamp.Equal(w2.Timestamp) {
			t.Errorf("Timestamp = %v, want %v", g.Timestamp, w2.Timestamp)
		}
		if !sameJSON(g.Data, w2.Data) {
			t.Errorf("Data = %s, want %s", g.Data, w2.Data)
		}
		g.Timestamp, w2.Timestamp, g.Data, w2.Data = time.Time{}, time.Time{}, nil, nil
		if !reflect.DeepEqual(g, w2) {
			t.Errorf("got %+v, want %+v", g, w2)
		}
		return
	case *proto.BackendResponse:
		g := *got.(*proto.BackendResponse)
		w2 := *w
		if !sameJSON(g.Data, w2.Data) {
			t.Errorf("Data = %s, want %s", g.Data, w2.Data)
		}
		g.Data, w2.Data = nil, nil
		if !reflect.DeepEqual(g, w2) {
			t.Errorf("got %+v, want %+v", g, w2)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// decodeBoth decodes data with Decode and checks that the general path,
// without the fast path, gives the same result.
func decodeBoth(t *testing.T, data []byte) (proto.Envelope, error) {
	t.Helper()
	e, err := proto.Decode(data)
	g, gerr := proto.Decoder{}.DecodeGeneral(data)
	if !sameSentinels(err, gerr) || !reflect.DeepEqual(e, g) {
		t.Fatalf("fast path %+v, %v\ngeneral   %+v, %v", e.Message, err, g.Message, gerr)
	}
	return e, err
}

func sameJSON(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func TestDecode(t *testing.T) {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		give string
		want proto.Message
	}{
		// NodeRegistration
		{"registration", env(`{"NodeRegistration":{"node_id":12345,"node_name":"my-node","address":"0.0.0.0","port":8080,"node_type":"Full"}}`),
			&proto.NodeRegistration{NodeID: 12345, NodeName: "my-node", Address: "0.0.0.0", Port: 8080, NodeType: proto.NodeTypeFull}},
		{"registration with totp_code", env(`{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":1,"node_type":"Agent","totp_code":"123456"}}`),
			&proto.NodeRegistration{NodeID: 1, NodeName: "n", Address: "a", Port: 1, NodeType: proto.NodeTypeAgent, TOTPCode: "123456"}},
		{"registration totp_code null", env(`{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":1,"node_type":"Agent","totp_code":null}}`),
			&proto.NodeRegistration{NodeID: 1, NodeName: "n", Address: "a", Port: 1, NodeType: proto.NodeTypeAgent}},
		{"registration max u64 and port", env(`{"NodeRegistration":{"node_id":18446744073709551615,"node_name":"n","address":"a","port":65535,"node_type":"Full"}}`),
			&proto.NodeRegistration{NodeID: 18446744073709551615, NodeName: "n", Address: "a", Port: 65535, NodeType: proto.NodeTypeFull}},
		{"registration unknown node_type left to the caller", env(`{"NodeRegistration":{"node_id":1,"node_name":"n","node_type":"Robot"}}`),
			&proto.NodeRegistration{NodeID: 1, NodeName: "n", NodeType: "Robot"}},
		{"registration whitespace and other version", "  \r\n{ \"version\" : 3 ,\n \"message\" : { \"NodeRegistration\" : {\"node_id\":7,\"node_name\":\"x\",\"node_type\":\"Full\"} } }\n",
			&proto.NodeRegistration{NodeID: 7, NodeName: "x", NodeType: proto.NodeTypeFull}},

		// NodeStatusUpdate, every status
		{"status Connected", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Connected"}}`), &proto.NodeStatusUpdate{NodeID: 1, Status: proto.NodeConnected}},
		{"status Deploying", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Deploying"}}`), &proto.NodeStatusUpdate{NodeID: 1, Status: proto.NodeDeploying}},
		{"status Running", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Running"}}`), &proto.NodeStatusUpdate{NodeID: 1, Status: proto.NodeRunning}},
		{"status Stopped", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Stopped"}}`), &proto.NodeStatusUpdate{NodeID: 1, Status: proto.NodeStopped}},
		{"status Failed", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Failed"}}`), &proto.NodeStatusUpdate{NodeID: 1, Status: proto.NodeFailed}},
		{"status Unknown", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Unknown"}}`), &proto.NodeStatusUpdate{NodeID: 1, Status: proto.NodeUnknown}},

		// NodeEvent, three forms
		{"node event Started string", env(`{"NodeEvent":"Started"}`), &proto.NodeEvent{Type: proto.NodeEventStarted}},
		{"node event Stopped string", env(`{"NodeEvent":"Stopped"}`), &proto.NodeEvent{Type: proto.NodeEventStopped}},
		{"node event Alarm object", env(`{"NodeEvent":{"Alarm":{"description":"disk almost full"}}}`),
			&proto.NodeEvent{Type: proto.NodeEventAlarm, Description: "disk almost full"}},
		{"node event Error object", env(`{"NodeEvent":{"Error":{"message":"boom"}}}`),
			&proto.NodeEvent{Type: proto.NodeEventError, Message: "boom"}},
		{"node event Started object null", env(`{"NodeEvent":{"Started":null}}`), &proto.NodeEvent{Type: proto.NodeEventStarted}},
		{"node event Stopped object empty", env(`{"NodeEvent":{"Stopped":{}}}`), &proto.NodeEvent{Type: proto.NodeEventStopped}},
		{"node event flat Error", env(`{"NodeEvent":{"type":"Error","message":"GetPotLogs not yet implemented","description":"d"}}`),
			&proto.NodeEvent{Type: proto.NodeEventError, Message: "GetPotLogs not yet implemented", Description: "d"}},
		{"node event flat Alarm", env(`{"NodeEvent":{"type":"Alarm","description":"hot"}}`),
			&proto.NodeEvent{Type: proto.NodeEventAlarm, Description: "hot"}},
		{"node event flat Started", env(`{"NodeEvent":{"type":"Started"}}`), &proto.NodeEvent{Type: proto.NodeEventStarted}},
		{"node event flat Stopped", env(`{"NodeEvent":{"type":"Stopped","message":null}}`), &proto.NodeEvent{Type: proto.NodeEventStopped}},

		// NodeDrop
		{"node drop string", env(`"NodeDrop"`), &proto.NodeDrop{}},
		{"node drop empty object", env(`{"NodeDrop":{}}`), &proto.NodeDrop{}},
		{"node drop null", env(`{"NodeDrop":null}`), &proto.NodeDrop{}},
		{"node drop spaced object", env(`{"NodeDrop":{ }}`), &proto.NodeDrop{}},

		// PotStatusUpdate
		{"pot status Installing", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"cowrie-01","pot_type":"cowrie","status":"Installing","message":"Cloning potstore"}}`),
			&proto.PotStatusUpdate{NodeID: 1, PotID: "cowrie-01", PotType: "cowrie", Status: proto.PotInstalling, Message: strp("Cloning potstore")}},
		{"pot status Running no message", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"p","pot_type":"cowrie","status":"Running"}}`),
			&proto.PotStatusUpdate{NodeID: 1, PotID: "p", PotType: "cowrie", Status: proto.PotRunning}},
		{"pot status Stopped message null", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"p","pot_type":"t","status":"Stopped","message":null}}`),
			&proto.PotStatusUpdate{NodeID: 1, PotID: "p", PotType: "t", Status: proto.PotStopped}},
		{"pot status Failed", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"p","pot_type":"t","status":"Failed","message":"exit 1"}}`),
			&proto.PotStatusUpdate{NodeID: 1, PotID: "p", PotType: "t", Status: proto.PotFailed, Message: strp("exit 1")}},
		{"pot status empty-status quirk", env(`{"PotStatusUpdate":{"node_id":9223372036854775809,"pot_id":"cowrie-01","pot_type":"","status":"","message":"login attempt [root/123456] failed"}}`),
			&proto.PotStatusUpdate{NodeID: 9223372036854775809, PotID: "cowrie-01", Message: strp("login attempt [root/123456] failed")}},
		{"pot status quirk without pot_type and status", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"p","message":"x"}}`),
			&proto.PotStatusUpdate{NodeID: 1, PotID: "p", Message: strp("x")}},
		{"pot status unknown status kept verbatim", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"p","pot_type":"t","status":"Exploding"}}`),
			&proto.PotStatusUpdate{NodeID: 1, PotID: "p", PotType: "t", Status: "Exploding"}},

		// PotEvent
		{"pot event documented", env(`{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.session.connect","timestamp":"2024-01-15T10:30:00Z","data":{"src_ip":"192.0.2.77","src_port":51122}}}`),
			&proto.PotEvent{NodeID: 12345, PotID: "cowrie-01", PotType: "cowrie", EventType: "cowrie.session.connect", Timestamp: ts,
				Data: json.RawMessage(`{"src_ip":"192.0.2.77","src_port":51122}`), Form: proto.PotEventDocumented}},
		{"pot event documented offset timestamp and message", env(`{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","message":"m","timestamp":"2024-01-15T12:30:00.5+02:00","data":{}}}`),
			&proto.PotEvent{NodeID: 1, PotID: "p", PotType: "t", EventType: "e", Message: strp("m"), Timestamp: ts.Add(500 * time.Millisecond),
				Data: json.RawMessage(`{}`), Form: proto.PotEventDocumented}},
		{"pot event documented without data or timestamp", env(`{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e"}}`),
			&proto.PotEvent{NodeID: 1, PotID: "p", PotType: "t", EventType: "e", Form: proto.PotEventDocumented}},
		{"pot event documented data null", env(`{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","data":null}}`),
			&proto.PotEvent{NodeID: 1, PotID: "p", PotType: "t", EventType: "e", Form: proto.PotEventDocumented}},
		{"pot event documented unparseable timestamp is zero", env(`{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","timestamp":"yesterday"}}`),
			&proto.PotEvent{NodeID: 1, PotID: "p", PotType: "t", EventType: "e", Form: proto.PotEventDocumented}},
		{"pot event compact", env(`{"PotEvent":{"node_id":42,"pot_id":"honnypotter-1","event":"honnypotter.login.failed","message":"wp-login brute force","metadata":{"ip":"203.0.113.9","username":"admin"},"timestamp":1764302400}}`),
			&proto.PotEvent{NodeID: 42, PotID: "honnypotter-1", EventType: "honnypotter.login.failed", Message: strp("wp-login brute force"),
				Timestamp: time.Unix(1764302400, 0), Data: json.RawMessage(`{"ip":"203.0.113.9","username":"admin"}`), Form: proto.PotEventCompact}},
		{"pot event compact message null no metadata", env(`{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","message":null,"timestamp":1764302460}}`),
			&proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Timestamp: time.Unix(1764302460, 0), Form: proto.PotEventCompact}},
		{"pot event compact fractional timestamp", env(`{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","timestamp":1764302460.25}}`),
			&proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Timestamp: time.Unix(1764302460, 250_000_000), Form: proto.PotEventCompact}},
		{"pot event compact negative timestamp is zero", env(`{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","timestamp":-5}}`),
			&proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Form: proto.PotEventCompact}},
		{"pot event compact huge timestamp is zero", env(`{"PotEvent":{"node_id":42,"pot_id":"p","event":"e","timestamp":1e300}}`),
			&proto.PotEvent{NodeID: 42, PotID: "p", EventType: "e", Form: proto.PotEventCompact}},

		// Core -> node
		{"registration ack null optionals", env(`{"RegistrationAck":{"node_id":1,"accepted":true,"message":null,"totp_key":null}}`),
			&proto.RegistrationAck{NodeID: 1, Accepted: true}},
		{"registration ack refused", env(`{"RegistrationAck":{"node_id":1,"accepted":false,"message":"bad code"}}`),
			&proto.RegistrationAck{NodeID: 1, Message: "bad code"}},
		{"registration ack totp_key", env(`{"RegistrationAck":{"node_id":1,"accepted":true,"totp_key":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}}`),
			&proto.RegistrationAck{NodeID: 1, Accepted: true, TOTPKey: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}},
		{"node command InstallPot", env(`{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{"ssh_port":"2222"},"auto_start":true}}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "cowrie-01",
				Install: &proto.InstallPot{PotID: "cowrie-01", HoneypotType: "cowrie", Config: map[string]string{"ssh_port": "2222"}, AutoStart: true}}}},
		{"node command InstallPot git", env(`{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"p","honeypot_type":"t","git_url":"https://x/y.git","git_branch":"main"}}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdInstallPot, PotID: "p",
				Install: &proto.InstallPot{PotID: "p", HoneypotType: "t", GitURL: strp("https://x/y.git"), GitBranch: strp("main")}}}},
		{"node command DeployPot", env(`{"NodeCommand":{"node_id":1,"command":{"DeployPot":"cowrie-01"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdDeployPot, PotID: "cowrie-01"}}},
		{"node command StopPot", env(`{"NodeCommand":{"node_id":1,"command":{"StopPot":"p"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdStopPot, PotID: "p"}}},
		{"node command RestartPot", env(`{"NodeCommand":{"node_id":1,"command":{"RestartPot":"p"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdRestartPot, PotID: "p"}}},
		{"node command GetPotStatus", env(`{"NodeCommand":{"node_id":1,"command":{"GetPotStatus":"p"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdGetPotStatus, PotID: "p"}}},
		{"node command GetPotLogs", env(`{"NodeCommand":{"node_id":1,"command":{"GetPotLogs":"p"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdGetPotLogs, PotID: "p"}}},
		{"node command GetPotMetrics", env(`{"NodeCommand":{"node_id":1,"command":{"GetPotMetrics":"p"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdGetPotMetrics, PotID: "p"}}},
		{"node command GetPotInfo", env(`{"NodeCommand":{"node_id":1,"command":{"GetPotInfo":"p"}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdGetPotInfo, PotID: "p"}}},
		{"node command Restart object", env(`{"NodeCommand":{"node_id":1,"command":{"Restart":{}}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdRestart}}},
		{"node command Restart string", env(`{"NodeCommand":{"node_id":1,"command":"Restart"}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdRestart}}},
		{"node command Restart null", env(`{"NodeCommand":{"node_id":1,"command":{"Restart":null}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdRestart}}},
		{"node command UpdateConfig", env(`{"NodeCommand":{"node_id":1,"command":{"UpdateConfig":{}}}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdUpdateConfig}}},
		{"node command GetInstalledPots", env(`{"NodeCommand":{"node_id":1,"command":"GetInstalledPots"}}`),
			&proto.NodeCommand{NodeID: 1, Command: proto.Command{Kind: proto.CmdGetInstalledPots}}},

		// Backend
		{"backend registration Web", env(`{"BackendRegistration":{"backend_name":"web-ui","backend_type":"Web"}}`),
			&proto.BackendRegistration{BackendName: "web-ui", BackendType: proto.BackendType{Kind: "Web"}}},
		{"backend registration Api", env(`{"BackendRegistration":{"backend_name":"b","backend_type":"Api"}}`),
			&proto.BackendRegistration{BackendName: "b", BackendType: proto.BackendType{Kind: "Api"}}},
		{"backend registration Monitoring", env(`{"BackendRegistration":{"backend_name":"b","backend_type":"Monitoring"}}`),
			&proto.BackendRegistration{BackendName: "b", BackendType: proto.BackendType{Kind: "Monitoring"}}},
		{"backend registration Cli", env(`{"BackendRegistration":{"backend_name":"b","backend_type":"Cli"}}`),
			&proto.BackendRegistration{BackendName: "b", BackendType: proto.BackendType{Kind: "Cli"}}},
		{"backend registration Custom", env(`{"BackendRegistration":{"backend_name":"b","backend_type":{"Custom":"grafana"}}}`),
			&proto.BackendRegistration{BackendName: "b", BackendType: proto.BackendType{Kind: "Custom", Custom: "grafana"}}},
		{"backend GetNodes", env(`{"BackendCommand":"GetNodes"}`), &proto.BackendCommand{Kind: proto.BackendGetNodes}},
		{"backend GetNodes object", env(`{"BackendCommand":{"GetNodes":{}}}`), &proto.BackendCommand{Kind: proto.BackendGetNodes}},
		{"backend GetNodeCount", env(`{"BackendCommand":"GetNodeCount"}`), &proto.BackendCommand{Kind: proto.BackendGetNodeCount}},
		{"backend GetNodeCount null", env(`{"BackendCommand":{"GetNodeCount":null}}`), &proto.BackendCommand{Kind: proto.BackendGetNodeCount}},
		{"backend GetActiveConnections", env(`{"BackendCommand":"GetActiveConnections"}`), &proto.BackendCommand{Kind: proto.BackendGetActiveConnections}},
		{"backend GetNode", env(`{"BackendCommand":{"GetNode":{"node_id":1}}}`), &proto.BackendCommand{Kind: proto.BackendGetNode, NodeID: 1}},
		{"backend RemoveNode", env(`{"BackendCommand":{"RemoveNode":{"node_id":18446744073709551615}}}`),
			&proto.BackendCommand{Kind: proto.BackendRemoveNode, NodeID: 18446744073709551615}},
		{"backend GetNodesByStatus", env(`{"BackendCommand":{"GetNodesByStatus":{"status":"Running"}}}`),
			&proto.BackendCommand{Kind: proto.BackendGetNodesByStatus, Status: proto.NodeRunning}},
		{"backend NodeCommand", env(`{"BackendCommand":{"NodeCommand":{"node_id":1,"command":{"StopPot":"cowrie-01"}}}}`),
			&proto.BackendCommand{Kind: proto.BackendNodeCommand, NodeID: 1, Command: proto.Command{Kind: proto.CmdStopPot, PotID: "cowrie-01"}}},
		{"backend BroadcastCommand", env(`{"BackendCommand":{"BroadcastCommand":{"command":{"Restart":{}}}}}`),
			&proto.BackendCommand{Kind: proto.BackendBroadcastCommand, Command: proto.Command{Kind: proto.CmdRestart}}},
		{"backend drop", env(`"BackendDrop"`), &proto.BackendDrop{}},
		{"backend drop object", env(`{"BackendDrop":{}}`), &proto.BackendDrop{}},
		{"backend response success", env(`{"BackendResponse":{"Success":{"message":"registered","data":{"backend_id":7}}}}`),
			&proto.BackendResponse{Success: true, Message: "registered", Data: json.RawMessage(`{"backend_id":7}`)}},
		{"backend response success without data", env(`{"BackendResponse":{"Success":{"message":"ok"}}}`),
			&proto.BackendResponse{Success: true, Message: "ok"}},
		{"backend response success data null", env(`{"BackendResponse":{"Success":{"message":"ok","data":null}}}`),
			&proto.BackendResponse{Success: true, Message: "ok"}},
		{"backend response failure", env(`{"BackendResponse":{"Failure":"no such node"}}`),
			&proto.BackendResponse{Failure: "no such node"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBoth(t, []byte(tt.give))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			wantVersion := 2
			if strings.Contains(tt.give, `"version" : 3`) {
				wantVersion = 3
			}
			if got.Version != wantVersion {
				t.Errorf("Version = %d, want %d", got.Version, wantVersion)
			}
			if got.Message.Variant() != tt.want.Variant() {
				t.Errorf("Variant() = %q, want %q", got.Message.Variant(), tt.want.Variant())
			}
			sameMessage(t, got.Message, tt.want)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	nested := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	huge := env(`{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","message":"` + strings.Repeat("A", 10<<20) + `"}}`)
	reg := func(fields string) string { return env(`{"NodeRegistration":{` + fields + `}}`) }
	tests := []struct {
		name string
		give string
		want []error // every sentinel the error must wrap
	}{
		{"empty", ``, []error{proto.ErrNotJSON}},
		{"whitespace only", " \n\t", []error{proto.ErrNotJSON}},
		{"not JSON", `hello`, []error{proto.ErrNotJSON}},
		{"truncated object", `{"version":2,"message":{"NodeDrop":{}}`, []error{proto.ErrNotJSON}},
		{"trailing garbage", env(`"NodeDrop"`) + `x`, []error{proto.ErrNotJSON}},
		{"two envelopes", env(`"NodeDrop"`) + env(`"NodeDrop"`), []error{proto.ErrNotJSON}},
		{"invalid UTF-8", "{\"version\":2,\"message\":{\"PotStatusUpdate\":{\"node_id\":1,\"pot_id\":\"\xff\xfe\"}}}", []error{proto.ErrInvalidUTF8}},
		{"top level array", `[1,2]`, []error{proto.ErrNotEnvelope}},
		{"top level string", `"NodeDrop"`, []error{proto.ErrNotEnvelope}},
		{"top level number", `2`, []error{proto.ErrNotEnvelope}},
		{"top level null", `null`, []error{proto.ErrNotEnvelope}},
		{"missing version", `{"message":"NodeDrop"}`, []error{proto.ErrNotEnvelope, proto.ErrMissingField}},
		{"null version", `{"version":null,"message":"NodeDrop"}`, []error{proto.ErrNotEnvelope, proto.ErrMissingField}},
		{"missing message", `{"version":2}`, []error{proto.ErrNotEnvelope, proto.ErrMissingField}},
		{"null message", `{"version":2,"message":null}`, []error{proto.ErrNotEnvelope, proto.ErrMissingField}},
		{"empty object", `{}`, []error{proto.ErrNotEnvelope, proto.ErrMissingField}},
		{"string version", `{"version":"2","message":"NodeDrop"}`, []error{proto.ErrInvalidField}},
		{"fractional version", `{"version":2.5,"message":"NodeDrop"}`, []error{proto.ErrInvalidField}},
		{"unknown variant string", env(`"NodeExplode"`), []error{proto.ErrUnknownVariant}},
		{"unknown variant object", env(`{"NodeExplode":{"node_id":1}}`), []error{proto.ErrUnknownVariant}},
		{"variant object with two keys", env(`{"NodeDrop":{},"NodeEvent":"Started"}`), []error{proto.ErrInvalidField}},
		{"variant object with no key", env(`{}`), []error{proto.ErrInvalidField}},
		{"variant number", env(`5`), []error{proto.ErrInvalidField}},
		{"variant array", env(`["NodeDrop"]`), []error{proto.ErrInvalidField}},
		{"unknown node event", env(`{"NodeEvent":"Exploded"}`), []error{proto.ErrUnknownVariant}},
		{"unknown flat node event", env(`{"NodeEvent":{"type":"Exploded"}}`), []error{proto.ErrUnknownVariant}},
		{"node event without payload", env(`"NodeEvent"`), []error{proto.ErrMissingField}},
		{"node event null", env(`{"NodeEvent":null}`), []error{proto.ErrMissingField}},
		{"node event empty object", env(`{"NodeEvent":{}}`), []error{proto.ErrInvalidField}},
		{"node event number", env(`{"NodeEvent":5}`), []error{proto.ErrInvalidField}},
		{"node event alarm body string", env(`{"NodeEvent":{"Alarm":"hot"}}`), []error{proto.ErrInvalidField}},
		{"node drop with payload", env(`{"NodeDrop":{"node_id":1}}`), []error{proto.ErrInvalidField}},
		{"node drop with string payload", env(`{"NodeDrop":"now"}`), []error{proto.ErrInvalidField}},
		{"registration as string", env(`"NodeRegistration"`), []error{proto.ErrMissingField}},
		{"registration null", env(`{"NodeRegistration":null}`), []error{proto.ErrMissingField}},
		{"registration array", env(`{"NodeRegistration":[]}`), []error{proto.ErrInvalidField}},
		{"registration missing node_id", reg(`"node_name":"n","node_type":"Full"`), []error{proto.ErrMissingField}},
		{"registration null node_id", reg(`"node_id":null,"node_name":"n","node_type":"Full"`), []error{proto.ErrMissingField}},
		{"registration missing node_name", reg(`"node_id":1,"node_type":"Full"`), []error{proto.ErrMissingField}},
		{"registration missing node_type", reg(`"node_id":1,"node_name":"n"`), []error{proto.ErrMissingField}},
		{"node_id beyond u64", reg(`"node_id":18446744073709551616,"node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"node_id far beyond u64", reg(`"node_id":1e400,"node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"node_id negative", reg(`"node_id":-1,"node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"node_id fractional", reg(`"node_id":1.5,"node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"node_id exponent", reg(`"node_id":1e3,"node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"node_id string", reg(`"node_id":"1","node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"node_id bool", reg(`"node_id":true,"node_name":"n","node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"port beyond u16", reg(`"node_id":1,"node_name":"n","node_type":"Full","port":65536`), []error{proto.ErrInvalidField}},
		{"port negative", reg(`"node_id":1,"node_name":"n","node_type":"Full","port":-1`), []error{proto.ErrInvalidField}},
		{"node_name number", reg(`"node_id":1,"node_name":5,"node_type":"Full"`), []error{proto.ErrInvalidField}},
		{"status update missing status", env(`{"NodeStatusUpdate":{"node_id":1}}`), []error{proto.ErrMissingField}},
		{"status update missing node_id", env(`{"NodeStatusUpdate":{"status":"Running"}}`), []error{proto.ErrMissingField}},
		{"status update unknown status", env(`{"NodeStatusUpdate":{"node_id":1,"status":"Dancing"}}`), []error{proto.ErrInvalidField}},
		{"pot status missing pot_id", env(`{"PotStatusUpdate":{"node_id":1,"status":"Running"}}`), []error{proto.ErrMissingField}},
		{"pot status missing node_id", env(`{"PotStatusUpdate":{"pot_id":"p","status":"Running"}}`), []error{proto.ErrMissingField}},
		{"pot status message number", env(`{"PotStatusUpdate":{"node_id":1,"pot_id":"p","message":5}}`), []error{proto.ErrInvalidField}},
		{"pot event missing event type", env(`{"PotEvent":{"node_id":1,"pot_id":"p"}}`), []error{proto.ErrMissingField}},
		{"pot event missing pot_id", env(`{"PotEvent":{"node_id":1,"event":"e"}}`), []error{proto.ErrMissingField}},
		{"pot event missing node_id", env(`{"PotEvent":{"pot_id":"p","event_type":"e"}}`), []error{proto.ErrMissingField}},
		{"pot event node_id negative", env(`{"PotEvent":{"node_id":-3,"pot_id":"p","event":"e"}}`), []error{proto.ErrInvalidField}},
		{"pot event data array", env(`{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","data":[1,2]}}`), []error{proto.ErrInvalidField}},
		{"pot event data string", env(`{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","data":"x"}}`), []error{proto.ErrInvalidField}},
		{"pot event metadata number", env(`{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","metadata":5}}`), []error{proto.ErrInvalidField}},
		{"ack missing accepted", env(`{"RegistrationAck":{"node_id":1}}`), []error{proto.ErrMissingField}},
		{"node command missing command", env(`{"NodeCommand":{"node_id":1}}`), []error{proto.ErrMissingField}},
		{"node command null command", env(`{"NodeCommand":{"node_id":1,"command":null}}`), []error{proto.ErrMissingField}},
		{"node command unknown", env(`{"NodeCommand":{"node_id":1,"command":{"SelfDestruct":{}}}}`), []error{proto.ErrInvalidCommand, proto.ErrUnknownVariant}},
		{"node command pot id empty", env(`{"NodeCommand":{"node_id":1,"command":{"StopPot":""}}}`), []error{proto.ErrInvalidCommand}},
		{"node command pot id object", env(`{"NodeCommand":{"node_id":1,"command":{"StopPot":{"pot_id":"p"}}}}`), []error{proto.ErrInvalidCommand}},
		{"node command pot command as string", env(`{"NodeCommand":{"node_id":1,"command":"StopPot"}}`), []error{proto.ErrInvalidCommand}},
		{"node command unit with payload", env(`{"NodeCommand":{"node_id":1,"command":{"Restart":{"now":true}}}}`), []error{proto.ErrInvalidCommand}},
		{"node command install without type", env(`{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"p"}}}}`), []error{proto.ErrInvalidCommand, proto.ErrMissingField}},
		{"node command install as string", env(`{"NodeCommand":{"node_id":1,"command":"InstallPot"}}`), []error{proto.ErrInvalidCommand}},
		{"node command install config not strings", env(`{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"p","honeypot_type":"t","config":{"port":2222}}}}}`), []error{proto.ErrInvalidCommand, proto.ErrInvalidField}},
		{"backend registration unknown type", env(`{"BackendRegistration":{"backend_name":"b","backend_type":"Toaster"}}`), []error{proto.ErrUnknownVariant}},
		{"backend registration custom without name", env(`{"BackendRegistration":{"backend_name":"b","backend_type":"Custom"}}`), []error{proto.ErrInvalidField}},
		{"backend registration missing name", env(`{"BackendRegistration":{"backend_type":"Web"}}`), []error{proto.ErrMissingField}},
		{"backend registration missing type", env(`{"BackendRegistration":{"backend_name":"b"}}`), []error{proto.ErrMissingField}},
		{"backend command unknown", env(`{"BackendCommand":"Explode"}`), []error{proto.ErrUnknownVariant}},
		{"backend command null", env(`{"BackendCommand":null}`), []error{proto.ErrMissingField}},
		{"backend GetNode without node_id", env(`{"BackendCommand":{"GetNode":{}}}`), []error{proto.ErrMissingField}},
		{"backend GetNode as string", env(`{"BackendCommand":"GetNode"}`), []error{proto.ErrMissingField}},
		{"backend GetNodes with payload", env(`{"BackendCommand":{"GetNodes":{"x":1}}}`), []error{proto.ErrInvalidField}},
		{"backend GetNodesByStatus bad status", env(`{"BackendCommand":{"GetNodesByStatus":{"status":"Sleepy"}}}`), []error{proto.ErrInvalidField}},
		{"backend NodeCommand without command", env(`{"BackendCommand":{"NodeCommand":{"node_id":1}}}`), []error{proto.ErrMissingField}},
		{"backend NodeCommand without node_id", env(`{"BackendCommand":{"NodeCommand":{"command":{"Restart":{}}}}}`), []error{proto.ErrMissingField}},
		{"backend BroadcastCommand bad command", env(`{"BackendCommand":{"BroadcastCommand":{"command":{"StopPot":""}}}}`), []error{proto.ErrInvalidCommand}},
		{"backend response unknown", env(`{"BackendResponse":{"Maybe":"x"}}`), []error{proto.ErrUnknownVariant}},
		{"backend response failure without reason", env(`{"BackendResponse":"Failure"}`), []error{proto.ErrInvalidField}},
		{"backend response success without body", env(`{"BackendResponse":"Success"}`), []error{proto.ErrMissingField}},
		{"backend drop with payload", env(`{"BackendDrop":[1]}`), []error{proto.ErrInvalidField}},
		{"100,000 nested brackets beyond the default size", nested, []error{proto.ErrTooLarge}},
		{"brackets inside strings do not count", env(`{"PotEvent":{"node_id":1,"pot_id":"` + strings.Repeat("[", 1000) + `","event":5}}`), []error{proto.ErrInvalidField}},
		{"10 MiB string", huge, []error{proto.ErrTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBoth(t, []byte(tt.give))
			if err == nil {
				t.Fatalf("Decode succeeded with %T %+v, want an error", got.Message, got.Message)
			}
			if got.Message != nil {
				t.Errorf("Decode returned a message %+v along with the error", got.Message)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not wrap %q", err, want)
				}
			}
			// No other sentinel than the expected ones.
			for _, s := range sentinels {
				if errors.Is(err, s) && !containsErr(tt.want, s) {
					t.Errorf("error %q also wraps %q", err, s)
				}
			}
		})
	}
}

func containsErr(errs []error, e error) bool {
	for _, x := range errs {
		if x == e {
			return true
		}
	}
	return false
}

// TestDecodeNested decodes hostile nesting under a size limit large enough
// that the depth limit is what stops it.
func TestDecodeNested(t *testing.T) {
	nested := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	tests := []struct {
		name string
		give string
	}{
		{"100,000 nested brackets", nested},
		{"100,000 unclosed brackets", strings.Repeat("[", 100_000)},
		{"100,000 nested objects", strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)},
		{"100,000 nested brackets as the message", env(nested)},
		{"100,000 nested brackets in pot event data", env(`{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","metadata":{"x":` + nested + `}}}`)},
		{"33 levels", env(`{"PotEvent":{"node_id":1,"pot_id":"p","event_type":"e","data":{"x":` + strings.Repeat("[", 29) + strings.Repeat("]", 29) + `}}}`)},
	}
	dec := proto.Decoder{MaxSize: 1 << 20}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dec.Decode([]byte(tt.give))
			if !errors.Is(err, proto.ErrTooDeep) {
				t.Fatalf("Decode = %v, want ErrTooDeep", err)
			}
		})
	}
	ok := env(`{"PotEvent":{"node_id":1,"pot_id":"p","event_type":"e","data":{"x":` + strings.Repeat("[", 28) + strings.Repeat("]", 28) + `}}}`)
	if _, err := dec.Decode([]byte(ok)); err != nil {
		t.Fatalf("32 levels: %v", err)
	}
}

func TestDecoderLimits(t *testing.T) {
	msg := []byte(env(`{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","message":"` + strings.Repeat("x", 1000) + `"}}`))
	tests := []struct {
		name string
		give proto.Decoder
		want error
	}{
		{"zero value uses defaults", proto.Decoder{}, nil},
		{"negative limits use defaults", proto.Decoder{MaxSize: -1, MaxDepth: -1}, nil},
		{"exact size", proto.Decoder{MaxSize: len(msg)}, nil},
		{"one byte short", proto.Decoder{MaxSize: len(msg) - 1}, proto.ErrTooLarge},
		{"exact depth", proto.Decoder{MaxDepth: 3}, nil},
		{"one level short", proto.Decoder{MaxDepth: 2}, proto.ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.give.Decode(msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("10 MiB string under a raised limit decodes", func(t *testing.T) {
		big := []byte(env(`{"PotEvent":{"node_id":1,"pot_id":"p","event":"e","message":"` + strings.Repeat("A", 10<<20) + `"}}`))
		got, err := proto.Decoder{MaxSize: 11 << 20}.Decode(big)
		if err != nil {
			t.Fatal(err)
		}
		if m := got.Message.(*proto.PotEvent).Message; m == nil || len(*m) != 10<<20 {
			t.Fatalf("message not decoded in full")
		}
	})
	t.Run("100,000 nested brackets under a huge depth limit fail without panic", func(t *testing.T) {
		nested := env(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000))
		_, err := proto.Decoder{MaxSize: 1 << 20, MaxDepth: 1 << 20}.Decode([]byte(nested))
		if err == nil {
			t.Fatal("decoded 100,000 nested brackets")
		}
	})
}

// TestDecodeDoesNotAlias checks that a decoded message does not share
// memory with its input, which the framing reader reuses.
func TestDecodeDoesNotAlias(t *testing.T) {
	in := []byte(env(`{"PotEvent":{"node_id":1,"pot_id":"p","event_type":"e","pot_type":"t","message":"m","data":{"k":"v"}}}`))
	got, err := proto.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'X'
	}
	ev := got.Message.(*proto.PotEvent)
	if string(ev.Data) != `{"k":"v"}` || *ev.Message != "m" || ev.PotID != "p" {
		t.Fatalf("decoded event changed with its input: %+v data %s", ev, ev.Data)
	}
}

func TestPotStatusUpdateIsState(t *testing.T) {
	tests := []struct {
		give proto.PotStatus
		want bool
	}{
		{proto.PotInstalling, true},
		{proto.PotRunning, true},
		{proto.PotStopped, true},
		{proto.PotFailed, true},
		{"", false},
		{"running", false},
		{"Deploying", false},
	}
	for _, tt := range tests {
		u := &proto.PotStatusUpdate{Status: tt.give}
		if got := u.IsState(); got != tt.want {
			t.Errorf("IsState(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestValidEnums(t *testing.T) {
	for _, s := range []proto.NodeStatus{proto.NodeConnected, proto.NodeDeploying, proto.NodeRunning, proto.NodeStopped, proto.NodeFailed, proto.NodeUnknown} {
		if !s.Valid() {
			t.Errorf("NodeStatus %q not valid", s)
		}
	}
	for _, s := range []proto.NodeStatus{"", "running", "Installing"} {
		if s.Valid() {
			t.Errorf("NodeStatus %q valid", s)
		}
	}
	for _, k := range []proto.NodeType{proto.NodeTypeFull, proto.NodeTypeAgent} {
		if !k.Valid() {
			t.Errorf("NodeType %q not valid", k)
		}
	}
	for _, k := range []proto.NodeType{"", "full", "Robot"} {
		if k.Valid() {
			t.Errorf("NodeType %q valid", k)
		}
	}
}

// TestDecodeShapes covers envelope shapes around the decoder's fast path:
// each must give what the general path gives (decodeBoth checks that).
func TestDecodeShapes(t *testing.T) {
	const p = `{"node_id":1,"status":"Running"}`
	tests := []struct {
		name        string
		give        string
		wantVersion int
		wantErr     error
	}{
		{"message first", `{"message":{"NodeStatusUpdate":` + p + `},"version":2}`, 2, nil},
		{"whitespace everywhere", " {\t\"version\" :\r\n2 , \"message\" : { \"NodeStatusUpdate\" :" + p + " } } ", 2, nil},
		{"negative version", `{"version":-7,"message":{"NodeStatusUpdate":` + p + `}}`, -7, nil},
		{"version -0", `{"version":-0,"message":{"NodeStatusUpdate":` + p + `}}`, 0, nil},
		{"19-digit version", `{"version":1000000000000000000,"message":{"NodeStatusUpdate":` + p + `}}`, 1000000000000000000, nil},
		{"extra key", `{"version":2,"message":{"NodeStatusUpdate":` + p + `},"extra":[1,{"a":"}"}]}`, 2, nil},
		{"upper-case keys", `{"VERSION":2,"Message":{"NodeStatusUpdate":` + p + `}}`, 2, nil},
		{"escaped key", `{"vers\u0069on":2,"message":{"NodeStatusUpdate":` + p + `}}`, 2, nil},
		{"escaped tag", `{"version":2,"message":{"NodeStatusUpd\u0061te":` + p + `}}`, 2, nil},
		{"duplicate version, last wins", `{"version":1,"version":2,"message":{"NodeStatusUpdate":` + p + `}}`, 2, nil},
		{"version beyond int", `{"version":100000000000000000000,"message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrInvalidField},
		{"version 2.0", `{"version":2.0,"message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrInvalidField},
		{"version 2e0", `{"version":2e0,"message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrInvalidField},
		{"version 02", `{"version":02,"message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrNotJSON},
		{"version -", `{"version":-,"message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrNotJSON},
		{"version true", `{"version":true,"message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrInvalidField},
		{"payload not JSON", `{"version":2,"message":{"NodeStatusUpdate":{]}}`, 0, proto.ErrNotJSON},
		{"payload with a raw control character", "{\"version\":2,\"message\":{\"PotEvent\":{\"node_id\":1,\"pot_id\":\"a\x01\",\"event\":\"e\"}}}", 0, proto.ErrNotJSON},
		{"tag with a raw control character", "{\"version\":2,\"message\":{\"PotEvent\x01\":{}}}", 0, proto.ErrNotJSON},
		{"two variants", `{"version":2,"message":{"NodeStatusUpdate":` + p + `,"NodeDrop":{}}}`, 0, proto.ErrInvalidField},
		{"missing comma", `{"version":2 "message":{"NodeStatusUpdate":` + p + `}}`, 0, proto.ErrNotJSON},
		{"trailing comma", `{"version":2,"message":{"NodeStatusUpdate":` + p + `},}`, 0, proto.ErrNotJSON},
		{"trailing data", `{"version":2,"message":{"NodeStatusUpdate":` + p + `}} {}`, 0, proto.ErrNotJSON},
		{"unclosed envelope", `{"version":2,"message":{"NodeStatusUpdate":` + p + `}`, 0, proto.ErrNotJSON},
		{"type error in payload", `{"version":2,"message":{"NodeStatusUpdate":{"node_id":"1","status":"Running"}}}`, 0, proto.ErrInvalidField},
		{"syntax error wins over missing version", `{"message":{"NodeStatusUpdate":{"node_id":1,}}}`, 0, proto.ErrNotJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBoth(t, []byte(tt.give))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Decode = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.Version != tt.wantVersion || got.Message.Variant() != "NodeStatusUpdate") {
				t.Fatalf("got version %d %s", got.Version, got.Message.Variant())
			}
		})
	}
}
