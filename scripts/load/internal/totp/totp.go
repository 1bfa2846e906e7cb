// Package totp computes RFC 6238 codes (SHA-1, 6 digits, 30-second steps)
// the way a HoneyBee node does, from a base32 secret. Pure functions, safe
// for concurrent use.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Step is the TOTP time step.
const Step = 30 * time.Second

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh 20-byte secret in base32 without padding.
func NewSecret() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return enc.EncodeToString(b)
}

// Code returns the 6-digit code of secret at time t.
func Code(secret string, t time.Time) (string, error) {
	key, err := enc.DecodeString(strings.ToUpper(strings.TrimRight(strings.ReplaceAll(secret, " ", ""), "=")))
	if err != nil {
		return "", fmt.Errorf("totp secret: %w", err)
	}
	return codeAt(key, uint64(t.Unix())/uint64(Step/time.Second)), nil
}

func codeAt(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}
