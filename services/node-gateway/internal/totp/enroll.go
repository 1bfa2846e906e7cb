package totp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrAlreadyEnrolled is returned by Enroll when the node name already has a
// secret in the bucket.
var ErrAlreadyEnrolled = errors.New("node name already enrolled")

// ErrInvalidFile is returned by LoadFile for a line it cannot use.
var ErrInvalidFile = errors.New("invalid totp enrollment file")

// Enroll creates a record with a fresh secret for nodeName (Source
// bus.TOTPEnrolled) and returns it, so the caller can show the secret (or
// its URI) once. It never overwrites: an existing name yields
// ErrAlreadyEnrolled.
func Enroll(ctx context.Context, kv jetstream.KeyValue, nodeName string, now time.Time) (bus.TOTPRecord, error) {
	if nodeName == "" {
		return bus.TOTPRecord{}, errors.New("totp: enroll: empty node name")
	}
	secret, err := NewSecret()
	if err != nil {
		return bus.TOTPRecord{}, err
	}
	rec := bus.TOTPRecord{NodeName: nodeName, Secret: secret, Source: bus.TOTPEnrolled, CreatedAt: now.UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return bus.TOTPRecord{}, err
	}
	if _, err := kv.Create(ctx, bus.TOTPKey(nodeName), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return bus.TOTPRecord{}, fmt.Errorf("totp: enroll %q: %w", nodeName, ErrAlreadyEnrolled)
		}
		return bus.TOTPRecord{}, fmt.Errorf("totp: enroll %q: %w", nodeName, err)
	}
	return rec, nil
}

// LoadFile enrolls the node names listed in the file at path and returns
// how many it holds. Each line is
//
//	<node name> <secret>
//
// where the secret is the last blank-separated field (base32 of at least
// MinSecretSize bytes, any case, padded or not) and the node name is
// everything before it with surrounding blanks trimmed, so a name may
// contain inner spaces. Lines that are blank or whose first non-blank
// character is '#' are ignored. A line without a secret is an error: a
// file-driven enrollment cannot show a generated secret to anyone, so use
// Enroll for that.
//
// The whole file is validated first (errors name the line, never the
// secret; a name listed twice is an error) and nothing is written if any
// line is bad. Then each name's record is created or overwritten with
// Source bus.TOTPEnrolled; a record already holding the same secret keeps
// its LastStep, so loading the same file at every start (or from several
// gateways) never makes a used code acceptable again.
func LoadFile(ctx context.Context, kv jetstream.KeyValue, path string, now time.Time) (int, error) {
	recs, err := parseFile(path, now)
	if err != nil {
		return 0, err
	}
	for i, rec := range recs {
		if err := upsert(ctx, kv, rec); err != nil {
			return i, fmt.Errorf("totp: load %s: node %q: %w", path, rec.NodeName, err)
		}
	}
	return len(recs), nil
}

func parseFile(path string, now time.Time) ([]bus.TOTPRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	defer f.Close()

	var (
		recs []bus.TOTPRecord
		errs []error
		seen = make(map[string]int) // node name -> line
	)
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s:%d: "+format, append([]any{ErrInvalidFile, path, line}, args...)...))
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cut := strings.LastIndexFunc(text, unicode.IsSpace)
		if cut < 0 {
			bad(line, "want \"<node name> <secret>\", got a single field (secrets are never generated from a file)")
			continue
		}
		name := strings.TrimSpace(text[:cut])
		secret := normalizeSecret(text[cut+1:])
		key, err := b32.DecodeString(secret)
		switch {
		case err != nil:
			bad(line, "node %q: secret is not base32", name)
			continue
		case len(key) < MinSecretSize:
			bad(line, "node %q: secret is %d bytes, want at least %d: %w", name, len(key), MinSecretSize, ErrInvalidSecret)
			continue
		}
		if first, dup := seen[name]; dup {
			bad(line, "node %q already listed on line %d", name, first)
			continue
		}
		seen[name] = line
		recs = append(recs, bus.TOTPRecord{NodeName: name, Secret: secret, Source: bus.TOTPEnrolled, CreatedAt: now.UTC()})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("totp: %s:%d: %w", path, line+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return recs, nil
}

// upsert writes rec under its key, keeping LastStep and CreatedAt of an
// existing record with the same secret.
func upsert(ctx context.Context, kv jetstream.KeyValue, rec bus.TOTPRecord) error {
	key := bus.TOTPKey(rec.NodeName)
	for range maxCASAttempts {
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			_, err = kv.Create(ctx, key, b)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		next := rec
		var old bus.TOTPRecord
		if json.Unmarshal(entry.Value(), &old) == nil && normalizeSecret(old.Secret) == rec.Secret {
			if old.Source == bus.TOTPEnrolled && old.NodeName == rec.NodeName {
				return nil // already enrolled with this secret
			}
			next.LastStep, next.CreatedAt = old.LastStep, old.CreatedAt
		}
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		_, err = kv.Update(ctx, key, b, entry.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return err
	}
	return fmt.Errorf("record changed %d times while writing", maxCASAttempts)
}
