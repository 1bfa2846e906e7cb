// Package bench is the benchmark orchestrator behind `make bench`: it
// starts the core from prebuilt binaries, as the embedded default and as
// separate processes, runs every measurement of the load tool against it,
// and prints the figures next to the targets. It owns every process it
// starts and stops them all before returning.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/honeybee/core/scripts/load/internal/procstat"
)

// Ports of one core under test.
type Ports struct {
	Gateway, GatewayAdmin, API, WS, NATS int
}

// DefaultPorts are the core's documented ports.
var DefaultPorts = Ports{Gateway: 9001, GatewayAdmin: 9101, API: 9002, WS: 9003, NATS: 4222}

func (p Ports) all() []int { return []int{p.Gateway, p.GatewayAdmin, p.API, p.WS, p.NATS} }

// process is one started binary.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// stack is the core under test: one or more processes.
type stack struct {
	mode  string
	procs []*process
	ports Ports
	// cpu is what the processes used over their lives, read by stop.
	cpu time.Duration
}

func (s *stack) start(ctx context.Context, name, bin string, args []string, env []string, logDir string) (*process, error) {
	lf, err := os.Create(filepath.Join(logDir, s.mode+"-"+name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: lf, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	s.procs = append(s.procs, p)
	return p, nil
}

// specs names the processes for sampling ("name=pid").
func (s *stack) specs() []string {
	var out []string
	for _, p := range s.procs {
		out = append(out, p.name+"="+strconv.Itoa(p.cmd.Process.Pid))
	}
	return out
}

func (s *stack) pid(name string) int {
	for _, p := range s.procs {
		if p.name == name {
			return p.cmd.Process.Pid
		}
	}
	return 0
}

// stop sends SIGTERM in reverse start order, waits up to 20 s each, then
// kills. It reports processes that had already died or did not exit 0.
func (s *stack) stop() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case err := <-p.done:
			errs = append(errs, fmt.Errorf("%s had exited before the end: %v (see %s)", p.name, err, p.log.Name()))
			p.log.Close()
			continue
		default:
		}
		if smp, err := procstat.Read(p.cmd.Process.Pid); err == nil {
			s.cpu += smp.CPU
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: exit after SIGTERM: %v", p.name, err))
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("%s: did not exit within 20s of SIGTERM; killed", p.name))
		}
		p.log.Close()
	}
	s.procs = nil
	return errors.Join(errs...)
}

// alive returns an error naming a process that exited.
func (s *stack) alive() error {
	for _, p := range s.procs {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited: %v (see %s)", p.name, err, p.log.Name())
		default:
		}
	}
	return nil
}

// waitHTTP polls url until it answers 200, the stack dies, or timeout.
func (s *stack) waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	var last string
	for time.Now().Before(deadline) {
		if err := s.alive(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %v: %s", url, timeout, last)
}

// waitTCP waits until addr accepts connections.
func (s *stack) waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := s.alive(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not accepting after %v", addr, timeout)
}

// portsFree fails when something already listens on one of the ports.
func portsFree(p Ports) error {
	for _, port := range p.all() {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return fmt.Errorf("port %d is busy (is a core already running? stop it, or use -port-offset): %w", port, err)
		}
		ln.Close()
	}
	return nil
}
