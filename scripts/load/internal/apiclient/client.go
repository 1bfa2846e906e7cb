// Package apiclient is the load tool's small client of the HoneyBee api
// (REST on 9002): sending a command to a node, reading a command's
// progress, and enrolling node names for TOTP. A Client is safe for
// concurrent use.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// ErrStatus is returned (wrapped, with the body) for an unexpected HTTP status.
var ErrStatus = errors.New("unexpected HTTP status")

// Client talks to one api base URL, e.g. http://127.0.0.1:9002.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client; token may be empty (an api without tokens serves
// loopback only).
func New(base, token string) *Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	return &Client{base: base, token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body any, out any, want ...int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if !slices.Contains(want, resp.StatusCode) {
		return fmt.Errorf("%s %s: %w %d: %s", method, path, ErrStatus, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Accepted is the api's 202 answer to a command.
type Accepted struct {
	CommandID string `json:"command_id"`
	Delivered bool   `json:"delivered"`
}

// SendCommand posts cmd (protocol form, e.g. {"DeployPot":"cowrie-1"}) to
// a node and returns the api's 202 answer.
func (c *Client) SendCommand(ctx context.Context, nodeID uint64, cmd json.RawMessage) (Accepted, error) {
	var a Accepted
	err := c.do(ctx, http.MethodPost, "/api/v1/nodes/"+strconv.FormatUint(nodeID, 10)+"/commands", cmd, &a, http.StatusAccepted)
	return a, err
}

// CommandStatus is the part of GET /api/v1/commands/{id} the load tool reads.
type CommandStatus struct {
	CommandID string `json:"command_id"`
	State     string `json:"state"`
}

// Command returns a command's progress.
func (c *Client) Command(ctx context.Context, id string) (CommandStatus, error) {
	var s CommandStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/commands/"+url.PathEscape(id), nil, &s, http.StatusOK)
	return s, err
}

// Enroll enrolls a node name for TOTP and returns its secret.
func (c *Client) Enroll(ctx context.Context, nodeName string) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/enrollments", map[string]string{"node_name": nodeName}, &out, http.StatusCreated, http.StatusOK); err != nil {
		return "", err
	}
	if out.Secret == "" {
		return "", fmt.Errorf("enroll %q: answer carries no secret", nodeName)
	}
	return out.Secret, nil
}

// Get fetches path and decodes a 200 JSON answer into out (for readiness
// checks and small queries).
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out, http.StatusOK)
}
