package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// images are the images compose.yaml runs; `make images` builds them.
var images = []string{"nats", "node-gateway", "api", "ws-proxy", "edge"}

func tag() string {
	if t := os.Getenv("HONEYBEE_TAG"); t != "" {
		return t
	}
	return "local"
}

// composeCommand finds `docker compose` or `docker-compose`;
// HONEYBEE_COMPOSE (set by the Makefile) wins.
func composeCommand() []string {
	if c := strings.Fields(os.Getenv("HONEYBEE_COMPOSE")); len(c) > 0 {
		return c
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	return nil
}

// requireDocker skips (or, with HONEYBEE_E2E=require, fails) the test when
// the containers cannot run here.
func requireDocker(t *testing.T) []string {
	t.Helper()
	mode := os.Getenv("HONEYBEE_E2E")
	if mode == "off" {
		t.Skip("HONEYBEE_E2E=off")
	}
	unavailable := func(why string) {
		t.Helper()
		if mode == "require" {
			t.Fatalf("end-to-end test cannot run: %s", why)
		}
		t.Skipf("skipping the end-to-end test: %s (`make test` builds the images when a Docker engine is present)", why)
	}
	if testing.Short() {
		t.Skip("skipping the end-to-end test in -short mode")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		unavailable(fmt.Sprintf("no Docker engine reachable (docker info: %v: %s)", err, bytes.TrimSpace(out)))
	}
	compose := composeCommand()
	if compose == nil {
		unavailable("neither `docker compose` nor `docker-compose` is installed")
	}
	for _, img := range images {
		ref := "honeybee/" + img + ":" + tag()
		if img == "nats" && os.Getenv("NATS_IMAGE") != "" {
			ref = os.Getenv("NATS_IMAGE")
		}
		if exec.Command("docker", "image", "inspect", ref).Run() != nil {
			unavailable("image " + ref + " is missing: run `make images`")
		}
	}
	return compose
}

// stack is one compose project of the whole core, on its own ports.
type stack struct {
	t       *testing.T
	name    string
	compose []string
	root    string
	env     []string
	global  []string // compose options before the command (profile, env file)
	token   string   // admin token of the api and ws-proxy

	// Host ports, bound to 127.0.0.1.
	gatewayPort, apiPort, wsPort, natsPort int
}

// repoRoot is the directory holding compose.yaml.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "compose.yaml")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("compose.yaml not found above the test directory")
		}
		dir = parent
	}
}

// freePort returns a TCP port free on 127.0.0.1 right now. Fixed ports
// (rather than ephemeral ones chosen by Docker) keep their mapping when a
// container restarts, which the fault tests rely on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newStack prepares (but does not start) a compose project named after
// the test; it is torn down, volumes included, when the test ends, after
// its logs are copied to the test log if the test failed.
func newStack(t *testing.T, short string) *stack {
	t.Helper()
	compose := requireDocker(t)
	s := &stack{
		t:           t,
		name:        fmt.Sprintf("hbe2e%s%d", short, os.Getpid()),
		compose:     compose,
		root:        repoRoot(t),
		token:       randomHex(16),
		gatewayPort: freePort(t),
		apiPort:     freePort(t),
		wsPort:      freePort(t),
		natsPort:    freePort(t),
	}
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("admin:"+s.token+"\nread:"+randomHex(16)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	natsImage := os.Getenv("NATS_IMAGE")
	if natsImage == "" {
		natsImage = "honeybee/nats:" + tag()
	}
	s.env = append(os.Environ(),
		"HONEYBEE_TAG="+tag(),
		"NATS_IMAGE="+natsImage,
		"HONEYBEE_BIND=127.0.0.1",
		"HONEYBEE_ADMIN_BIND=127.0.0.1",
		"HONEYBEE_TOKENS_FILE_HOST="+tokens,
		fmt.Sprintf("HONEYBEE_GATEWAY_PORT=%d", s.gatewayPort),
		fmt.Sprintf("HONEYBEE_API_PORT=%d", s.apiPort),
		fmt.Sprintf("HONEYBEE_WS_PORT=%d", s.wsPort),
		fmt.Sprintf("NATS_PORT=%d", s.natsPort),
		// Admin ports: Docker picks free ones; the tests do not use them.
		"NATS_MONITOR_PORT=", "HONEYBEE_GATEWAY_ADMIN_PORT=", "HONEYBEE_EDGE_ADMIN_PORT=",
	)
	t.Cleanup(s.down)
	return s
}

// run runs one compose command and returns its combined output.
func (s *stack) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append(append([]string{}, s.compose[1:]...), "-p", s.name, "-f", filepath.Join(s.root, "compose.yaml"))
	full = append(append(full, s.global...), args...)
	cmd := exec.CommandContext(ctx, s.compose[0], full...)
	cmd.Dir = s.root
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", strings.Join(s.compose, " "), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *stack) must(timeout time.Duration, args ...string) string {
	s.t.Helper()
	out, err := s.run(timeout, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// up starts the project with n ws-proxy replicas and waits until every
// container reports healthy and the api and edge answer.
func (s *stack) up(wsReplicas int) time.Duration {
	s.t.Helper()
	start := time.Now()
	s.must(4*time.Minute, "up", "-d", "--scale", fmt.Sprintf("ws-proxy=%d", wsReplicas))
	s.waitHealthy(2 * time.Minute)
	eventually(s.t, 30*time.Second, "api ready on the host port", func() bool {
		return s.status("http://"+s.apiAddr()+"/ready") == http.StatusOK
	})
	eventually(s.t, 30*time.Second, "ws-proxy ready through the edge", func() bool {
		return s.status("http://"+s.wsAddr()+"/ready") == http.StatusOK
	})
	d := time.Since(start)
	s.t.Logf("stack %s up with %d ws-proxy replica(s) in %v", s.name, wsReplicas, d.Round(100*time.Millisecond))
	return d
}

// containers returns the ids of a service's containers (all replicas).
func (s *stack) containers(service string) []string {
	s.t.Helper()
	args := []string{"ps", "-q"}
	if service != "" {
		args = append(args, service)
	}
	return strings.Fields(s.must(time.Minute, args...))
}

// health returns each container's health status.
func health(ids ...string) (map[string]string, error) {
	args := append([]string{"inspect", "-f", "{{.Id}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"}, ids...)
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("docker inspect: %v: %s", err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m, nil
}

// waitHealthy waits until every container of the project is healthy.
func (s *stack) waitHealthy(timeout time.Duration) {
	s.t.Helper()
	ids := s.containers("")
	if len(ids) == 0 {
		s.t.Fatal("the project has no containers")
	}
	deadline := time.Now().Add(timeout)
	for {
		h, err := health(ids...)
		if err != nil {
			s.t.Fatal(err)
		}
		var bad []string
		for id, st := range h {
			if st != "healthy" {
				bad = append(bad, id[:12]+"="+st)
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("containers not healthy after %v: %v", timeout, bad)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *stack) down() {
	if s.t.Failed() {
		if out, err := s.run(time.Minute, "logs", "--no-color", "--tail", "150"); err == nil {
			s.t.Logf("compose logs of %s:\n%s", s.name, out)
		}
	}
	if out, err := s.run(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		s.t.Logf("compose down: %v\n%s", err, out)
	}
}

// useCluster selects the compose profile "cluster": three NATS nodes and
// JetStream replicas 3 (deploy/compose/cluster.env), as `make up-cluster`.
func (s *stack) useCluster() {
	s.global = []string{"--profile", "cluster", "--env-file", filepath.Join(s.root, "deploy", "compose", "cluster.env")}
}

func (s *stack) gatewayAddr() string { return "127.0.0.1:" + strconv.Itoa(s.gatewayPort) }
func (s *stack) apiAddr() string     { return "127.0.0.1:" + strconv.Itoa(s.apiPort) }
func (s *stack) wsAddr() string      { return "127.0.0.1:" + strconv.Itoa(s.wsPort) }
func (s *stack) natsURL() string     { return "nats://127.0.0.1:" + strconv.Itoa(s.natsPort) }

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (s *stack) status(url string) int {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// api calls the api with the admin token; it returns the status and
// decodes a 2xx body into out.
func (s *stack) api(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+s.apiAddr()+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
