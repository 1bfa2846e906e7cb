package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/honeybee/core/scripts/load/internal/procstat"
)

// profiler records Linux perf CPU profiles of the core's processes during a
// phase (the services expose no pprof endpoint; perf reads the Go symbol
// table of the binaries). Reports go to dir as <mode>-<phase>-<proc>.txt
// (self time) and .children.txt (time including callees), next to the
// perf.data files (<...>.perf, for `perf report -i`).
type profiler struct {
	dir string
	log io.Writer
}

func newProfiler(dir string, log io.Writer) (*profiler, error) {
	if dir == "" {
		return nil, nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("-perf: perf is not installed: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{dir: dir, log: log}, nil
}

// record profiles procs for d, starting after delay; wait returns when
// the reports are written.
func (p *profiler) record(ctx context.Context, name string, procs []procstat.Proc, delay, d time.Duration) (wait func()) {
	if p == nil || d <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		var cmds []*exec.Cmd
		var files []string
		for _, pr := range procs {
			if pr.Name == "load" {
				continue
			}
			out := filepath.Join(p.dir, name+"-"+pr.Name+".perf")
			cmd := exec.CommandContext(ctx, "perf", "record", "-F", "499", "-g", "-o", out,
				"-p", strconv.Itoa(pr.PID), "--", "sleep", strconv.Itoa(int(d.Seconds())))
			if err := cmd.Start(); err != nil {
				fmt.Fprintf(p.log, "perf %s: %v\n", pr.Name, err)
				continue
			}
			cmds = append(cmds, cmd)
			files = append(files, out)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
		for _, f := range files {
			base := strings.TrimSuffix(f, ".perf")
			// Self time per function, and time including callees.
			for _, v := range []struct{ suffix, children string }{{".txt", "--no-children"}, {".children.txt", "--children"}} {
				rep, err := exec.CommandContext(ctx, "perf", "report", "-i", f, v.children, "--sort", "symbol",
					"--stdio", "-g", "none", "--percent-limit", "0.7").Output()
				if err != nil {
					fmt.Fprintf(p.log, "perf report %s: %v\n", f, err)
					continue
				}
				if err := os.WriteFile(base+v.suffix, rep, 0o644); err != nil {
					fmt.Fprintf(p.log, "perf report %s: %v\n", f, err)
				}
			}
		}
	}()
	return func() { <-done }
}
