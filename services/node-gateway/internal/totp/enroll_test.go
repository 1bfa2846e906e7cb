package totp_test

import (
	"encoding/base32"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/nats-io/nats.go/jetstream"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "totp-enroll.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnroll(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	rec, err := totp.Enroll(ctx, kv, "edge-1", base)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Secret) != 32 || rec.Source != bus.TOTPEnrolled || rec.NodeName != "edge-1" || !rec.CreatedAt.Equal(base) {
		t.Fatalf("Enroll returned %+v", rec)
	}
	if got := record(t, kv, "edge-1"); got != rec {
		t.Fatalf("stored %+v, want %+v", got, rec)
	}
	if _, err := totp.Enroll(ctx, kv, "edge-1", base); !errors.Is(err, totp.ErrAlreadyEnrolled) {
		t.Fatalf("second Enroll = %v, want ErrAlreadyEnrolled", err)
	}
	if got := record(t, kv, "edge-1").Secret; got != rec.Secret {
		t.Fatal("second Enroll overwrote the secret")
	}
	if _, err := totp.Enroll(ctx, kv, "", base); err == nil {
		t.Fatal("Enroll accepted an empty node name")
	}
}

func TestLoadFile(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	enc := base32.StdEncoding
	s1 := enc.WithPadding(base32.NoPadding).EncodeToString([]byte("0123456789abcdefghij"))
	s2 := enc.EncodeToString([]byte("sixteen-byte-key")) // padded
	s3 := enc.WithPadding(base32.NoPadding).EncodeToString([]byte("another twenty bytes"))
	path := writeFile(t, "# HoneyBee TOTP enrollment\n"+
		"\n"+
		"edge-1 "+s1+"\n"+
		"   # indented comment\n"+
		"  edge node  7\t"+strings.ToLower(s2)+"  \r\n"+
		"pot.host *> nœud "+s3+"\n")

	n, err := totp.LoadFile(ctx, kv, path, base)
	if err != nil || n != 3 {
		t.Fatalf("LoadFile = %d, %v; want 3, nil", n, err)
	}
	tests := []struct {
		give string // node name
		want string // stored secret
	}{
		{give: "edge-1", want: s1},
		{give: "edge node  7", want: strings.TrimRight(s2, "=")},
		{give: "pot.host *> nœud", want: s3},
	}
	a := totp.NewAuthenticator(totp.Enrolled, kv, testLog(t))
	for _, tt := range tests {
		rec := record(t, kv, tt.give)
		if rec.NodeName != tt.give || rec.Secret != tt.want || rec.Source != bus.TOTPEnrolled {
			t.Errorf("record %q = %+v, want secret %s, source enrolled", tt.give, rec, tt.want)
		}
		if _, err := a.Check(ctx, tt.give, mustCode(t, tt.want, base), "10.0.0.1", base); err != nil {
			t.Errorf("Check(%q) with a valid code = %v", tt.give, err)
		}
	}
	if keys, err := kv.Keys(ctx); err != nil || len(keys) != 3 {
		t.Errorf("bucket keys = %v, %v; want 3", keys, err)
	}
}

func TestLoadFileReloadKeepsReplayProtection(t *testing.T) {
	kv := newKV(t)
	ctx := testCtx(t)
	secret, _ := totp.NewSecret()
	path := writeFile(t, "edge-1 "+secret+"\n")
	if _, err := totp.LoadFile(ctx, kv, path, base); err != nil {
		t.Fatal(err)
	}
	a := totp.NewAuthenticator(totp.Enrolled, kv, testLog(t), totp.WithRateLimit(0, 0))
	code := mustCode(t, secret, base)
	if _, err := a.Check(ctx, "edge-1", code, "10.0.0.1", base); err != nil {
		t.Fatal(err)
	}
	// Reloading the same file (a restart, another gateway) must not reopen the code.
	if n, err := totp.LoadFile(ctx, kv, path, base.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("reload = %d, %v", n, err)
	}
	if _, err := a.Check(ctx, "edge-1", code, "10.0.0.1", base); !errors.Is(err, totp.ErrInvalidCode) {
		t.Fatalf("replay after reload = %v, want ErrInvalidCode", err)
	}
	// A new secret replaces the old one.
	fresh, _ := totp.NewSecret()
	if _, err := totp.LoadFile(ctx, kv, writeFile(t, "edge-1 "+fresh+"\n"), base); err != nil {
		t.Fatal(err)
	}
	if rec := record(t, kv, "edge-1"); rec.Secret != fresh || rec.LastStep != 0 {
		t.Fatalf("after loading a new secret: %+v", rec)
	}
}

func TestLoadFileRejectsBadLines(t *testing.T) {
	good, _ := totp.NewSecret()
	short := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("ten bytes!"))
	tests := []struct {
		name     string
		give     string
		wantLine string
	}{
		{name: "name without secret", give: "# c\nedge-1 " + good + "\nlonely-node\n", wantLine: ":3:"},
		{name: "secret not base32", give: "edge-1 not-base-32!!\n", wantLine: ":1:"},
		{name: "secret too short", give: "\n\nedge-1 " + short + "\n", wantLine: ":3:"},
		{name: "duplicate name", give: "edge-1 " + good + "\n#\nedge-1 " + good + "\n", wantLine: ":3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := newKV(t)
			n, err := totp.LoadFile(testCtx(t), kv, writeFile(t, tt.give), base)
			if !errors.Is(err, totp.ErrInvalidFile) || n != 0 {
				t.Fatalf("LoadFile = %d, %v; want 0, ErrInvalidFile", n, err)
			}
			if !strings.Contains(err.Error(), tt.wantLine) {
				t.Errorf("error %q does not name line %s", err, tt.wantLine)
			}
			for _, secret := range []string{good, short, "not-base-32!!"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the secret", err)
				}
			}
			if _, err := kv.Keys(testCtx(t)); !errors.Is(err, jetstream.ErrNoKeysFound) {
				t.Errorf("a bad file wrote records: %v", err)
			}
		})
	}
	t.Run("all bad lines reported", func(t *testing.T) {
		_, err := totp.LoadFile(testCtx(t), newKV(t), writeFile(t, "a\nb "+good+"\nc\n"), base)
		if msg := err.Error(); !strings.Contains(msg, ":1:") || !strings.Contains(msg, ":3:") || strings.Contains(msg, ":2:") {
			t.Errorf("error %q, want lines 1 and 3 only", msg)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := totp.LoadFile(testCtx(t), newKV(t), filepath.Join(t.TempDir(), "nope"), base)
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadFile = %v, want os.ErrNotExist", err)
		}
	})
}
