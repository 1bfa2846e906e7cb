// Package integration holds end-to-end tests across the services: an
// embedded NATS server, the real services in process, and nodes and
// clients over real sockets.
package integration

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
