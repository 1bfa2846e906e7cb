package bus_test

import (
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
