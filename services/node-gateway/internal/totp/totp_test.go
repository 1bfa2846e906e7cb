package totp_test

import (
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/services/node-gateway/internal/totp"
)

// rfcSecret is the RFC 6238 Appendix B SHA-1 seed "12345678901234567890".
var rfcSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

func TestCodeRFC6238Vectors(t *testing.T) {
	// RFC 6238 Appendix B, SHA-1 column (8 digits); a 6-digit code is the
	// same binary value mod 10^6, i.e. the last 6 digits.
	tests := []struct {
		give int64
		want string // 8-digit vector
	}{
		{give: 59, want: "94287082"},
		{give: 1111111109, want: "07081804"},
		{give: 1111111111, want: "14050471"},
		{give: 1234567890, want: "89005924"},
		{give: 2000000000, want: "69279037"},
		{give: 20000000000, want: "65353130"},
	}
	for _, tt := range tests {
		got, err := totp.Code(rfcSecret, time.Unix(tt.give, 0))
		if err != nil {
			t.Fatalf("Code(T=%d): %v", tt.give, err)
		}
		if want := tt.want[2:]; got != want {
			t.Errorf("Code(T=%d) = %s, want %s", tt.give, got, want)
		}
	}
}

func TestCodeSecretForms(t *testing.T) {
	want := mustCode(t, rfcSecret, base)
	tests := []struct {
		name string
		give string
	}{
		{name: "lower case", give: strings.ToLower(rfcSecret)},
		{name: "padded", give: base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))},
		{name: "padded lower case grouped", give: "gezd gnbv gy3t qojq gezd gnbv gy3t qojq===="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := totp.Code(tt.give, base)
			if err != nil || got != want {
				t.Errorf("Code = %q, %v; want %q", got, err, want)
			}
			if _, ok := totp.Verify(tt.give, want, base, 0); !ok {
				t.Error("Verify refused the matching code")
			}
		})
	}
}

func TestCodeInvalidSecret(t *testing.T) {
	for _, give := range []string{"", "1!!", "ABC8"} {
		if _, err := totp.Code(give, base); !errors.Is(err, totp.ErrInvalidSecret) {
			t.Errorf("Code(%q) error = %v, want ErrInvalidSecret", give, err)
		}
	}
}

func TestNewSecret(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		s, err := totp.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 || strings.ContainsAny(s, "=abcdefghijklmnopqrstuvwxyz") {
			t.Fatalf("secret %q: want 32 upper-case base32 characters without padding", s)
		}
		b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
		if err != nil || len(b) != totp.SecretSize {
			t.Fatalf("secret decodes to %d bytes, %v", len(b), err)
		}
		if seen[s] {
			t.Fatal("NewSecret repeated a secret")
		}
		seen[s] = true
	}
}

func TestVerify(t *testing.T) {
	secret := rfcSecret
	cur := base.Unix() / 30
	at := func(steps int) string { return mustCode(t, secret, base.Add(time.Duration(steps)*totp.Period)) }
	tests := []struct {
		name     string
		code     string
		lastStep int64
		wantOK   bool
		wantStep int64
	}{
		{name: "current step", code: at(0), lastStep: 0, wantOK: true, wantStep: cur},
		{name: "one step behind", code: at(-1), lastStep: 0, wantOK: true, wantStep: cur - 1},
		{name: "one step ahead", code: at(1), lastStep: 0, wantOK: true, wantStep: cur + 1},
		{name: "two steps behind", code: at(-2), lastStep: 0, wantOK: false},
		{name: "two steps ahead", code: at(2), lastStep: 0, wantOK: false},
		{name: "replay of the current step", code: at(0), lastStep: cur, wantOK: false},
		{name: "older step after a newer one", code: at(-1), lastStep: cur, wantOK: false},
		{name: "replay of the step behind", code: at(-1), lastStep: cur - 1, wantOK: false},
		{name: "next step after the current one", code: at(1), lastStep: cur, wantOK: true, wantStep: cur + 1},
		{name: "current step after the one behind", code: at(0), lastStep: cur - 1, wantOK: true, wantStep: cur},
		{name: "nothing after the step ahead", code: at(1), lastStep: cur + 1, wantOK: false},
		{name: "empty", code: "", wantOK: false},
		{name: "five digits", code: at(0)[1:], wantOK: false},
		{name: "seven digits", code: at(0) + "0", wantOK: false},
		{name: "not digits", code: "12a456", wantOK: false},
		{name: "signed", code: "+12345", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := totp.Verify(secret, tt.code, base, tt.lastStep)
			if ok != tt.wantOK || step != tt.wantStep {
				t.Errorf("Verify = (%d, %v), want (%d, %v)", step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
	if _, ok := totp.Verify("not base32!", at(0), base, 0); ok {
		t.Error("Verify accepted a code for a malformed secret")
	}
	if _, ok := totp.Verify("", "000000", base, 0); ok {
		t.Error("Verify accepted a code for an empty secret")
	}
}

func TestURI(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	tests := []struct {
		name   string
		issuer string
		node   string
		want   string
	}{
		{
			name: "plain", issuer: "HoneyBee", node: "edge-1",
			want: "otpauth://totp/HoneyBee:edge-1?secret=" + secret + "&issuer=HoneyBee&algorithm=SHA1&digits=6&period=30",
		},
		{
			name: "spaces", issuer: "Honey Bee", node: "edge node 1",
			want: "otpauth://totp/Honey%20Bee:edge%20node%201?secret=" + secret + "&issuer=Honey%20Bee&algorithm=SHA1&digits=6&period=30",
		},
		{
			name: "reserved characters", issuer: "A&B:C", node: "x:y/z?#%",
			want: "otpauth://totp/A&B%3AC:x%3Ay%2Fz%3F%23%25?secret=" + secret + "&issuer=A%26B%3AC&algorithm=SHA1&digits=6&period=30",
		},
		{
			name: "no issuer", issuer: "", node: "nœud",
			want: "otpauth://totp/n%C5%93ud?secret=" + secret + "&algorithm=SHA1&digits=6&period=30",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := totp.URI(tt.issuer, tt.node, strings.ToLower(secret)+"====")
			if got != tt.want {
				t.Fatalf("URI =\n %s\nwant\n %s", got, tt.want)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			label := tt.node
			if tt.issuer != "" {
				label = tt.issuer + ":" + tt.node
			}
			q := u.Query()
			if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/"+label ||
				q.Get("secret") != secret || q.Get("issuer") != tt.issuer ||
				q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
				t.Errorf("URI does not round-trip: %#v %v", u, q)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		give string
		want totp.Mode
	}{
		{give: "off", want: totp.Off},
		{give: "tofu", want: totp.TOFU},
		{give: " Enrolled ", want: totp.Enrolled},
		{give: "TOFU", want: totp.TOFU},
	}
	for _, tt := range tests {
		got, err := totp.ParseMode(tt.give)
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
	for _, give := range []string{"", "on", "enroll", "true"} {
		if _, err := totp.ParseMode(give); !errors.Is(err, totp.ErrInvalidMode) {
			t.Errorf("ParseMode(%q) error = %v, want ErrInvalidMode", give, err)
		}
	}
}
