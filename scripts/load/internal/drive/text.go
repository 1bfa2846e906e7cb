package drive

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/honeybee/core/scripts/load/internal/stats"
)

// Ms formats a duration in milliseconds with three decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

func pcts(s stats.Summary) string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)", Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.P999), Ms(s.Max), s.Count)
}

// WriteText writes the summary table.
func (r Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := r.Config
	rate := "max"
	if c.Rate > 0 {
		rate = fmt.Sprintf("%.0f/s", c.Rate)
	}
	var ds []string
	for _, d := range c.Dialects {
		ds = append(ds, d.String())
	}
	fmt.Fprintf(tw, "run\t%s  %d nodes x %d pots, rate %s, %v, dialects %s, %d subscribers, %d command workers\n",
		r.Started.Format(time.RFC3339), c.Nodes, c.Pots, rate, c.Duration, strings.Join(ds, ","), c.Subscribers, c.CmdWorkers)
	n := r.Nodes
	fmt.Fprintf(tw, "nodes\tconnected %d/%d  refused %d  failed %d  disconnected %d  (connect %.1fs)\n",
		n.Connected, n.Requested, n.Refused, n.Failed, n.Disconnected, n.ConnectSecs)
	e := r.Events
	stored := "-"
	if e.Stored >= 0 {
		stored = fmt.Sprintf("%d (missing %d, avg %.0f B)", e.Stored, e.StoreLost, e.AvgStoredBytes)
	}
	fmt.Fprintf(tw, "events\tsent %d in %.1fs (%.0f/s)  stored %s\n", e.Sent, e.SendSecs, e.SendRate, stored)
	if r.Subscribers.Requested > 0 {
		s := r.Subscribers
		fmt.Fprintf(tw, "subscribers\tconnected %d/%d  closed %d %s\n", s.Connected, s.Requested, s.Closed, reasons(s.CloseReasons))
		fmt.Fprintf(tw, "delivered\treceived(min) %d  lost(max) %d  duplicated %d  e2e %.0f/s  deliveries %d (%.0f/s)\n",
			e.Received, e.Lost, e.Duplicated, e.E2ERate, e.Deliveries, e.DeliveryRate)
		fmt.Fprintf(tw, "latency\t%s\n", pcts(r.Latency))
		fmt.Fprintf(tw, "  node->gateway\t%s\n", pcts(r.LatencyIngest))
		fmt.Fprintf(tw, "  gateway->client\t%s\n", pcts(r.LatencyDelivery))
	}
	if cm := r.Commands; cm != nil {
		fmt.Fprintf(tw, "commands\tsent %d  errors %d  undelivered %d  incomplete %d  failed %d\n", cm.Sent, cm.Errors, cm.Undelivered, cm.Incomplete, cm.Failed)
		fmt.Fprintf(tw, "  POST->202\t%s\n", pcts(cm.Post))
		fmt.Fprintf(tw, "  ->node\t%s\n", pcts(cm.Delivery))
		fmt.Fprintf(tw, "  ->answer in api\t%s\n", pcts(cm.Complete))
	}
	if len(r.Processes) > 0 {
		fmt.Fprintf(tw, "process\tcpu%%\tcpu s\trss MiB\tpeak MiB\tthreads\n")
		for _, p := range r.Processes {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.1f\t%.1f\t%.1f\t%d\n", p.Name, p.CPUPct, p.CPUSecs, mib(p.RSS), mib(p.PeakRSS), p.Threads)
		}
	}
	for _, err := range r.Errors {
		fmt.Fprintf(tw, "error\t%s\n", err)
	}
	return tw.Flush()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func reasons(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%q x%d", k, v))
	}
	sort.Strings(ks)
	return "(" + strings.Join(ks, ", ") + ")"
}
