package proto_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/honeybee/core/proto"
)

// conformanceDir holds the shared transcripts (see its README).
const conformanceDir = "../../shared/conformance"

// transcript is one conformance file: its envelopes, one per line.
type transcript struct {
	name  string
	lines [][]byte
}

// readTranscripts returns every *.jsonl transcript, without comment lines
// (starting with '#') and blank lines.
func readTranscripts(tb testing.TB) []transcript {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no transcripts in %s: the shared conformance folder must sit beside the checkout", conformanceDir)
	}
	sort.Strings(files)
	var out []transcript
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		tr := transcript{name: filepath.Base(f)}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			tr.lines = append(tr.lines, bytes.Clone(line))
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		out = append(out, tr)
	}
	return out
}

// expectation is one entry of expect.json (the parts proto can check).
type expectation struct {
	Node struct {
		NodeID   uint64         `json:"node_id"`
		NodeName string         `json:"node_name"`
		NodeType proto.NodeType `json:"node_type"`
	} `json:"node"`
	Pots []struct {
		PotID   string          `json:"pot_id"`
		PotType string          `json:"pot_type"`
		Status  proto.PotStatus `json:"status"`
	} `json:"pots"`
	AttackEvents     int               `json:"attack_events"`
	AttackEventTypes []string          `json:"attack_event_types"`
	NodeEvents       []proto.NodeEvent `json:"node_events"`
}

// TestConformance decodes every transcript line and checks what the
// messages add up to against expect.json: the registered node, each pot's
// last real state, the number and types of attack events (PotEvents plus
// PotStatusUpdates that carry no state) and the node events.
func TestConformance(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(conformanceDir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expect map[string]expectation
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatal(err)
	}
	trs := readTranscripts(t)
	if len(trs) != len(expect) {
		t.Errorf("%d transcripts, %d entries in expect.json", len(trs), len(expect))
	}
	for _, tr := range trs {
		t.Run(tr.name, func(t *testing.T) {
			want, ok := expect[tr.name]
			if !ok {
				t.Fatalf("%s has no entry in expect.json", tr.name)
			}
			var (
				reg         *proto.NodeRegistration
				pots        = map[string]*proto.PotStatusUpdate{}
				potOrder    []string
				attacks     int
				attackTypes []string
				nodeEvents  []proto.NodeEvent
			)
			for i, line := range tr.lines {
				e, err := proto.Decode(line)
				if err != nil {
					t.Fatalf("line %d: %v\n%s", i+1, err, line)
				}
				if e.Version != proto.Version {
					t.Errorf("line %d: version %d", i+1, e.Version)
				}
				if i == 0 {
					if _, ok := e.Message.(*proto.NodeRegistration); !ok {
						t.Errorf("first message is %s, want NodeRegistration", e.Message.Variant())
					}
				}
				switch m := e.Message.(type) {
				case *proto.NodeRegistration:
					reg = m
				case *proto.PotStatusUpdate:
					if !m.IsState() {
						attacks++
						continue
					}
					if _, seen := pots[m.PotID]; !seen {
						potOrder = append(potOrder, m.PotID)
					}
					pots[m.PotID] = m
				case *proto.PotEvent:
					attacks++
					attackTypes = append(attackTypes, m.EventType)
				case *proto.NodeEvent:
					nodeEvents = append(nodeEvents, *m)
				case *proto.NodeStatusUpdate, *proto.NodeDrop:
				default:
					t.Errorf("line %d: unexpected %s from a node", i+1, m.Variant())
				}
			}
			if reg == nil {
				t.Fatal("no registration")
			}
			if reg.NodeID != want.Node.NodeID || reg.NodeName != want.Node.NodeName || reg.NodeType != want.Node.NodeType {
				t.Errorf("node = %d %q %q, want %d %q %q", reg.NodeID, reg.NodeName, reg.NodeType,
					want.Node.NodeID, want.Node.NodeName, want.Node.NodeType)
			}
			if len(potOrder) != len(want.Pots) {
				t.Errorf("%d pots %v, want %d", len(potOrder), potOrder, len(want.Pots))
			}
			for _, wp := range want.Pots {
				p, ok := pots[wp.PotID]
				if !ok {
					t.Errorf("pot %q never reported a state", wp.PotID)
					continue
				}
				if p.PotType != wp.PotType || p.Status != wp.Status {
					t.Errorf("pot %q = %q %q, want %q %q", wp.PotID, p.PotType, p.Status, wp.PotType, wp.Status)
				}
			}
			if attacks != want.AttackEvents {
				t.Errorf("attack events = %d, want %d", attacks, want.AttackEvents)
			}
			if want.AttackEventTypes != nil && !reflect.DeepEqual(attackTypes, want.AttackEventTypes) {
				t.Errorf("attack event types = %q, want %q", attackTypes, want.AttackEventTypes)
			}
			if !reflect.DeepEqual(nodeEvents, want.NodeEvents) {
				t.Errorf("node events = %+v, want %+v", nodeEvents, want.NodeEvents)
			}
		})
	}
}

// TestConformanceStream feeds each transcript through the framing reader,
// in the three layouts the protocol allows, and checks every frame decodes
// to the same message as its line.
func TestConformanceStream(t *testing.T) {
	for _, tr := range readTranscripts(t) {
		layouts := map[string][]byte{
			"newline":      bytes.Join(tr.lines, []byte("\n")),
			"crlf + blank": bytes.Join(tr.lines, []byte("\r\n\r\n")),
			"back to back": bytes.Join(tr.lines, nil),
		}
		for name, stream := range layouts {
			t.Run(tr.name+"/"+name, func(t *testing.T) {
				r := proto.NewReader(bytes.NewReader(stream), 0)
				for i, line := range tr.lines {
					frame, err := r.Next()
					if err != nil {
						t.Fatalf("frame %d: %v", i+1, err)
					}
					if !bytes.Equal(frame, line) {
						t.Fatalf("frame %d = %s, want %s", i+1, frame, line)
					}
				}
				if frame, err := r.Next(); !errors.Is(err, io.EOF) {
					t.Fatalf("after the last frame: %q, %v; want EOF", frame, err)
				}
			})
		}
	}
}
