// Package procstat reads the CPU time and memory of processes from Linux
// /proc: /proc/<pid>/stat (utime, stime) and /proc/<pid>/status (VmRSS,
// VmHWM, Threads). It also finds processes by name. Functions are safe for
// concurrent use.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned when no process matches a name.
var ErrNotFound = errors.New("process not found")

// clockTick is USER_HZ: 100 on every Linux architecture Go supports.
const clockTick = 100

// Sample is a process's counters at one moment.
type Sample struct {
	PID int
	At  time.Time
	CPU time.Duration // user + system time so far
	// ChildrenCPU is the user + system time of waited-for children.
	ChildrenCPU time.Duration
	RSS         int64 // resident set size, bytes
	HWM         int64 // peak resident set size, bytes
	Threads     int
}

// Root is the proc file system's mount point (a variable for tests).
var Root = "/proc"

// Read samples process pid.
func Read(pid int) (Sample, error) {
	s := Sample{PID: pid, At: time.Now()}
	dir := filepath.Join(Root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, err
	}
	cpu, children, err := parseStatChildren(stat)
	if err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	s.CPU, s.ChildrenCPU = cpu, children
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return s, err
	}
	s.RSS, s.HWM, s.Threads = parseStatus(status)
	return s, nil
}

// parseStat returns utime+stime from a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// after its last ')'.
func parseStat(b []byte) (time.Duration, error) {
	cpu, _, err := parseStatChildren(b)
	return cpu, err
}

// parseStatChildren also returns cutime+cstime (fields 16 and 17).
func parseStatChildren(b []byte) (self, children time.Duration, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
	if len(f) < 15 {
		return 0, 0, errors.New("short stat")
	}
	var v [4]uint64
	for k := range v {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil || n < 0 {
			return 0, 0, errors.New("malformed utime/stime")
		}
		v[k] = uint64(n)
	}
	tick := func(t uint64) time.Duration { return time.Duration(t) * time.Second / clockTick }
	return tick(v[0] + v[1]), tick(v[2] + v[3]), nil
}

func parseStatus(b []byte) (rss, hwm int64, threads int) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			rss = kb(v)
		case "VmHWM":
			hwm = kb(v)
		case "Threads":
			threads, _ = strconv.Atoi(v)
		}
	}
	return rss, hwm, threads
}

func kb(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n * 1024
}

// Find returns the pids of processes whose name (/proc/<pid>/comm, at most
// 15 characters) or executable base name equals name, excluding the
// calling process.
func Find(name string) ([]int, error) {
	ents, err := os.ReadDir(Root)
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(Root, e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		if c == name || (len(name) > 15 && c == name[:15]) {
			pids = append(pids, pid)
			continue
		}
		if exe, err := os.Readlink(filepath.Join(Root, e.Name(), "exe")); err == nil && filepath.Base(exe) == name {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return pids, nil
}

// Usage is what a process used between two samples.
type Usage struct {
	Name    string  `json:"name"`
	PID     int     `json:"pid"`
	CPUPct  float64 `json:"cpu_pct"` // 100 = one core busy
	CPUSecs float64 `json:"cpu_s"`
	RSS     int64   `json:"rss_bytes"`
	PeakRSS int64   `json:"peak_rss_bytes"`
	Threads int     `json:"threads"`
}

// Between computes usage from a to b (same pid, b later).
func Between(name string, a, b Sample) Usage {
	u := Usage{Name: name, PID: b.PID, RSS: b.RSS, PeakRSS: b.HWM, Threads: b.Threads}
	u.CPUSecs = (b.CPU - a.CPU).Seconds()
	if el := b.At.Sub(a.At).Seconds(); el > 0 {
		u.CPUPct = 100 * u.CPUSecs / el
	}
	return u
}

// Proc is a named process to sample.
type Proc struct {
	Name string
	PID  int
}

// Resolve turns specs ("name", or "name=pid") into processes. A name
// matching several processes yields name#1, name#2, ... in pid order.
func Resolve(specs []string) ([]Proc, error) {
	var out []Proc
	for _, s := range specs {
		name, pidStr, ok := strings.Cut(s, "=")
		if ok {
			pid, err := strconv.Atoi(pidStr)
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("process %q: bad pid", s)
			}
			out = append(out, Proc{name, pid})
			continue
		}
		pids, err := Find(name)
		if err != nil {
			return nil, err
		}
		slices.Sort(pids)
		for i, pid := range pids {
			n := name
			if len(pids) > 1 {
				n = name + "#" + strconv.Itoa(i+1)
			}
			out = append(out, Proc{n, pid})
		}
	}
	return out, nil
}

// Named is a process's CPU time with its name.
type Named struct {
	PID  int
	PPID int
	Name string
	CPU  time.Duration
}

// Snapshot returns the CPU time of every process that can be read.
func Snapshot() []Named {
	ents, err := os.ReadDir(Root)
	if err != nil {
		return nil
	}
	var out []Named
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(Root, e.Name(), "stat"))
		if err != nil {
			continue
		}
		cpu, err := parseStat(b)
		if err != nil {
			continue
		}
		n := Named{PID: pid, CPU: cpu}
		if i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')'); i >= 0 && j > i {
			n.Name = string(b[i+1 : j])
			if f := strings.Fields(string(b[j+1:])); len(f) > 1 {
				n.PPID, _ = strconv.Atoi(f[1])
			}
		}
		out = append(out, n)
	}
	return out
}

// Busiest returns the processes that used the most CPU between two
// snapshots, at most n, skipping those for which skip returns true.
func Busiest(before, after []Named, n int, skip func(Named) bool) []Named {
	prev := make(map[int]Named, len(before))
	for _, p := range before {
		prev[p.PID] = p
	}
	var out []Named
	for _, p := range after {
		if skip != nil && skip(p) {
			continue
		}
		d := p.CPU
		if b, ok := prev[p.PID]; ok && b.Name == p.Name {
			d -= b.CPU
		}
		if d > 0 {
			p.CPU = d
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Named) int { return int(b.CPU - a.CPU) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// LoadAvg returns the 1, 5 and 15 minute load averages.
func LoadAvg() (string, error) {
	b, err := os.ReadFile(filepath.Join(Root, "loadavg"))
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "", errors.New("malformed loadavg")
	}
	return strings.Join(f[:3], " "), nil
}

// CPUTimes are the machine's CPU times since boot, summed over cores.
type CPUTimes struct {
	Busy  time.Duration // everything but idle and iowait (includes IRQ)
	IRQ   time.Duration // hard and soft interrupts (loopback networking shows here)
	Total time.Duration
}

// SystemCPU reads the first line of /proc/stat.
func SystemCPU() (CPUTimes, error) {
	b, err := os.ReadFile(filepath.Join(Root, "stat"))
	if err != nil {
		return CPUTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return CPUTimes{}, errors.New("malformed /proc/stat")
	}
	var vals []uint64
	for _, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return CPUTimes{}, errors.New("malformed /proc/stat")
		}
		vals = append(vals, v)
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]
	var all, idle uint64
	for i, v := range vals {
		if i >= 8 { // guest time is already in user
			break
		}
		all += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	tick := func(v uint64) time.Duration { return time.Duration(v) * time.Second / clockTick }
	return CPUTimes{Busy: tick(all - idle), IRQ: tick(vals[5] + vals[6]), Total: tick(all)}, nil
}
