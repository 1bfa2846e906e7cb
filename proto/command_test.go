package proto_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/honeybee/core/proto"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name string
		give string
		want proto.Command
	}{
		{"InstallPot", `{"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{"ssh_port":"2222"},"auto_start":true}}`,
			proto.Command{Kind: proto.CmdInstallPot, PotID: "cowrie-01", Install: &proto.InstallPot{PotID: "cowrie-01", HoneypotType: "cowrie", Config: map[string]string{"ssh_port": "2222"}, AutoStart: true}}},
		{"DeployPot", `{"DeployPot":"cowrie-01"}`, proto.Command{Kind: proto.CmdDeployPot, PotID: "cowrie-01"}},
		{"StopPot", `{"StopPot":"a.b *>"}`, proto.Command{Kind: proto.CmdStopPot, PotID: "a.b *>"}},
		{"RestartPot", `{"RestartPot":"p"}`, proto.Command{Kind: proto.CmdRestartPot, PotID: "p"}},
		{"GetPotStatus", `{"GetPotStatus":"p"}`, proto.Command{Kind: proto.CmdGetPotStatus, PotID: "p"}},
		{"GetPotLogs", `{"GetPotLogs":"p"}`, proto.Command{Kind: proto.CmdGetPotLogs, PotID: "p"}},
		{"GetPotMetrics", `{"GetPotMetrics":"p"}`, proto.Command{Kind: proto.CmdGetPotMetrics, PotID: "p"}},
		{"GetPotInfo", `{"GetPotInfo":"p"}`, proto.Command{Kind: proto.CmdGetPotInfo, PotID: "p"}},
		{"Restart object", `{"Restart":{}}`, proto.Command{Kind: proto.CmdRestart}},
		{"Restart string", `"Restart"`, proto.Command{Kind: proto.CmdRestart}},
		{"Restart null", `{"Restart":null}`, proto.Command{Kind: proto.CmdRestart}},
		{"UpdateConfig", `{"UpdateConfig":{}}`, proto.Command{Kind: proto.CmdUpdateConfig}},
		{"GetInstalledPots", ` "GetInstalledPots" `, proto.Command{Kind: proto.CmdGetInstalledPots}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.ParseCommand([]byte(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			// json.Unmarshal goes through the same UnmarshalJSON.
			var viaJSON struct{ C proto.Command }
			if err := json.Unmarshal([]byte(`{"C":`+tt.give+`}`), &viaJSON); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(viaJSON.C, tt.want) {
				t.Fatalf("json.Unmarshal: got %+v, want %+v", viaJSON.C, tt.want)
			}
		})
	}
}

func TestParseCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []error
	}{
		{"empty", ``, []error{proto.ErrInvalidCommand, proto.ErrMissingField}},
		{"not JSON", `{"StopPot":`, []error{proto.ErrInvalidCommand, proto.ErrNotJSON}},
		{"unknown", `{"SelfDestruct":{}}`, []error{proto.ErrInvalidCommand, proto.ErrUnknownVariant}},
		{"unknown string", `"SelfDestruct"`, []error{proto.ErrInvalidCommand, proto.ErrUnknownVariant}},
		{"number", `5`, []error{proto.ErrInvalidCommand, proto.ErrInvalidField}},
		{"two keys", `{"Restart":{},"StopPot":"p"}`, []error{proto.ErrInvalidCommand, proto.ErrInvalidField}},
		{"pot command bare", `"StopPot"`, []error{proto.ErrInvalidCommand}},
		{"pot command empty id", `{"StopPot":""}`, []error{proto.ErrInvalidCommand}},
		{"pot command null", `{"StopPot":null}`, []error{proto.ErrInvalidCommand}},
		{"pot command number", `{"StopPot":5}`, []error{proto.ErrInvalidCommand}},
		{"unit command payload", `{"Restart":{"delay":5}}`, []error{proto.ErrInvalidCommand}},
		{"unit command string payload", `{"Restart":"now"}`, []error{proto.ErrInvalidCommand}},
		{"install bare", `"InstallPot"`, []error{proto.ErrInvalidCommand}},
		{"install null", `{"InstallPot":null}`, []error{proto.ErrInvalidCommand}},
		{"install array", `{"InstallPot":[]}`, []error{proto.ErrInvalidCommand, proto.ErrInvalidField}},
		{"install missing pot_id", `{"InstallPot":{"honeypot_type":"cowrie"}}`, []error{proto.ErrInvalidCommand, proto.ErrMissingField}},
		{"install missing type", `{"InstallPot":{"pot_id":"p"}}`, []error{proto.ErrInvalidCommand, proto.ErrMissingField}},
		{"install empty pot_id", `{"InstallPot":{"pot_id":"","honeypot_type":"cowrie"}}`, []error{proto.ErrInvalidCommand}},
		{"install empty type", `{"InstallPot":{"pot_id":"p","honeypot_type":""}}`, []error{proto.ErrInvalidCommand}},
		{"install config values not strings", `{"InstallPot":{"pot_id":"p","honeypot_type":"t","config":{"port":1}}}`, []error{proto.ErrInvalidCommand, proto.ErrInvalidField}},
		{"too deep", strings.Repeat(`{"Restart":`, 100) + `{}` + strings.Repeat(`}`, 100), []error{proto.ErrInvalidCommand, proto.ErrTooDeep}},
		{"invalid UTF-8", "{\"StopPot\":\"\xff\"}", []error{proto.ErrInvalidCommand, proto.ErrInvalidUTF8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.ParseCommand([]byte(tt.give))
			if err == nil {
				t.Fatalf("ParseCommand = %+v, want an error", got)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not wrap %q", err, w)
				}
			}
			if !reflect.DeepEqual(got, proto.Command{}) {
				t.Errorf("ParseCommand returned %+v with its error", got)
			}
		})
	}
}

// TestCommandUnmarshalKeepsOnError: a failed UnmarshalJSON leaves the
// command as it was.
func TestCommandUnmarshalKeepsOnError(t *testing.T) {
	c := proto.Command{Kind: proto.CmdStopPot, PotID: "keep"}
	if err := c.UnmarshalJSON([]byte(`{"StopPot":""}`)); err == nil {
		t.Fatal("no error")
	}
	if c.Kind != proto.CmdStopPot || c.PotID != "keep" {
		t.Fatalf("command changed to %+v", c)
	}
}

func TestCommandValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    proto.Command
		wantErr bool
	}{
		{"pot command", proto.Command{Kind: proto.CmdStopPot, PotID: "p"}, false},
		{"unit command", proto.Command{Kind: proto.CmdRestart}, false},
		{"install", proto.Command{Kind: proto.CmdInstallPot, Install: &proto.InstallPot{PotID: "p", HoneypotType: "t"}}, false},
		{"zero", proto.Command{}, true},
		{"unknown", proto.Command{Kind: "Explode"}, true},
		{"pot command without id", proto.Command{Kind: proto.CmdGetPotLogs}, true},
		{"install without payload", proto.Command{Kind: proto.CmdInstallPot, PotID: "p"}, true},
		{"install without pot id", proto.Command{Kind: proto.CmdInstallPot, Install: &proto.InstallPot{HoneypotType: "t"}}, true},
		{"install without type", proto.Command{Kind: proto.CmdInstallPot, Install: &proto.InstallPot{PotID: "p"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, proto.ErrInvalidCommand) {
				t.Fatalf("error %v does not wrap ErrInvalidCommand", err)
			}
		})
	}
}

func TestCommandKinds(t *testing.T) {
	tests := []struct {
		give          proto.CommandKind
		pot, unit, ok bool
	}{
		{proto.CmdInstallPot, false, false, true},
		{proto.CmdDeployPot, true, false, true},
		{proto.CmdStopPot, true, false, true},
		{proto.CmdRestartPot, true, false, true},
		{proto.CmdGetPotStatus, true, false, true},
		{proto.CmdGetPotLogs, true, false, true},
		{proto.CmdGetPotMetrics, true, false, true},
		{proto.CmdGetPotInfo, true, false, true},
		{proto.CmdRestart, false, true, true},
		{proto.CmdUpdateConfig, false, true, true},
		{proto.CmdGetInstalledPots, false, true, true},
		{"", false, false, false},
		{"restart", false, false, false},
	}
	for _, tt := range tests {
		if tt.give.IsPotCommand() != tt.pot || tt.give.IsUnit() != tt.unit || tt.give.Valid() != tt.ok {
			t.Errorf("%q: IsPotCommand %v IsUnit %v Valid %v", tt.give, tt.give.IsPotCommand(), tt.give.IsUnit(), tt.give.Valid())
		}
	}
}

func TestCommandMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		give proto.Command
		want string
	}{
		{"unit as object", proto.Command{Kind: proto.CmdRestart}, `{"Restart":{}}`},
		{"pot command as string", proto.Command{Kind: proto.CmdStopPot, PotID: `a"b`}, `{"StopPot":"a\"b"}`},
		{"install without payload writes an empty install", proto.Command{Kind: proto.CmdInstallPot},
			`{"InstallPot":{"pot_id":"","honeypot_type":"","git_url":null,"git_branch":null,"config":{},"auto_start":false}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
