package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// RFC 6238 parameters used throughout HoneyBee (Protocol v2).
const (
	// Digits is the number of digits of a code.
	Digits = 6
	// Period is the length of one time step.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one are accepted.
	Skew = 1
	// SecretSize is the number of random bytes in a secret from NewSecret.
	SecretSize = 20
	// MinSecretSize is the smallest decoded secret LoadFile accepts.
	MinSecretSize = 16
)

// ErrInvalidSecret is returned by Code when the secret is not base32 or is
// empty; LoadFile wraps it for secrets shorter than MinSecretSize bytes.
var ErrInvalidSecret = errors.New("invalid totp secret")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh secret: SecretSize random bytes in base32
// without padding (32 characters).
func NewSecret() (string, error) {
	var b [SecretSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("totp: random secret: %w", err)
	}
	return b32.EncodeToString(b[:]), nil
}

// normalizeSecret upper-cases s and drops padding and blanks, the forms
// authenticator apps and operators commonly write a secret in.
func normalizeSecret(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '=' || r == ' ' || r == '\t' || r == '-':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

func decodeSecret(s string) ([]byte, error) {
	key, err := b32.DecodeString(normalizeSecret(s))
	if err != nil || len(key) == 0 {
		// The decoder's error quotes the offending input: keep it out.
		return nil, ErrInvalidSecret
	}
	return key, nil
}

// timeStep returns the RFC 6238 time step of t (floor of Unix time / Period).
func timeStep(t time.Time) int64 {
	s := t.Unix()
	p := int64(Period / time.Second)
	if s < 0 {
		return (s - p + 1) / p
	}
	return s / p
}

// hotp is RFC 4226 HOTP with SHA-1, truncated to Digits digits.
func hotp(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", Digits, bin%1_000_000)
}

// Code returns the code of secret (base32, any case, padded or not) at t.
func Code(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	s := timeStep(t)
	if s < 0 {
		return "", fmt.Errorf("totp: time %s before the Unix epoch", t.UTC().Format(time.RFC3339))
	}
	return hotp(key, uint64(s)), nil
}

// Verify reports whether code is the code of secret at t's step or one
// step either side, considering only steps after lastStep, so that a code
// (or an older one) accepted before is refused. On success it returns the
// matched step, to be stored as the new lastStep. A malformed secret or a
// code that is not exactly Digits ASCII digits never verifies.
func Verify(secret, code string, t time.Time, lastStep int64) (step int64, ok bool) {
	if len(code) != Digits {
		return 0, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return 0, false
	}
	cur := timeStep(t)
	for s := cur - Skew; s <= cur+Skew; s++ {
		if s <= lastStep || s < 0 {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(key, uint64(s))), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// URI returns the otpauth:// key URI of secret for an authenticator app:
// otpauth://totp/<issuer>:<nodeName>?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30.
// The label parts and parameters are percent-encoded (spaces as %20, a
// colon inside either part as %3A); an empty issuer leaves the label as
// the node name alone and omits the issuer parameter.
func URI(issuer, nodeName, secret string) string {
	label := escapeLabel(nodeName)
	if issuer != "" {
		label = escapeLabel(issuer) + ":" + label
	}
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(label)
	b.WriteString("?secret=")
	b.WriteString(escapeQuery(normalizeSecret(secret)))
	if issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(escapeQuery(issuer))
	}
	fmt.Fprintf(&b, "&algorithm=SHA1&digits=%d&period=%d", Digits, int(Period/time.Second))
	return b.String()
}

func escapeLabel(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}

func escapeQuery(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
