// Package totp authenticates node registrations with RFC 6238 time-based
// one-time passwords (HMAC-SHA-1, 6 digits, 30-second steps, one step of
// skew either side) and keeps each node name's secret in the JetStream
// key-value bucket bus.Contract.TOTPBucket(), as a bus.TOTPRecord under
// bus.TOTPKey(nodeName).
//
// The primitives (NewSecret, Code, Verify, URI, ParseMode) are pure
// functions, safe for concurrent use. An Authenticator is safe for
// concurrent use by many connections; several gateways may share one
// bucket: a name's first TOFU secret is created with kv.Create and every
// accepted code advances the record's LastStep with a compare-and-set
// (kv.Update with the read revision), so all gateways agree on one secret
// and a code is accepted at most once across all of them. Rate limiting of
// failed attempts is per Authenticator (per gateway process), in bounded
// memory, without background goroutines.
//
// Secrets and codes are never logged and never appear in returned errors.
package totp
