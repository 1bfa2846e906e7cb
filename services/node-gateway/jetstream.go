package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/nats-io/nats.go/jetstream"
)

// duplicateWindow is the events stream's de-duplication window: an event
// republished within it (same Nats-Msg-Id) is stored once.
const duplicateWindow = 2 * time.Minute

type buckets struct {
	nodes, pots, commands, totp, gateways jetstream.KeyValue
}

// streamConfig is the events stream as the gateway creates it.
func (g *Gateway) streamConfig() jetstream.StreamConfig {
	dup := duplicateWindow
	if g.cfg.StreamMaxAge > 0 && g.cfg.StreamMaxAge < dup {
		dup = g.cfg.StreamMaxAge
	}
	return jetstream.StreamConfig{
		Name:        g.contract.EventsStream(),
		Description: "HoneyBee attack events, one message per event (subject " + g.contract.Events() + ")",
		Subjects:    []string{g.contract.Events()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      g.cfg.StreamMaxAge,
		MaxBytes:    g.cfg.StreamMaxBytes,
		Replicas:    g.cfg.StreamReplicas,
		Duplicates:  dup,
		AllowDirect: true,
	}
}

// bucketConfigs are the key-value buckets as the gateway creates them.
func (g *Gateway) bucketConfigs() []jetstream.KeyValueConfig {
	c, r := g.contract, g.cfg.KVReplicas
	kv := func(name, desc string, ttl time.Duration) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{Bucket: name, Description: desc, History: 1, TTL: ttl,
			Storage: jetstream.FileStorage, Replicas: r}
	}
	return []jetstream.KeyValueConfig{
		kv(c.NodesBucket(), "HoneyBee node records", 0),
		kv(c.PotsBucket(), "HoneyBee pot records", 0),
		kv(c.CommandsBucket(), "HoneyBee command records", bus.CommandTTL),
		kv(c.TOTPBucket(), "HoneyBee TOTP secrets of node names", 0),
		kv(c.GatewaysBucket(), "HoneyBee gateway heartbeats", bus.GatewayTTL),
	}
}

// ensure creates or updates the events stream and every bucket.
func (g *Gateway) ensure(ctx context.Context, js jetstream.JetStream) (buckets, error) {
	if _, err := js.CreateOrUpdateStream(ctx, g.streamConfig()); err != nil {
		return buckets{}, fmt.Errorf("events stream %s: %w", g.contract.EventsStream(), err)
	}
	var kvs []jetstream.KeyValue
	for _, cfg := range g.bucketConfigs() {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return buckets{}, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
		kvs = append(kvs, kv)
	}
	return buckets{nodes: kvs[0], pots: kvs[1], commands: kvs[2], totp: kvs[3], gateways: kvs[4]}, nil
}

// setup waits for NATS, creates the stream and buckets, and loads the TOTP
// enrollment file. It retries until ctx is done, except for a bad
// enrollment file, which is an error.
func (g *Gateway) setup(ctx context.Context, js jetstream.JetStream) (buckets, error) {
	var b buckets
	if err := retry(ctx, g.log, "create events stream and buckets", func(ctx context.Context) error {
		var err error
		b, err = g.ensure(ctx, js)
		return err
	}); err != nil {
		return buckets{}, err
	}
	g.log.Info().Str("stream", g.contract.EventsStream()).Msg("events stream and buckets ready")
	if g.cfg.TOTPEnrollFile == "" {
		return b, nil
	}
	var loaded int
	var fileErr error
	if err := retry(ctx, g.log, "load TOTP enrollment file", func(ctx context.Context) error {
		n, err := totp.LoadFile(ctx, b.totp, g.cfg.TOTPEnrollFile, time.Now())
		if err != nil && isFileError(err) {
			fileErr = err
			return nil
		}
		loaded = n
		return err
	}); err != nil {
		return buckets{}, err
	}
	if fileErr != nil {
		return buckets{}, fmt.Errorf("%w: HONEYBEE_TOTP_ENROLL_FILE (-totp-enroll-file): %w", ErrInvalidConfig, fileErr)
	}
	g.log.Info().Int("names", loaded).Str("file", g.cfg.TOTPEnrollFile).Msg("TOTP enrollment file loaded")
	return b, nil
}

// isFileError reports errors of the enrollment file itself (unreadable or
// malformed), as opposed to NATS errors worth retrying.
func isFileError(err error) bool {
	var pathErr *fs.PathError
	return errors.Is(err, totp.ErrInvalidFile) || errors.As(err, &pathErr)
}
