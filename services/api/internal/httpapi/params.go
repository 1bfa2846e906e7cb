package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/honeybee/core/proto"
	"github.com/labstack/echo/v4"
)

// Page sizes.
const (
	defaultPage      = 1000
	maxPage          = 10000
	defaultEventPage = 100
	maxEventPage     = 1000
	maxFilterLen     = 256
)

func nodeIDParam(c echo.Context) (uint64, error) {
	raw := c.Param("node_id")
	id, err := proto.ParseNodeID(raw)
	if err != nil {
		return 0, badRequest(CodeInvalidNodeID, "node_id %q is not an unsigned 64-bit decimal number", clip(raw))
	}
	return id, nil
}

// clip shortens client input echoed in error messages.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func limitParam(c echo.Context, def, maxN int) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxN {
		return 0, badRequest(CodeInvalidParameter, "limit must be an integer from 1 to %d", maxN)
	}
	return n, nil
}

// filterParam returns a string filter (nil when absent), at most
// maxFilterLen bytes of valid UTF-8.
func filterParam(c echo.Context, name string) (*string, error) {
	if !c.QueryParams().Has(name) {
		return nil, nil
	}
	v := c.QueryParam(name)
	if v == "" || len(v) > maxFilterLen || !utf8.ValidString(v) {
		return nil, badRequest(CodeInvalidFilter, "%s must be 1 to %d bytes of UTF-8", name, maxFilterLen)
	}
	return &v, nil
}

func boolParam(c echo.Context, name string) (*bool, error) {
	if !c.QueryParams().Has(name) {
		return nil, nil
	}
	v, err := strconv.ParseBool(c.QueryParam(name))
	if err != nil {
		return nil, badRequest(CodeInvalidFilter, "%s must be true or false", name)
	}
	return &v, nil
}

func nodeIDFilter(c echo.Context) (*uint64, error) {
	if !c.QueryParams().Has("node_id") {
		return nil, nil
	}
	raw := c.QueryParam("node_id")
	id, err := proto.ParseNodeID(raw)
	if err != nil {
		return nil, badRequest(CodeInvalidNodeID, "node_id %q is not an unsigned 64-bit decimal number", clip(raw))
	}
	return &id, nil
}

func timeParam(c echo.Context, name string) (time.Time, error) {
	raw := c.QueryParam(name)
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, badRequest(CodeInvalidFilter, "%s must be an RFC 3339 time such as 2024-01-15T10:30:00Z", name)
	}
	return t, nil
}

// Cursors are opaque to clients: base64url of "<kind>:<position>".
func encodeCursor(kind, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + pos))
}

func decodeCursor(c echo.Context, kind string) (pos string, ok bool, err error) {
	raw := c.QueryParam("cursor")
	if raw == "" {
		return "", false, nil
	}
	b, derr := base64.RawURLEncoding.DecodeString(raw)
	k, p, found := strings.Cut(string(b), ":")
	if derr != nil || !found || k != kind || p == "" {
		return "", false, badRequest(CodeInvalidCursor, "cursor is not one this endpoint returned")
	}
	return p, true, nil
}

func cursorUint(p string) (uint64, error) {
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return 0, badRequest(CodeInvalidCursor, "cursor is not one this endpoint returned")
	}
	return n, nil
}

// readBody reads the whole request body within the size limit.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if errBodyTooLarge(err) {
			return nil, bodyTooLarge(limit)
		}
		return nil, badRequest(CodeBadRequest, "reading the request body failed")
	}
	return b, nil
}

// decodeJSON reads a JSON object body into v: malformed JSON, a wrong
// type or trailing data is a 400 with the reason.
func decodeJSON(c echo.Context, limit int64, v any) error {
	b, err := readBody(c, limit)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return badRequest(CodeInvalidJSON, "request body is empty; send a JSON object")
	}
	if !json.Valid(b) {
		return badRequest(CodeInvalidJSON, "request body is not valid JSON")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				return badRequest(CodeInvalidBody, "request body must be a JSON object")
			}
			return badRequest(CodeInvalidBody, "%s must be a %s, not %s", field, te.Type.Kind(), te.Value)
		}
		return badRequest(CodeInvalidBody, "request body does not match the expected shape")
	}
	return nil
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
