package bus_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/honeybee/core/proto/bus"
)

// tokenRe is what every escaped token must match.
var tokenRe = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)

// hostile are strings a node may send as a pot id or node name.
var hostile = []string{
	"", "a.b", ".", "..", "a..b", ".a", "a.", "*", ">", "a.*", "a.>", "*.>", " ", "a b", "\t", "\r\n", "new\nline",
	"=", "==", "=2E", "=2e", "=3D", "a=b", "-", "_", "cowrie-01", "ĉevalo", "日本語", "😀", "\x00", "\xff\xfe",
	"$JS.API.>", "_INBOX.x", "honeybee.events.1.p", "/", `\`, "%2E", "A", "a",
}

func TestEscapeTokenRoundTrip(t *testing.T) {
	all := append([]string{}, hostile...)
	for c := 0; c < 256; c++ {
		all = append(all, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	seen := map[string]string{}
	for _, s := range all {
		tok := bus.EscapeToken(s)
		if !tokenRe.MatchString(tok) {
			t.Errorf("EscapeToken(%q) = %q has bytes outside [A-Za-z0-9_=-]", s, tok)
		}
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Errorf("EscapeToken(%q) = %q", s, tok)
		}
		back, err := bus.UnescapeToken(tok)
		if err != nil || back != s {
			t.Errorf("UnescapeToken(EscapeToken(%q) = %q) = %q, %v", s, tok, back, err)
		}
		if prev, ok := seen[tok]; ok && prev != s {
			t.Errorf("EscapeToken(%q) = EscapeToken(%q) = %q", s, prev, tok)
		}
		seen[tok] = s
	}
}

func TestEscapeToken(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"cowrie-01", "cowrie-01"},
		{"a_B-9", "a_B-9"},
		{"", "="},
		{"a.b", "a=2Eb"},
		{"*", "=2A"},
		{">", "=3E"},
		{" ", "=20"},
		{"=", "=3D"},
		{"é", "=C3=A9"},
		{"\xff", "=FF"},
	}
	for _, tt := range tests {
		if got := bus.EscapeToken(tt.give); got != tt.want {
			t.Errorf("EscapeToken(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestUnescapeTokenErrors(t *testing.T) {
	for _, give := range []string{
		"",       // EscapeToken never returns ""
		"a.b",    // not a token
		"a b",    // not a token
		"*",      // wildcard
		"a=",     // truncated escape
		"a=2",    // truncated escape
		"=2e",    // lower-case hex
		"=2D",    // escaped plain byte '-'
		"=41",    // escaped plain byte 'A'
		"=G0",    // not hex
		"==3D",   // '=' not followed by hex
		"é",      // non-ASCII
		"=3D=",   // trailing '='
		"a=2Eb=", // trailing '='
	} {
		got, err := bus.UnescapeToken(give)
		if !errors.Is(err, bus.ErrInvalidToken) {
			t.Errorf("UnescapeToken(%q) = %q, %v; want ErrInvalidToken", give, got, err)
		}
	}
}

func TestSubjectsWithHostileIDs(t *testing.T) {
	c, err := bus.New("hb")
	if err != nil {
		t.Fatal(err)
	}
	pot := func(s string) *string { return &s }
	for _, id := range hostile {
		tests := []struct {
			name   string
			give   string
			tokens int
		}{
			{"Event", c.Event(18446744073709551615, id), 4},
			{"EventsOf", c.EventsOf(7, pot(id)), 4},
			{"EventsOfPot", c.EventsOfPot(id), 4},
			{"Pot", c.Pot(7, id), 5},
			{"PotKey", bus.PotKey(7, id), 2},
			{"TOTPKey", bus.TOTPKey(id), 1},
		}
		for _, tt := range tests {
			toks := strings.Split(tt.give, ".")
			if len(toks) != tt.tokens {
				t.Errorf("%s(%q) = %q: %d tokens, want %d", tt.name, id, tt.give, len(toks), tt.tokens)
			}
			for i, tok := range toks {
				if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
					t.Errorf("%s(%q) = %q: bad token %d %q", tt.name, id, tt.give, i, tok)
				}
				if (tok == "*" || tok == ">") && tt.name != "EventsOfPot" {
					t.Errorf("%s(%q) = %q: wildcard token %d", tt.name, id, tt.give, i)
				}
			}
		}
		// The pot token decodes back to the id, so it can never be
		// another pot's subject.
		toks := strings.Split(c.Event(7, id), ".")
		if back, err := bus.UnescapeToken(toks[3]); err != nil || back != id {
			t.Errorf("Event(7, %q) pot token %q decodes to %q, %v", id, toks[3], back, err)
		}
		if strings.HasPrefix(c.Event(7, id), c.EventsOf(8, nil)[:len("hb.events.8.")]) {
			t.Errorf("Event(7, %q) is under node 8", id)
		}
	}
}

func TestLayout(t *testing.T) {
	c := bus.Default()
	pot := "cowrie-01"
	tests := []struct {
		name, got, want string
	}{
		{"Prefix", c.Prefix(), "honeybee"},
		{"Event", c.Event(42, "a.b"), "honeybee.events.42.a=2Eb"},
		{"Events", c.Events(), "honeybee.events.>"},
		{"EventsOf node", c.EventsOf(42, nil), "honeybee.events.42.*"},
		{"EventsOf pot", c.EventsOf(42, &pot), "honeybee.events.42.cowrie-01"},
		{"EventsOfPot", c.EventsOfPot(pot), "honeybee.events.*.cowrie-01"},
		{"Node", c.Node(42, bus.LifecycleRegistered), "honeybee.nodes.42.registered"},
		{"Nodes", c.Nodes(), "honeybee.nodes.>"},
		{"Pot", c.Pot(42, pot), "honeybee.pots.42.cowrie-01.status"},
		{"Pots", c.Pots(), "honeybee.pots.>"},
		{"Command", c.Command(18446744073709551615), "honeybee.cmd.18446744073709551615"},
		{"Broadcast", c.Broadcast(), "honeybee.cmd.broadcast"},
		{"GatewayService", c.GatewayService(), "honeybee-gateway"},
		{"EventsStream", c.EventsStream(), "HONEYBEE_EVENTS"},
		{"NodesBucket", c.NodesBucket(), "honeybee_nodes"},
		{"PotsBucket", c.PotsBucket(), "honeybee_pots"},
		{"GatewaysBucket", c.GatewaysBucket(), "honeybee_gateways"},
		{"CommandsBucket", c.CommandsBucket(), "honeybee_commands"},
		{"TOTPBucket", c.TOTPBucket(), "honeybee_totp"},
		{"NodeKey", bus.NodeKey(42), "42"},
		{"PotKey", bus.PotKey(42, pot), "42.cowrie-01"},
		{"PotKeysOf", bus.PotKeysOf(42), "42.*"},
		{"TOTPKey", bus.TOTPKey("edge fra"), "edge=20fra"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// A node's command subject is not its broadcast subject, and
	// "broadcast" can never be a node id.
	if c.Command(0) == c.Broadcast() {
		t.Error("Command(0) is Broadcast")
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		give    string
		want    string
		wantErr bool
	}{
		{"", "honeybee", false},
		{"honeybee", "honeybee", false},
		{"hb-test_2", "hb-test_2", false},
		{"HB", "HB", false},
		{strings.Repeat("p", 64), strings.Repeat("p", 64), false},
		{strings.Repeat("p", 65), "", true},
		{"a.b", "", true},
		{"*", "", true},
		{">", "", true},
		{"a b", "", true},
		{" ", "", true},
		{"a/b", "", true},
		{"é", "", true},
		{"Ł", "", true}, // U+0141: its low byte is 'A'
		{"a=b", "", true},
		{"\x00", "", true},
	}
	for _, tt := range tests {
		c, err := bus.New(tt.give)
		if tt.wantErr {
			if !errors.Is(err, bus.ErrInvalidPrefix) {
				t.Errorf("New(%q) = %q, %v; want ErrInvalidPrefix", tt.give, c.Prefix(), err)
			}
			continue
		}
		if err != nil || c.Prefix() != tt.want {
			t.Errorf("New(%q) = %q, %v; want %q", tt.give, c.Prefix(), err, tt.want)
		}
	}
	if d, _ := bus.New(""); d != bus.Default() {
		t.Error("New(\"\") is not Default()")
	}
}

// nameRe is what JetStream accepts for stream and bucket names (nats.go's
// bucket rule, which is stricter than the server's stream rule).
var nameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func TestNamesValidForJetStream(t *testing.T) {
	for _, prefix := range []string{"", "hb", "a-b_c", strings.Repeat("Z", 64)} {
		c, err := bus.New(prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{c.EventsStream(), c.NodesBucket(), c.PotsBucket(), c.GatewaysBucket(), c.CommandsBucket(), c.TOTPBucket(), c.GatewayService()} {
			if !nameRe.MatchString(name) {
				t.Errorf("prefix %q: name %q is not valid for JetStream", prefix, name)
			}
			// A bucket's stream is KV_<bucket>; JetStream names are at most 255.
			if len("KV_"+name) > 255 {
				t.Errorf("prefix %q: name %q too long", prefix, name)
			}
		}
	}
}
