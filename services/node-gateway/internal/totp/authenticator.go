package totp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Errors returned by Authenticator.Check. Each one's text is safe to send
// to the node as RegistrationAck.message (Reason extracts it from a wrapped
// error); none contains a secret or a code.
var (
	// ErrCodeRequired is returned when the node name has a secret but the
	// registration carries no code.
	ErrCodeRequired = errors.New("totp code required")
	// ErrInvalidCode is returned when the code is malformed, wrong, outside
	// one step of skew, or was already accepted once (a replay).
	ErrInvalidCode = errors.New("invalid totp code")
	// ErrNotEnrolled is returned in Enrolled mode for a node name without a
	// secret.
	ErrNotEnrolled = errors.New("node name not enrolled")
	// ErrRateLimited is returned, without looking at the code, while the
	// remote address has too many recent failed attempts.
	ErrRateLimited = errors.New("too many failed authentication attempts, retry later")
	// ErrUnavailable is returned, wrapping the cause, when the TOTP bucket
	// cannot be read or written (NATS down, bucket missing, context done) or
	// holds a record that cannot be used; the node may retry later.
	ErrUnavailable = errors.New("authentication unavailable, retry")
)

// Reason returns the text of the sentinel error err wraps, safe to send to
// a node; "authentication failed" for any other non-nil error, "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range []error{ErrCodeRequired, ErrInvalidCode, ErrNotEnrolled, ErrRateLimited, ErrUnavailable} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "authentication failed"
}

// Rate limiting defaults.
const (
	// DefaultMaxFailures is how many failed attempts a remote address may
	// make per DefaultFailureWindow before being refused with ErrRateLimited.
	DefaultMaxFailures = 5
	// DefaultFailureWindow is the sliding window failures are counted in.
	DefaultFailureWindow = time.Minute
	// DefaultMaxTrackedAddrs caps how many remote addresses are remembered.
	DefaultMaxTrackedAddrs = 10_000
)

// maxCASAttempts bounds the re-read loop on compare-and-set conflicts. Each
// conflict means another gateway changed the record, which happens at most
// a few times per step for one name.
const maxCASAttempts = 8

type options struct {
	maxFailures int
	window      time.Duration
	maxAddrs    int
}

// Option configures an Authenticator.
type Option func(*options)

// WithRateLimit allows failures failed attempts per remote address within
// any window of length per; beyond that Check answers ErrRateLimited until
// old failures leave the window. failures <= 0 or per <= 0 disables rate
// limiting. Default: DefaultMaxFailures per DefaultFailureWindow.
func WithRateLimit(failures int, per time.Duration) Option {
	return func(o *options) {
		if failures <= 0 || per <= 0 {
			failures, per = 0, time.Minute
		}
		o.maxFailures, o.window = failures, per
	}
}

// WithMaxTrackedAddrs caps how many remote addresses the rate limiter
// remembers (n <= 0 means DefaultMaxTrackedAddrs). When full, addresses
// without recent failures are forgotten first.
func WithMaxTrackedAddrs(n int) Option {
	return func(o *options) {
		if n <= 0 {
			n = DefaultMaxTrackedAddrs
		}
		o.maxAddrs = n
	}
}

// Authenticator checks registrations against the TOTP bucket according to
// its Mode. It is safe for concurrent use.
type Authenticator struct {
	mode    Mode
	kv      jetstream.KeyValue
	log     zerolog.Logger
	limiter *limiter
}

// NewAuthenticator returns an Authenticator in mode over kv, the bucket
// bus.Contract.TOTPBucket() (kv may be nil in mode Off). It panics if mode
// is not Off, TOFU or Enrolled (use ParseMode) or if kv is nil in another
// mode: both are programming errors.
func NewAuthenticator(mode Mode, kv jetstream.KeyValue, log zerolog.Logger, opts ...Option) *Authenticator {
	switch mode {
	case Off, TOFU, Enrolled:
	default:
		panic(fmt.Sprintf("totp: NewAuthenticator: invalid mode %q", string(mode)))
	}
	if kv == nil && mode != Off {
		panic("totp: NewAuthenticator: nil KeyValue in mode " + string(mode))
	}
	o := options{maxFailures: DefaultMaxFailures, window: DefaultFailureWindow, maxAddrs: DefaultMaxTrackedAddrs}
	for _, opt := range opts {
		opt(&o)
	}
	return &Authenticator{
		mode:    mode,
		kv:      kv,
		log:     log,
		limiter: newLimiter(o.maxFailures, o.window, o.maxAddrs),
	}
}

// Mode returns the authenticator's mode.
func (a *Authenticator) Mode() Mode { return a.mode }

// Check authenticates a registration of nodeName carrying code ("" when the
// registration has none) from remoteIP (an IP, or host:port whose port is
// ignored) at now. A nil error accepts the registration; then issuedKey,
// when not empty, is a secret issued at this name's first registration in
// TOFU mode, to be sent once in RegistrationAck.totp_key. Otherwise err
// wraps one of ErrCodeRequired, ErrInvalidCode, ErrNotEnrolled,
// ErrRateLimited or ErrUnavailable; Reason(err) is the text for the node.
//
// In Off mode every registration is accepted. In TOFU mode a name without
// a record gets a fresh secret (created atomically: when several gateways
// race, one secret wins and the others check the code against it); a name
// with a record must present a valid code. In Enrolled mode only names with
// a record are accepted, with a valid code. An accepted code advances the
// record's LastStep by compare-and-set, so it is never accepted twice,
// whichever gateway sees it.
//
// ctx bounds the bucket operations; give it a deadline well below the
// node's 10 s wait for the acknowledgement. Failures other than
// ErrUnavailable count against remoteIP's rate limit. Check logs the
// outcome with node_name and remote_ip, never the code or a secret.
func (a *Authenticator) Check(ctx context.Context, nodeName, code, remoteIP string, now time.Time) (issuedKey string, err error) {
	if a.mode == Off {
		return "", nil
	}
	ev := func(e *zerolog.Event, outcome string) *zerolog.Event {
		return e.Str("node_name", nodeName).Str("remote_ip", remoteIP).Str("outcome", outcome)
	}
	if a.limiter.blocked(remoteIP, now) {
		ev(a.log.Warn(), "rate_limited").Msg("totp authentication refused")
		return "", ErrRateLimited
	}
	issuedKey, err = a.check(ctx, nodeName, strings.TrimSpace(code), now)
	switch {
	case err == nil && issuedKey != "":
		ev(a.log.Info(), "issued").Msg("totp key issued on first use")
	case err == nil:
		ev(a.log.Debug(), "accepted").Msg("totp code accepted")
	case errors.Is(err, ErrUnavailable):
		ev(a.log.Error(), "unavailable").Err(err).Msg("totp authentication unavailable")
	default:
		a.limiter.fail(remoteIP, now)
		ev(a.log.Warn(), outcome(err)).Msg("totp authentication refused")
	}
	return issuedKey, err
}

func outcome(err error) string {
	switch {
	case errors.Is(err, ErrCodeRequired):
		return "code_required"
	case errors.Is(err, ErrInvalidCode):
		return "invalid_code"
	case errors.Is(err, ErrNotEnrolled):
		return "not_enrolled"
	}
	return "refused"
}

func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

func (a *Authenticator) check(ctx context.Context, nodeName, code string, now time.Time) (string, error) {
	key := bus.TOTPKey(nodeName)
	for range maxCASAttempts {
		entry, err := a.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if a.mode != TOFU {
				return "", ErrNotEnrolled
			}
			secret, err := a.create(ctx, nodeName, key, now)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another gateway issued first: check against its secret
			}
			if err != nil {
				return "", unavailable(err)
			}
			return secret, nil
		}
		if err != nil {
			return "", unavailable(err)
		}
		var rec bus.TOTPRecord
		if err := json.Unmarshal(entry.Value(), &rec); err != nil {
			return "", fmt.Errorf("%w: record %q: %w", ErrUnavailable, key, err)
		}
		if _, err := decodeSecret(rec.Secret); err != nil {
			return "", fmt.Errorf("%w: record %q: %w", ErrUnavailable, key, err)
		}
		if code == "" {
			return "", ErrCodeRequired
		}
		s, ok := Verify(rec.Secret, code, now, rec.LastStep)
		if !ok {
			return "", ErrInvalidCode
		}
		rec.LastStep = s
		b, err := json.Marshal(rec)
		if err != nil {
			return "", unavailable(err)
		}
		_, err = a.kv.Update(ctx, key, b, entry.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // changed meanwhile (maybe this very code elsewhere): re-verify
		}
		if err != nil {
			return "", unavailable(err)
		}
		return "", nil
	}
	return "", fmt.Errorf("%w: record %q changed %d times during the check", ErrUnavailable, key, maxCASAttempts)
}

// create stores a fresh TOFU secret for nodeName unless the key exists
// (jetstream.ErrKeyExists).
func (a *Authenticator) create(ctx context.Context, nodeName, key string, now time.Time) (string, error) {
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(bus.TOTPRecord{
		NodeName:  nodeName,
		Secret:    secret,
		Source:    bus.TOTPTOFU,
		CreatedAt: now.UTC(),
	})
	if err != nil {
		return "", err
	}
	if _, err := a.kv.Create(ctx, key, b); err != nil {
		return "", err
	}
	return secret, nil
}
