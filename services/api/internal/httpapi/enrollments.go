package httpapi

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/honeybee/core/proto/bus"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	maxNodeNameLen = 256
	totpIssuer     = "HoneyBee"
)

// Enrollment is an enrolled node name as GET lists it: never the secret.
type Enrollment struct {
	NodeName  string     `json:"node_name"`
	Source    string     `json:"source"`
	CreatedAt *time.Time `json:"created_at"`
}

// NewEnrollment is the answer to POST /api/v1/enrollments: the only time
// the secret is shown.
type NewEnrollment struct {
	Enrollment
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

func validNodeName(s string) bool {
	if s == "" || len(s) > maxNodeNameLen || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// newTOTPSecret returns 20 random bytes in base32 without padding (32
// characters), as RFC 6238 authenticators and the deployed node expect.
func newTOTPSecret() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

func otpauthURI(name, secret string) string {
	label := url.PathEscape(totpIssuer + ":" + name)
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", totpIssuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	return "otpauth://totp/" + label + "?" + v.Encode()
}

func (h *handler) createEnrollment(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	var in struct {
		NodeName *string `json:"node_name"`
	}
	if err := decodeJSON(c, h.MaxBodyBytes, &in); err != nil {
		return err
	}
	if in.NodeName == nil {
		return badRequest(CodeInvalidBody, "node_name is required")
	}
	if !validNodeName(*in.NodeName) {
		return badRequest(CodeInvalidNodeName, "node_name must be 1 to %d bytes of UTF-8 without control characters or surrounding spaces", maxNodeNameLen)
	}
	rec := bus.TOTPRecord{NodeName: *in.NodeName, Secret: newTOTPSecret(), Source: bus.TOTPEnrolled, CreatedAt: time.Now().UTC()}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := h.natsCtx(c)
	defer cancel()
	_, err = b.TOTP.Create(ctx, bus.TOTPKey(rec.NodeName), data)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return apiErr(http.StatusConflict, CodeEnrollmentExists, "node name %q already has a TOTP secret; delete it first to enroll again", clip(rec.NodeName))
	case err != nil:
		return unavailable("storing the enrollment", err)
	}
	h.log.Info().Str("node_name", rec.NodeName).Msg("node name enrolled for TOTP")
	return c.JSON(http.StatusCreated, NewEnrollment{
		Enrollment: Enrollment{NodeName: rec.NodeName, Source: rec.Source, CreatedAt: optTime(rec.CreatedAt)},
		Secret:     rec.Secret, OTPAuthURI: otpauthURI(rec.NodeName, rec.Secret),
	})
}

func (h *handler) listEnrollments(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	ctx, cancel := h.natsCtx(c)
	defer cancel()
	lister, err := b.TOTP.ListKeys(ctx)
	if err != nil {
		return unavailable("listing enrollments", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	out := struct {
		Enrollments []Enrollment `json:"enrollments"`
	}{Enrollments: make([]Enrollment, 0, len(keys))}
	for _, k := range keys {
		e, err := b.TOTP.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // revoked meanwhile
		} else if err != nil {
			return unavailable("reading an enrollment", err)
		}
		var rec bus.TOTPRecord
		if json.Unmarshal(e.Value(), &rec) != nil {
			continue
		}
		out.Enrollments = append(out.Enrollments, Enrollment{NodeName: rec.NodeName, Source: rec.Source, CreatedAt: optTime(rec.CreatedAt)})
	}
	slices.SortFunc(out.Enrollments, func(a, b Enrollment) int { return strings.Compare(a.NodeName, b.NodeName) })
	return c.JSON(http.StatusOK, out)
}

func (h *handler) deleteEnrollment(c echo.Context) error {
	b, err := h.online()
	if err != nil {
		return err
	}
	name := c.Param("node_name")
	if c.Request().URL.RawPath != "" { // echo hands escaped path params over as sent
		if unescaped, err := url.PathUnescape(name); err == nil {
			name = unescaped
		}
	}
	if !validNodeName(name) {
		return badRequest(CodeInvalidNodeName, "node_name must be 1 to %d bytes of UTF-8 without control characters or surrounding spaces", maxNodeNameLen)
	}
	ctx, cancel := h.natsCtx(c)
	defer cancel()
	key := bus.TOTPKey(name)
	if _, err := b.TOTP.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return apiErr(http.StatusNotFound, CodeEnrollmentNotFound, "node name %q is not enrolled", clip(name))
	} else if err != nil {
		return unavailable("reading the enrollment", err)
	}
	// Purge, not Delete: no revision of the secret stays in the bucket.
	if err := b.TOTP.Purge(ctx, key); err != nil {
		return unavailable("revoking the enrollment", err)
	}
	h.log.Info().Str("node_name", name).Msg("TOTP enrollment revoked")
	return c.JSON(http.StatusOK, map[string]any{"node_name": name, "revoked": true})
}
