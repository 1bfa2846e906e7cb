package proto_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/honeybee/core/proto"
)

func ExampleDecode() {
	lines := []string{
		`{"version":2,"message":{"PotEvent":{"node_id":42,"pot_id":"honnypotter-1","event":"honnypotter.login.failed","metadata":{"ip":"203.0.113.9"},"timestamp":1764302400}}}`,
		`{"version":2,"message":{"PotStatusUpdate":{"node_id":42,"pot_id":"cowrie-01","pot_type":"","status":"","message":"login attempt [root/123456] failed"}}}`,
		`{"version":2,"message":{"NodeEvent":"Started"}}`,
		`{"version":2,"message":{"NodeRegistration":{"node_id":18446744073709551616}}}`,
	}
	for _, line := range lines {
		env, err := proto.Decode([]byte(line))
		if err != nil {
			fmt.Println("error:", err, "| invalid field:", errors.Is(err, proto.ErrInvalidField))
			continue
		}
		switch m := env.Message.(type) {
		case *proto.PotEvent:
			fmt.Println(m.Variant(), m.EventType, m.Timestamp.Format("2006-01-02T15:04:05Z07:00"), string(m.Data))
		case *proto.PotStatusUpdate:
			fmt.Println(m.Variant(), m.PotID, "is a state:", m.IsState())
		case *proto.NodeEvent:
			fmt.Println(m.Variant(), m.Type)
		}
	}
	// Output:
	// PotEvent honnypotter.login.failed 2025-11-28T04:00:00Z {"ip":"203.0.113.9"}
	// PotStatusUpdate cowrie-01 is a state: false
	// NodeEvent Started
	// error: NodeRegistration: invalid field: node_id: number 18446744073709551616 is not a valid uint64 | invalid field: true
}

func ExampleNewReader() {
	// Envelopes split anyhow: back to back, with blank lines, and a
	// garbage line in between.
	stream := `{"version":2,"message":{"NodeStatusUpdate":{"node_id":1,"status":"Running"}}}{"version":2,"message":"NodeDrop"}` +
		"\r\n\r\nnot json\n" +
		`{"version":2,"message":{"NodeEvent":{"Alarm":{"description":"disk almost full"}}}}` + "\n"
	r := proto.NewReader(strings.NewReader(stream), proto.DefaultMaxSize)
	for {
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil { // io.ErrUnexpectedEOF, ErrTooLarge or a read error: close the connection
			fmt.Println("stream broken:", err)
			break
		}
		env, err := proto.Decode(frame)
		if err != nil { // one bad message: count it and go on
			fmt.Println("skipped:", err)
			continue
		}
		fmt.Println(env.Message.Variant())
	}
	// Output:
	// NodeStatusUpdate
	// NodeDrop
	// skipped: not JSON
	// NodeEvent
}

func ExampleMarshal() {
	msgs := []proto.Message{
		&proto.RegistrationAck{NodeID: 42, Accepted: true},
		&proto.NodeCommand{NodeID: 42, Command: proto.Command{Kind: proto.CmdRestart}},
		&proto.NodeCommand{NodeID: 42, Command: proto.Command{Kind: proto.CmdStopPot, PotID: "cowrie-01"}},
	}
	for _, m := range msgs {
		// Encode writes the same bytes followed by one newline.
		if err := proto.Encode(os.Stdout, m); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// {"version":2,"message":{"RegistrationAck":{"node_id":42,"accepted":true,"message":null,"totp_key":null}}}
	// {"version":2,"message":{"NodeCommand":{"node_id":42,"command":{"Restart":{}}}}}
	// {"version":2,"message":{"NodeCommand":{"node_id":42,"command":{"StopPot":"cowrie-01"}}}}
}

func ExampleParseCommand() {
	for _, in := range []string{
		`"Restart"`,
		`{"StopPot":"cowrie-01"}`,
		`{"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","config":{"ssh_port":"2222"}}}`,
		`{"StopPot":""}`,
	} {
		c, err := proto.ParseCommand([]byte(in))
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		wire, _ := c.MarshalJSON()
		fmt.Printf("%s pot=%q -> %s\n", c.Kind, c.PotID, wire)
	}
	// Output:
	// Restart pot="" -> {"Restart":{}}
	// StopPot pot="cowrie-01" -> {"StopPot":"cowrie-01"}
	// InstallPot pot="cowrie-01" -> {"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","git_url":null,"git_branch":null,"config":{"ssh_port":"2222"},"auto_start":false}}
	// error: invalid command: StopPot needs a non-empty pot id
}
