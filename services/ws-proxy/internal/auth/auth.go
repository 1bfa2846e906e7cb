// Package auth checks the bearer tokens shared by the api and ws-proxy:
// `role:token` pairs with role read or admin, from HONEYBEE_TOKENS or a
// file. Lookups compare in constant time and are safe for concurrent use;
// tokens are never logged or returned in errors.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Role is what a token may do.
type Role int

// Roles, in increasing power.
const (
	// None is the role of a missing or unknown token.
	None Role = iota
	// Read may stream and query.
	Read
	// Admin may also send commands and remove nodes.
	Admin
)

// String returns the role's name as written in a token setting.
func (r Role) String() string {
	switch r {
	case Read:
		return "read"
	case Admin:
		return "admin"
	}
	return "none"
}

// ErrInvalidToken is returned by Parse and ParseFile for an entry that is
// not `role:token` with role read or admin and a non-empty token.
var ErrInvalidToken = errors.New("invalid token entry")

type entry struct {
	role Role
	sum  [sha256.Size]byte
}

// Tokens is a set of tokens with their roles. The zero value holds none.
type Tokens struct {
	entries []entry
}

// Len returns how many tokens are configured.
func (t Tokens) Len() int { return len(t.entries) }

// Parse reads comma-separated `role:token` pairs ("" gives no tokens).
func Parse(spec string) (Tokens, error) {
	var t Tokens
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if err := t.add(part); err != nil {
			return Tokens{}, fmt.Errorf("entry %d: %w", i+1, err)
		}
	}
	return t, nil
}

// ParseFile reads one `role:token` per line; blank lines and lines
// starting with # are skipped.
func ParseFile(path string) (Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Tokens{}, err
	}
	var t Tokens
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := t.add(line); err != nil {
			return Tokens{}, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return t, nil
}

// Merge returns the tokens of t and u.
func (t Tokens) Merge(u Tokens) Tokens {
	return Tokens{entries: append(append([]entry(nil), t.entries...), u.entries...)}
}

func (t *Tokens) add(pair string) error {
	name, tok, ok := strings.Cut(pair, ":")
	if !ok || tok == "" {
		return fmt.Errorf("%w: want role:token", ErrInvalidToken)
	}
	var r Role
	switch strings.TrimSpace(name) {
	case "read":
		r = Read
	case "admin":
		r = Admin
	default:
		return fmt.Errorf("%w: role must be read or admin", ErrInvalidToken)
	}
	t.entries = append(t.entries, entry{role: r, sum: sha256.Sum256([]byte(tok))})
	return nil
}

// Lookup returns the role of token, or None. Every entry is compared, in
// constant time, whatever matches, so timing says nothing about which
// entry (if any) matched.
func (t Tokens) Lookup(token string) Role {
	if token == "" {
		return None
	}
	sum := sha256.Sum256([]byte(token))
	role := None
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 && e.role > role {
			role = e.role
		}
	}
	return role
}

// FromRequest returns the token of r: `Authorization: Bearer <token>`, or
// the `token` query parameter (browsers cannot set headers on a WebSocket).
func FromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}
