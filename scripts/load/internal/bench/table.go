package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/honeybee/core/scripts/load/internal/drive"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

// WriteTable prints the figures of every mode next to the targets.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "HoneyBee Core benchmark, %s, %.0fs\n", r.Date.Format(time.RFC3339), r.Seconds)
	fmt.Fprintf(w, "machine: %s, %d cores, %s RAM, Linux %s, %s, open files %d\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.Memory, r.Machine.Kernel, r.Machine.Go, r.Machine.NoFile)
	fmt.Fprintf(w, "load average at start %s, at end %s\n", r.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "CPU during the run: %.1f s busy = core %.1f s + load tool %.1f s + interrupts %.1f s + other processes %.1f s\n",
		r.TotalCPUSecs, r.CoreCPUSecs, r.LoadCPUSecs, r.IRQCPUSecs, r.OtherCPUSecs)
	if len(r.Busiest) > 0 {
		var names []string
		for _, b := range r.Busiest {
			names = append(names, fmt.Sprintf("%s %.1fs", b.Name, b.CPU.Seconds()))
		}
		fmt.Fprintf(w, "busiest other processes: %s\n", strings.Join(names, ", "))
	}
	if r.Quick {
		fmt.Fprintln(w, "QUICK RUN: short phases and small counts; not the reference figures")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure")
	for _, m := range r.Order {
		fmt.Fprintf(tw, "\t%s", m)
	}
	fmt.Fprintf(tw, "\ttarget\n")
	row := func(name, target string, f func(*ModeReport) string) {
		fmt.Fprintf(tw, "%s", name)
		for _, mode := range r.Order {
			v := "-"
			if m := r.Modes[mode]; m != nil {
				if s := f(m); s != "" {
					v = s
				}
			}
			fmt.Fprintf(tw, "\t%s", v)
		}
		fmt.Fprintf(tw, "\t%s\n", target)
	}
	row("raw JetStream async publish (msgs/s)", "", func(m *ModeReport) string {
		if m.Raw == nil {
			return ""
		}
		return fmt.Sprintf("%.0f (%d B)", m.Raw.MsgsPerSec, m.Raw.Size)
	})
	row("ingest accepted, as fast as possible (events/s)", "", func(m *ModeReport) string {
		if m.Ingest == nil {
			return ""
		}
		e := m.Ingest.Events
		s := fmt.Sprintf("%.0f stored/s", float64(max(e.Stored, 0))/max(e.SendSecs, 1e-9))
		if !lossless(m.Ingest) {
			s += fmt.Sprintf(", subscriber lost %d", e.Lost)
			if m.Ingest.Subscribers.Closed > 0 {
				s += " (cut: " + reasons(m.Ingest.Subscribers.CloseReasons) + ")"
			}
		}
		return s
	})
	row("end-to-end ingest node->WebSocket, sustained, 0 lost (events/s)", "", func(m *ModeReport) string {
		if m.Sustained == nil {
			if m.Ingest != nil {
				return "none lossless"
			}
			return ""
		}
		return fmt.Sprintf("%.0f", m.Sustained.Events.E2ERate)
	})
	row("ingest ratio vs raw publish", ">= 0.5 with 0 lost", func(m *ModeReport) string {
		if m.Ratio() == 0 {
			return ""
		}
		return fmt.Sprintf("ratio: %.2f %s", m.Ratio(), mark(m.Ratio() >= 0.5))
	})
	row("  sustained run sent / stored / lost / duplicated", "", func(m *ModeReport) string {
		if m.Sustained == nil {
			return ""
		}
		e := m.Sustained.Events
		return fmt.Sprintf("%d / %d / %d / %d", e.Sent, e.Stored, max(e.Lost, uint64(max(e.StoreLost, 0))), e.Duplicated)
	})
	latRow := func(name, target string, pick func(s drive.Result) time.Duration, limit time.Duration) {
		row(name, target, func(m *ModeReport) string {
			if m.Latency == nil || m.Latency.Latency.Count == 0 {
				return ""
			}
			v := pick(*m.Latency)
			return ms(v) + " " + mark(v < limit && m.Latency.Events.Lost == 0)
		})
	}
	latRow("latency at 1,000 events/s p50", "< 1 ms", func(r drive.Result) time.Duration { return r.Latency.P50 }, time.Millisecond)
	latRow("latency at 1,000 events/s p99", "< 2 ms", func(r drive.Result) time.Duration { return r.Latency.P99 }, 2*time.Millisecond)
	row("  p99 node->gateway / gateway->client", "", func(m *ModeReport) string {
		if m.Latency == nil || m.Latency.LatencyIngest.Count == 0 {
			return ""
		}
		return ms(m.Latency.LatencyIngest.P99) + " / " + ms(m.Latency.LatencyDelivery.P99)
	})
	row("  latency run sent / lost", "0 lost", func(m *ModeReport) string {
		if m.Latency == nil {
			return ""
		}
		return fmt.Sprintf("%d / %d", m.Latency.Events.Sent, m.Latency.Events.Lost)
	})
	row("command api->node->api p99 (answer in api)", "< 5 ms", func(m *ModeReport) string {
		if m.Commands == nil || m.Commands.Commands == nil || m.Commands.Commands.Complete.Count == 0 {
			return ""
		}
		c := m.Commands.Commands
		return ms(c.Complete.P99) + " " + mark(c.Complete.P99 < 5*time.Millisecond && c.Incomplete == 0 && c.Errors == 0)
	})
	row("  command POST->202 p50 / p99", "", func(m *ModeReport) string {
		if m.Commands == nil || m.Commands.Commands == nil || m.Commands.Commands.Post.Count == 0 {
			return ""
		}
		c := m.Commands.Commands
		return ms(c.Post.P50) + " / " + ms(c.Post.P99) + fmt.Sprintf(" (n=%d)", c.Post.Count)
	})
	row("idle node connections: RSS each", "<= 12 KiB at 19,000", func(m *ModeReport) string {
		if m.IdleNodes == nil {
			return ""
		}
		i := m.IdleNodes
		return fmt.Sprintf("%.1f KiB at %d %s", i.PerConn/1024, i.Connected, mark(i.PerConn <= 12*1024 && i.Connected >= 19000))
	})
	row("idle WebSocket clients: RSS each", "<= 30 KiB at 10,000", func(m *ModeReport) string {
		if m.IdleWS == nil {
			return ""
		}
		i := m.IdleWS
		return fmt.Sprintf("%.1f KiB at %d %s", i.PerConn/1024, i.Connected, mark(i.PerConn <= 30*1024 && i.Connected >= 10000))
	})
	row("highest sustained fan-out (deliveries/s)", "report", func(m *ModeReport) string {
		b := m.MaxFanout()
		if b == nil {
			if len(m.Fanout) > 0 {
				return "none sustained"
			}
			return ""
		}
		return fmt.Sprintf("%.0f (%d subs x %.0f ev/s, p99 %s)", b.Result.Events.DeliveryRate, b.Subs, b.Rate, ms(b.Result.Latency.P99))
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, mode := range r.Order {
		for _, e := range r.Modes[mode].Errors {
			fmt.Fprintf(w, "error (%s): %s\n", mode, e)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

func reasons(m map[string]int) string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s x%d", k, v))
	}
	return strings.Join(out, ", ")
}

func mark(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}
