package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Error codes of the JSON error body. The names follow the reference
// core's where one fits.
const (
	CodeBadRequest         = "BAD_REQUEST"
	CodeInvalidJSON        = "INVALID_JSON"
	CodeInvalidBody        = "INVALID_BODY"
	CodeInvalidNodeID      = "INVALID_NODE_ID"
	CodeInvalidFilter      = "INVALID_FILTER"
	CodeInvalidParameter   = "INVALID_PARAMETER"
	CodeInvalidCursor      = "INVALID_CURSOR"
	CodeInvalidCommand     = "INVALID_COMMAND"
	CodeInvalidCommandID   = "INVALID_COMMAND_ID"
	CodeInvalidNodeName    = "INVALID_NODE_NAME"
	CodeUnauthorized       = "UNAUTHORIZED"
	CodeForbidden          = "FORBIDDEN"
	CodeNotFound           = "NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeNodeNotFound       = "NODE_NOT_FOUND"
	CodeNodeNotConnected   = "NODE_NOT_CONNECTED"
	CodeCommandNotFound    = "COMMAND_NOT_FOUND"
	CodeEnrollmentNotFound = "ENROLLMENT_NOT_FOUND"
	CodeEnrollmentExists   = "ENROLLMENT_EXISTS"
	CodeBodyTooLarge       = "BODY_TOO_LARGE"
	CodeUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"
	CodeRateLimited        = "RATE_LIMITED"
	CodeInternal           = "INTERNAL"
	CodeGatewayError       = "GATEWAY_ERROR"
	CodeNotReady           = "NOT_READY"
	CodeUnavailable        = "UNAVAILABLE"
	CodeGatewayUnavailable = "GATEWAY_UNAVAILABLE"
	CodeCommandTimeout     = "COMMAND_TIMEOUT"
)

// Error is an API error: an HTTP status and the JSON error body.
type Error struct {
	Status  int
	Code    string
	Message string
	// Err is the cause, logged for 5xx answers, never sent.
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }
func (e *Error) Unwrap() error { return e.Err }

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(code, format string, args ...any) *Error {
	return apiErr(http.StatusBadRequest, code, format, args...)
}

// unavailable wraps a failure to reach NATS: the api's dependency is
// down, which is a 503, not a bug.
func unavailable(what string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: what + ": message bus unavailable", Err: err}
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object inside ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorHandler is the one place errors become HTTP answers.
func (h *handler) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = fromEchoError(he)
	default:
		ae = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	switch {
	case ae.Status == http.StatusInternalServerError:
		h.log.Error().Err(ae).Str("request_id", requestID(c)).Str("route", c.Path()).Msg("request failed")
	case ae.Status >= 500 && ae.Err != nil:
		h.log.Warn().Err(ae).Str("request_id", requestID(c)).Str("route", c.Path()).Msg("request failed")
	}
	body := ErrorBody{Error: ErrorDetail{Code: ae.Code, Message: ae.Message}}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(ae.Status)
	} else {
		werr = c.JSON(ae.Status, body)
	}
	if werr != nil {
		h.log.Debug().Err(werr).Msg("writing error response")
	}
}

func fromEchoError(he *echo.HTTPError) *Error {
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok && s != "" {
		msg = s
	}
	code := CodeBadRequest
	switch he.Code {
	case http.StatusNotFound:
		code, msg = CodeNotFound, "no such route"
	case http.StatusMethodNotAllowed:
		code = CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		code = CodeBodyTooLarge
	case http.StatusUnauthorized:
		code = CodeUnauthorized
	case http.StatusForbidden:
		code = CodeForbidden
	case http.StatusUnsupportedMediaType:
		code = CodeUnsupportedMedia
	case http.StatusTooManyRequests:
		code = CodeRateLimited
	case http.StatusServiceUnavailable:
		code = CodeUnavailable
	default:
		if he.Code >= 500 {
			code, msg = CodeInternal, "internal error"
		}
	}
	return &Error{Status: he.Code, Code: code, Message: msg, Err: he.Internal}
}
