// Package bus is the contract between HoneyBee services on NATS: subject
// names, JetStream stream and key-value bucket names, keys, and the JSON
// payloads carried on them. Every name lives under one prefix (default
// "honeybee"), so several cores can share a NATS account.
//
// Subject tokens built from node input (pot ids, node names) are escaped
// with EscapeToken, so no string a node sends can add a subject level,
// act as a wildcard, or reach another node's subjects.
//
// Layout (prefix "honeybee"):
//
//	honeybee.events.<node>.<pot>        attack events (AttackEvent), captured by stream HONEYBEE_EVENTS
//	honeybee.nodes.<node>.<what>        node lifecycle (NodeLifecycle): registered, status, event, disconnected, removed
//	honeybee.pots.<node>.<pot>.status   pot state changes (PotRecord)
//	honeybee.cmd.<node>                 command request-reply (CommandRequest -> CommandReply), answered only by the gateway holding the node
//	honeybee.cmd.broadcast              broadcast request (CommandRequest -> BroadcastReply), answered by every gateway
//
// Key-value buckets: honeybee_nodes (NodeRecord by NodeKey), honeybee_pots
// (PotRecord by PotKey), honeybee_gateways (GatewayRecord by gateway id,
// expiring), honeybee_commands (CommandRecord by command id), honeybee_totp
// (TOTPRecord by TOTPKey).
//
// Everything here is a pure value or function and safe for concurrent use.
package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "honeybee"

// ErrInvalidPrefix is returned by New when the prefix is not a single
// subject token made of letters, digits, '-' and '_', at most 64 bytes long.
var ErrInvalidPrefix = errors.New("invalid bus prefix")

// maxPrefixLen keeps every derived stream name (KV_<prefix>_gateways) well
// inside JetStream's 255-character limit on names.
const maxPrefixLen = 64

// Contract names every subject, stream and bucket under one prefix.
// The zero value is not usable; build one with New.
type Contract struct {
	prefix string
}

// New returns the contract for prefix ("" means DefaultPrefix).
func New(prefix string) (Contract, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(prefix) > maxPrefixLen {
		return Contract{}, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidPrefix, len(prefix), maxPrefixLen)
	}
	for _, c := range prefix {
		if !isPlain(byte(c)) || c > 0x7f {
			return Contract{}, fmt.Errorf("%w: %q: use letters, digits, '-' and '_'", ErrInvalidPrefix, prefix)
		}
	}
	return Contract{prefix: prefix}, nil
}

// Default is the contract under DefaultPrefix.
func Default() Contract { return Contract{prefix: DefaultPrefix} }

// Prefix returns the subject prefix.
func (c Contract) Prefix() string { return c.prefix }

func nodeToken(node uint64) string { return strconv.FormatUint(node, 10) }

// Event is the subject of an attack event of a node's pot.
func (c Contract) Event(node uint64, pot string) string {
	return c.prefix + ".events." + nodeToken(node) + "." + EscapeToken(pot)
}

// Events is the subject filter of all attack events.
func (c Contract) Events() string { return c.prefix + ".events.>" }

// EventsOf is the subject filter of the attack events of one node, or of
// one pot of it when pot is not nil.
func (c Contract) EventsOf(node uint64, pot *string) string {
	if pot == nil {
		return c.prefix + ".events." + nodeToken(node) + ".*"
	}
	return c.Event(node, *pot)
}

// EventsOfPot is the subject filter of one pot id on any node.
func (c Contract) EventsOfPot(pot string) string {
	return c.prefix + ".events.*." + EscapeToken(pot)
}

// Lifecycle kinds: the last token of a node lifecycle subject.
const (
	LifecycleRegistered   = "registered"
	LifecycleStatus       = "status"
	LifecycleEvent        = "event"
	LifecycleDisconnected = "disconnected"
	LifecycleRemoved      = "removed"
)

// Node is the subject of a node lifecycle message of the given kind.
func (c Contract) Node(node uint64, kind string) string {
	return c.prefix + ".nodes." + nodeToken(node) + "." + kind
}

// Nodes is the subject filter of all node lifecycle messages.
func (c Contract) Nodes() string { return c.prefix + ".nodes.>" }

// Pot is the subject of a pot's status changes.
func (c Contract) Pot(node uint64, pot string) string {
	return c.prefix + ".pots." + nodeToken(node) + "." + EscapeToken(pot) + ".status"
}

// Pots is the subject filter of all pot status changes.
func (c Contract) Pots() string { return c.prefix + ".pots.>" }

// Command is the request subject of commands for one node.
func (c Contract) Command(node uint64) string { return c.prefix + ".cmd." + nodeToken(node) }

// Broadcast is the request subject of a command to every connected node.
func (c Contract) Broadcast() string { return c.prefix + ".cmd.broadcast" }

// Service names for the NATS micro framework.
func (c Contract) GatewayService() string { return c.prefix + "-gateway" }

// EventsStream is the JetStream stream capturing Events().
func (c Contract) EventsStream() string { return strings.ToUpper(c.prefix) + "_EVENTS" }

// Bucket names.
func (c Contract) NodesBucket() string    { return c.prefix + "_nodes" }
func (c Contract) PotsBucket() string     { return c.prefix + "_pots" }
func (c Contract) GatewaysBucket() string { return c.prefix + "_gateways" }
func (c Contract) CommandsBucket() string { return c.prefix + "_commands" }
func (c Contract) TOTPBucket() string     { return c.prefix + "_totp" }

// NodeKey is the key of a node in the nodes bucket.
func NodeKey(node uint64) string { return nodeToken(node) }

// PotKey is the key of a pot in the pots bucket.
func PotKey(node uint64, pot string) string { return nodeToken(node) + "." + EscapeToken(pot) }

// PotKeysOf is the key filter of every pot of a node in the pots bucket.
func PotKeysOf(node uint64) string { return nodeToken(node) + ".*" }

// TOTPKey is the key of a node name in the TOTP bucket.
func TOTPKey(nodeName string) string { return EscapeToken(nodeName) }

// EscapeToken makes any string a single token that is valid both in a NATS
// subject and in a key-value key, and that no other string maps to.
// Letters, digits, '-' and '_' are kept; every other byte becomes '='
// followed by two upper-case hex digits ("a.b" -> "a=2Eb", "*" -> "=2A");
// the empty string becomes "=" (which no non-empty input produces).
func EscapeToken(s string) string {
	if s == "" {
		return "="
	}
	plain := true
	for i := 0; i < len(s); i++ {
		if !isPlain(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// ErrInvalidToken is returned by UnescapeToken for a string EscapeToken
// cannot have produced.
var ErrInvalidToken = errors.New("invalid escaped token")

// UnescapeToken reverses EscapeToken. It accepts only what EscapeToken
// produces: the empty string, lower-case hex and escaped plain bytes are
// errors wrapping ErrInvalidToken, so each string has exactly one token.
func UnescapeToken(tok string) (string, error) {
	switch tok {
	case "=":
		return "", nil
	case "":
		return "", fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	if !strings.Contains(tok, "=") {
		for i := 0; i < len(tok); i++ {
			if !isPlain(tok[i]) {
				return "", fmt.Errorf("%w: %q", ErrInvalidToken, tok)
			}
		}
		return tok, nil
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case isPlain(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(tok) && isUpperHex(tok[i+1]) && isUpperHex(tok[i+2]):
			v, _ := strconv.ParseUint(tok[i+1:i+3], 16, 8)
			if isPlain(byte(v)) {
				return "", fmt.Errorf("%w: %q", ErrInvalidToken, tok)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("%w: %q", ErrInvalidToken, tok)
		}
	}
	return b.String(), nil
}

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }
