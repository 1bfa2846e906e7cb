package bus_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/honeybee/core/proto/bus"
)

// FuzzEscapeToken: every string escapes to one valid token that unescapes
// back to it; UnescapeToken accepts only what EscapeToken produces.
func FuzzEscapeToken(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := bus.EscapeToken(s)
		if !tokenRe.MatchString(tok) {
			t.Fatalf("EscapeToken(%q) = %q", s, tok)
		}
		back, err := bus.UnescapeToken(tok)
		if err != nil || back != s {
			t.Fatalf("UnescapeToken(%q) = %q, %v; want %q", tok, back, err, s)
		}
		subject := bus.Default().Event(1, s)
		if n := strings.Count(subject, "."); n != 3 {
			t.Fatalf("Event(1, %q) = %q has %d dots", s, subject, n)
		}
		// Read s as a token: if it is accepted, it must be canonical.
		if orig, err := bus.UnescapeToken(s); err == nil {
			if again := bus.EscapeToken(orig); again != s {
				t.Fatalf("UnescapeToken(%q) = %q, which escapes to %q", s, orig, again)
			}
		}
	})
}

// FuzzSrcIP: on valid JSON the scanning srcIP returns what encoding/json
// finds; on anything else it must not panic.
func FuzzSrcIP(f *testing.F) {
	for _, s := range []string{`{"src_ip":"192.0.2.1","ip":"x"}`, `{"ip":"a","IP":null}`, `{"a":[{"src_ip":"b"}],"src_ip":"c"}`, `{"src_ip":"\u00e9"}`, `{}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := bus.SrcIP(data)
		if !json.Valid(data) {
			return
		}
		if want := bus.SrcIPSlow(data); got != want {
			t.Errorf("SrcIP(%q) = %q, encoding/json finds %q", data, got, want)
		}
	})
}
