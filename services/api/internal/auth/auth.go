// Package auth parses the api's bearer tokens and checks presented tokens
// against them in constant time. A Tokens value is immutable after Parse
// and safe for concurrent use.
package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Role is what a token may do.
type Role string

// Roles.
const (
	// RoleRead may use GET (and HEAD) requests only.
	RoleRead Role = "read"
	// RoleAdmin may use every request.
	RoleAdmin Role = "admin"
)

// Allows reports whether r may use the HTTP method.
func (r Role) Allows(method string) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleRead:
		return method == "GET" || method == "HEAD"
	}
	return false
}

// ErrInvalidToken is returned by Parse for an entry that is not
// `role:token` with a known role and a non-empty token without spaces.
var ErrInvalidToken = errors.New("invalid token entry")

// Token is one configured token. Its secret is kept only as a SHA-256
// digest.
type Token struct {
	Role Role
	// Name is "<role>#<n>" (n counts from 1 in configuration order): what
	// logs and rate limits use instead of the secret.
	Name   string
	digest [sha256.Size]byte
}

// Tokens is the set of configured tokens.
type Tokens struct {
	list []Token
}

// Parse reads tokens from a comma-separated list (HONEYBEE_TOKENS) and
// from file contents with one entry per line and `#` comments
// (HONEYBEE_TOKENS_FILE). Errors never include a token.
func Parse(list, file string) (Tokens, error) {
	var entries []string
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(file))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries = append(entries, line)
	}
	if err := sc.Err(); err != nil {
		return Tokens{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var t Tokens
	seen := make(map[[sha256.Size]byte]bool)
	for i, e := range entries {
		role, secret, ok := strings.Cut(e, ":")
		role = strings.TrimSpace(role)
		secret = strings.TrimSpace(secret)
		switch {
		case !ok:
			return Tokens{}, fmt.Errorf("%w: entry %d: want role:token", ErrInvalidToken, i+1)
		case Role(role) != RoleRead && Role(role) != RoleAdmin:
			return Tokens{}, fmt.Errorf("%w: entry %d: role %q is not read or admin", ErrInvalidToken, i+1, role)
		case secret == "" || strings.ContainsAny(secret, " \t\r\n,"):
			return Tokens{}, fmt.Errorf("%w: entry %d: token is empty or contains spaces or commas", ErrInvalidToken, i+1)
		}
		d := sha256.Sum256([]byte(secret))
		if seen[d] {
			return Tokens{}, fmt.Errorf("%w: entry %d: token listed twice", ErrInvalidToken, i+1)
		}
		seen[d] = true
		t.list = append(t.list, Token{Role: Role(role), Name: fmt.Sprintf("%s#%d", role, i+1), digest: d})
	}
	return t, nil
}

// Len is the number of tokens.
func (t Tokens) Len() int { return len(t.list) }

// Lookup returns the token matching secret. It compares the digest of
// secret with every configured token, without stopping at a match, so
// its time does not depend on which token (if any) matched.
func (t Tokens) Lookup(secret string) (Token, bool) {
	d := sha256.Sum256([]byte(secret))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(d[:], t.list[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return t.list[found], true
}

// BearerToken extracts the token of an `Authorization: Bearer <token>`
// header value; ok is false when the header is absent or another scheme.
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
