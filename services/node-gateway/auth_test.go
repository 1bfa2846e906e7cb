package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/honeybee/core/proto"
	"github.com/honeybee/core/proto/bus"
	"github.com/honeybee/core/services/node-gateway/internal/totp"
	"github.com/rs/zerolog"
)

// registerWith sends a registration carrying code and returns the ack.
func registerWith(t *testing.T, tg *testGateway, id uint64, name, code string) (accepted bool, message, key string) {
	t.Helper()
	n := dialNode(t, tg.Addr().String())
	reg := registration(id, name)
	reg.TOTPCode = code
	n.send(reg)
	ack := n.ack()
	return ack.Accepted, ack.Message, ack.TOTPKey
}

func code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.Code(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTPTOFU: the first registration of a name receives a secret; every
// later one needs a valid, unused code from it.
func TestTOTPTOFU(t *testing.T) {
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.TOTPMode = "tofu" })

	ok, _, key := registerWith(t, tg, 1, "tofu-node", "")
	if !ok || len(key) != 32 {
		t.Fatalf("first registration: accepted %v, key %q; want accepted with a 32-character key", ok, key)
	}
	if ok, msg, _ := registerWith(t, tg, 2, "tofu-node", ""); ok || msg != totp.ErrCodeRequired.Error() {
		t.Errorf("no code: accepted %v %q, want refused %q", ok, msg, totp.ErrCodeRequired)
	}
	c := code(t, key)
	ok, _, again := registerWith(t, tg, 3, "tofu-node", c)
	if !ok || again != "" {
		t.Errorf("valid code: accepted %v, key %q; want accepted without a new key", ok, again)
	}
	if ok, msg, _ := registerWith(t, tg, 4, "tofu-node", c); ok || msg != totp.ErrInvalidCode.Error() {
		t.Errorf("replayed code: accepted %v %q, want refused %q", ok, msg, totp.ErrInvalidCode)
	}
	if got := tg.metric(t, `honeybee_gateway_registrations_total{outcome="refused_auth"}`); got != 2 {
		t.Errorf("auth refusals = %v, want 2", got)
	}
	// Failed attempts from one address are rate-limited.
	limited := false
	for i := range 10 {
		_, msg, _ := registerWith(t, tg, uint64(10+i), "tofu-node", "000000")
		if msg == totp.ErrRateLimited.Error() {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("ten wrong codes in a row were never rate-limited")
	}
}

// TestTOTPEnrolled: only names from the enrollment file are accepted, and
// only with a valid code. A malformed file stops Run with an error naming
// the setting.
func TestTOTPEnrolled(t *testing.T) {
	secret, err := totp.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "enroll.txt")
	if err := os.WriteFile(file, []byte("# node secret\nsensor-01 "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.TOTPMode = "enrolled"; c.TOTPEnrollFile = file })

	if ok, msg, _ := registerWith(t, tg, 1, "stranger", "123456"); ok || msg != totp.ErrNotEnrolled.Error() {
		t.Errorf("unknown name: accepted %v %q, want refused %q", ok, msg, totp.ErrNotEnrolled)
	}
	if ok, msg, _ := registerWith(t, tg, 2, "sensor-01", ""); ok || msg != totp.ErrCodeRequired.Error() {
		t.Errorf("no code: accepted %v %q", ok, msg)
	}
	if ok, msg, key := registerWith(t, tg, 3, "sensor-01", code(t, secret)); !ok || key != "" {
		t.Errorf("valid code: accepted %v %q key %q", ok, msg, key)
	}

	t.Run("malformed enrollment file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.txt")
		if err := os.WriteFile(bad, []byte("only-a-name\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(ns.ClientURL())
		cfg.TOTPMode, cfg.TOTPEnrollFile, cfg.GatewayID = "enrolled", bad, "gw-bad-file"
		g, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = g.Run(ctx)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "HONEYBEE_TOTP_ENROLL_FILE") {
			t.Errorf("Run = %v, want an invalid configuration naming HONEYBEE_TOTP_ENROLL_FILE", err)
		}
	})
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
	otherCAClient             tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	ca, caKey := newCA(t, "HoneyBee test CA")
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)

	serverDER, serverKey := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "gateway"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.certFile = writePEM(t, dir, "server.pem", "CERTIFICATE", serverDER)
	keyDER, _ := x509.MarshalECPrivateKey(serverKey)
	p.keyFile = writePEM(t, dir, "server-key.pem", "EC PRIVATE KEY", keyDER)

	clientDER, clientKey := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "node-01"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}

	other, otherKey := newCA(t, "some other CA")
	otherDER, otherClientKey := issue(t, other, otherKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "intruder"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.otherCAClient = tls.Certificate{Certificate: [][]byte{otherDER}, PrivateKey: otherClientKey}
	return p
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTLS: with a certificate and key the node port speaks TLS 1.3 only.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = pki.certFile, pki.keyFile })

	n, err := dialTLSNode(t, tg.Addr().String(), &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	n.register(1, "tls-node")
	if v := n.conn.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %x, want TLS 1.3", v)
	}
	if _, err := dialTLSNode(t, tg.Addr().String(), &tls.Config{RootCAs: pki.pool, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was accepted")
	}
	// Plain TCP gets nowhere: the registration is not TLS.
	plain := dialNode(t, tg.Addr().String())
	_ = plain.raw([]byte(`{"version":2,"message":{"NodeRegistration":{"node_id":2,"node_name":"plain","address":"a","port":1,"node_type":"Full"}}}` + "\n"))
	if !plain.closed() {
		t.Error("plain TCP connection left open")
	}
	if _, ok := tg.nodeRecord(t, 2); ok {
		t.Error("a plain TCP node registered on the TLS port")
	}
}

// TestMutualTLS: with a client CA, a node must present a certificate that
// CA signed; one without a certificate, or with another CA's, is refused.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	ns := startNATS(t)
	tg := startGateway(t, ns, func(c *Config) {
		c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = pki.certFile, pki.keyFile, pki.caFile
	})
	tests := []struct {
		name   string
		give   []tls.Certificate
		wantOK bool
	}{
		{"certificate from the client CA", []tls.Certificate{pki.client}, true},
		{"no certificate", nil, false},
		{"certificate from another CA", []tls.Certificate{pki.otherCAClient}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uint64(i + 1)
			n, err := dialTLSNode(t, tg.Addr().String(), &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", Certificates: tt.give})
			if err != nil {
				if tt.wantOK {
					t.Fatal(err)
				}
				return
			}
			// With TLS 1.3 the server checks the client certificate after
			// the client's handshake returns: the failure shows on use.
			n.send(registration(id, "mtls"))
			env, err := n.read()
			if tt.wantOK {
				if err != nil {
					t.Fatalf("read ack: %v", err)
				}
				if ack, ok := env.Message.(*proto.RegistrationAck); !ok || !ack.Accepted {
					t.Fatalf("want an accepting ack, got %+v", env.Message)
				}
				tg.waitNode(t, id, "connected", func(r bus.NodeRecord) bool { return r.Connected })
				return
			}
			if err == nil {
				t.Errorf("a node without a valid certificate got %s", env.Message.Variant())
			}
			if _, ok := tg.nodeRecord(t, id); ok {
				t.Error("a node without a valid certificate registered")
			}
		})
	}
	if got := tg.metric(t, `honeybee_gateway_registrations_total{outcome="tls_failed"}`); got != 2 {
		t.Errorf("TLS failures counted: %v, want 2", got)
	}
}
