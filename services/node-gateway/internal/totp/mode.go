package totp

import (
	"errors"
	"fmt"
	"strings"
)

// Mode is how registrations are authenticated.
type Mode string

const (
	// Off accepts every registration without a code.
	Off Mode = "off"
	// TOFU (trust on first use) issues a fresh secret at a node name's
	// first registration and requires a valid code from every later one.
	TOFU Mode = "tofu"
	// Enrolled accepts only node names enrolled beforehand, with a valid
	// code.
	Enrolled Mode = "enrolled"
)

// ErrInvalidMode is returned by ParseMode for an unknown mode.
var ErrInvalidMode = errors.New("invalid totp mode")

// ParseMode parses "off", "tofu" or "enrolled" (any case, surrounding
// blanks ignored).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case Off, TOFU, Enrolled:
		return m, nil
	}
	return "", fmt.Errorf("%w %q: want off, tofu or enrolled", ErrInvalidMode, s)
}

// String returns the mode's name.
func (m Mode) String() string { return string(m) }
