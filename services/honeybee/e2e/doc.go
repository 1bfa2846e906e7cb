// Package e2e holds the end-to-end tests of HoneyBee Core against its
// containers: each test starts its own docker compose project from the
// repository's compose.yaml (images built by `make images`), drives
// simulated nodes over TCP and clients over HTTP and WebSocket through the
// published ports, injects a fault (a killed ws-proxy replica, a NATS
// restart, a killed gateway) and reports what it measured.
//
// The tests skip, saying why, when no Docker engine, compose tool or
// image is available; with HONEYBEE_E2E=require (set by `make test` when
// Docker is present) those are failures instead. HONEYBEE_E2E=off skips
// them.
package e2e
