package totp

import (
	"encoding/base32"
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1 column, truncated to 6 digits.
func TestCodeRFC6238(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	tests := []struct {
		give int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	for _, tt := range tests {
		got, err := Code(secret, time.Unix(tt.give, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("Code(t=%d) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestNewSecret(t *testing.T) {
	s := NewSecret()
	if len(s) != 32 {
		t.Fatalf("secret %q: len %d, want 32", s, len(s))
	}
	if _, err := Code(s, time.Now()); err != nil {
		t.Fatalf("fresh secret does not decode: %v", err)
	}
}

func TestCodeBadSecret(t *testing.T) {
	if _, err := Code("not base32!", time.Now()); err == nil {
		t.Fatal("want an error for a bad secret")
	}
}
