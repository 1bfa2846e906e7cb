package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/scripts/load/internal/marker"
)

// Dialect is the way a simulated node reports attack events.
type Dialect int

// Dialects of protocol-v2.md.
const (
	// Documented is the PotEvent form with event_type, an RFC 3339
	// timestamp and a data object.
	Documented Dialect = iota
	// Compact is the PotEvent form with event, Unix-seconds timestamp,
	// message and string-valued metadata.
	Compact
	// Quirk is the deployed Go node's habit: a PotStatusUpdate with an
	// empty status carrying the honeypot's log line in message.
	Quirk
)

// Dialects lists every dialect, in the order a mix cycles through them.
var Dialects = []Dialect{Documented, Compact, Quirk}

func (d Dialect) String() string {
	switch d {
	case Documented:
		return "documented"
	case Compact:
		return "compact"
	case Quirk:
		return "quirk"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// ParseDialect parses a dialect name.
func ParseDialect(s string) (Dialect, error) {
	for _, d := range Dialects {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dialect %q (want documented, compact or quirk)", s)
}

// placeholder stands for the mark in a template; it survives JSON encoding
// unchanged, also inside a JSON string inside a JSON string.
const placeholder = "@@HBMARK@@"

// cowrie event ids, one per pot (pot i uses eventIDs[i%len]).
var eventIDs = []string{
	"cowrie.login.failed",
	"cowrie.session.connect",
	"cowrie.command.input",
	"cowrie.login.success",
	"cowrie.session.file_download",
	"cowrie.client.version",
}

// template is an event envelope split around its mark; a complete event is
// head + mark + tail + '\n'.
type template struct {
	head, tail []byte
	second     int64
}

// buildTemplate returns the envelope of one event of pot (index potIdx) in
// dialect d, stamped with time now, with the mark left out.
func buildTemplate(d Dialect, nodeID uint64, nodeName, potID string, potIdx int, now time.Time) (template, error) {
	evType := eventIDs[potIdx%len(eventIDs)]
	srcIP := fmt.Sprintf("203.0.%d.%d", 113+potIdx%3, 1+int(nodeID%250))
	srcPort := 40000 + int(nodeID%20000)
	session := fmt.Sprintf("%012x", nodeID&0xffffffffffff)
	msg := "login attempt [root/123456] failed"
	var m proto.Message
	switch d {
	case Documented:
		data, err := json.Marshal(map[string]any{
			"src_ip": srcIP, "src_port": srcPort, "dst_ip": "10.0.0.5", "dst_port": 22,
			"session": session, "username": "root", "password": "123456", "protocol": "ssh",
			"sensor": nodeName, "message": msg, "load": placeholder,
		})
		if err != nil {
			return template{}, err
		}
		m = &proto.PotEvent{NodeID: nodeID, PotID: potID, PotType: "cowrie", EventType: evType,
			Timestamp: now.UTC().Truncate(time.Second), Data: data, Form: proto.PotEventDocumented}
	case Compact:
		data, err := json.Marshal(map[string]string{
			"src_ip": srcIP, "src_port": strconv.Itoa(srcPort), "dst_ip": "10.0.0.5", "dst_port": "22",
			"session": session, "username": "root", "password": "123456", "protocol": "ssh",
			"sensor": nodeName, "load": placeholder,
		})
		if err != nil {
			return template{}, err
		}
		m = &proto.PotEvent{NodeID: nodeID, PotID: potID, EventType: evType, Message: &msg,
			Timestamp: now, Data: data, Form: proto.PotEventCompact}
	case Quirk:
		line, err := json.Marshal(map[string]any{
			"eventid": evType, "src_ip": srcIP, "src_port": srcPort, "dst_ip": "10.0.0.5", "dst_port": 22,
			"session": session, "username": "root", "password": "123456", "sensor": nodeName,
			"message": msg, "timestamp": now.UTC().Format(time.RFC3339), "load": placeholder,
		})
		if err != nil {
			return template{}, err
		}
		text := string(line)
		m = &proto.PotStatusUpdate{NodeID: nodeID, PotID: potID, Message: &text}
	default:
		return template{}, fmt.Errorf("unknown dialect %d", d)
	}
	env, err := proto.Marshal(m)
	if err != nil {
		return template{}, err
	}
	i := bytes.Index(env, []byte(placeholder))
	if i < 0 || bytes.Count(env, []byte(placeholder)) != 1 {
		return template{}, fmt.Errorf("%s template: mark placeholder not found exactly once", d)
	}
	return template{head: env[:i], tail: append(env[i+len(placeholder):len(env):len(env)], '\n'), second: now.Unix()}, nil
}

// appendEvent appends one complete event line with mark m.
func (t *template) appendEvent(dst []byte, m marker.Mark) []byte {
	dst = append(dst, t.head...)
	dst = marker.Append(dst, m)
	return append(dst, t.tail...)
}

// SampleEvent returns one complete event line in dialect d, as a node would
// send it (used to size benchmarks and in tests).
func SampleEvent(d Dialect, nodeID uint64, nodeName, potID string, m marker.Mark) ([]byte, error) {
	t, err := buildTemplate(d, nodeID, nodeName, potID, 0, time.Unix(0, m.SentNS))
	if err != nil {
		return nil, err
	}
	return t.appendEvent(nil, m), nil
}

// StoredSample returns the normalized attack event, as JSON, that a
// gateway makes of one event in dialect d: the message whose size the raw
// JetStream benchmark uses.
func StoredSample(d Dialect) ([]byte, error) {
	now := time.Now()
	m := marker.Mark{Node: 12345, Seq: 1234567, SentNS: now.UnixNano()}
	line, err := SampleEvent(d, 0xF00DF00DF00DF00D, "load-abcdef-00001", PotID(0), m)
	if err != nil {
		return nil, err
	}
	env, err := proto.Decode(line)
	if err != nil {
		return nil, err
	}
	who := bus.Identity{NodeID: 0xF00DF00DF00DF00D, NodeName: "load-abcdef-00001"}
	var ev bus.AttackEvent
	switch msg := env.Message.(type) {
	case *proto.PotEvent:
		ev = bus.NewAttackEvent("AbCdEfGhIjKlMnOpQrStUv", who, msg, now)
	case *proto.PotStatusUpdate:
		ev = bus.NewQuirkEvent("AbCdEfGhIjKlMnOpQrStUv", who, msg, now)
	default:
		return nil, fmt.Errorf("%s sample decodes as %T", d, env.Message)
	}
	return json.Marshal(ev)
}
