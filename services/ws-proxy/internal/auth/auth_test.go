package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseLookup(t *testing.T) {
	toks, err := Parse(" read:r1 , admin:a1,read:shared,admin:shared")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give string
		want Role
	}{
		{"r1", Read}, {"a1", Admin}, {"shared", Admin}, {"", None}, {"r", None}, {"r1 ", None},
	}
	for _, tt := range tests {
		if got := toks.Lookup(tt.give); got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.give, got, tt.want)
		}
	}
	for _, bad := range []string{"root:x", "read", "read:", ":x"} {
		_, err := Parse(bad)
		if err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), "x") && bad != "read" {
			t.Errorf("%q: error shows the token: %v", bad, err)
		}
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name, header, url, want string
	}{
		{"bearer", "Bearer abc", "/", "abc"},
		{"bearer any case", "bearer abc", "/", "abc"},
		{"query", "", "/?token=q", "q"},
		{"header beats query", "Bearer h", "/?token=q", "h"},
		{"other scheme", "Basic abc", "/?token=q", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.url, nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if got := FromRequest(r); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
