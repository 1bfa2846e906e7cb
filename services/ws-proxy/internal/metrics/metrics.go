// Package metrics holds the Prometheus metrics of one ws-proxy replica, on
// a registry of its own (so several replicas can run in one process).
// Everything here is safe for concurrent use.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/honeybee/core/services/ws-proxy/internal/hub"
)

const ns = "honeybee_wsproxy"

// Metrics of a replica.
type Metrics struct {
	reg *prometheus.Registry

	Clients     *prometheus.GaugeVec   // endpoint
	Connections *prometheus.CounterVec // endpoint, result
	Upstream    *prometheus.CounterVec // kind
	BadUpstream *prometheus.CounterVec // kind
	Sent        *prometheus.CounterVec // kind
	Slow        prometheus.Counter
	Replayed    prometheus.Counter
	ReplayTime  prometheus.Histogram
	BadInput    *prometheus.CounterVec // endpoint, reason
	Backend     *prometheus.CounterVec // request, result
	Ready       prometheus.Gauge

	sent [hub.AllKinds + 1]prometheus.Counter
}

// New registers every metric, with the Go and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		reg: reg,
		Clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "clients",
			Help: "Open WebSocket connections by endpoint (stream, backend)."}, []string{"endpoint"}),
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_total",
			Help: "Connection attempts by endpoint and result (accepted, unauthorized, too_many, not_ready, bad_request, upgrade_failed)."},
			[]string{"endpoint", "result"}),
		Upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "upstream_messages_total",
			Help: "Messages received from NATS by kind (event, node, pot)."}, []string{"kind"}),
		BadUpstream: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "upstream_invalid_total",
			Help: "Messages from NATS skipped because their payload is not the expected JSON object."}, []string{"kind"}),
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "frames_sent_total",
			Help: "Frames written to /stream clients by kind (event, node, pot, control)."}, []string{"kind"}),
		Slow: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "slow_consumers_total",
			Help: "Clients closed because their queue was full."}),
		Replayed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "replayed_events_total",
			Help: "Events written by resumes (since=)."}),
		ReplayTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "replay_seconds",
			Help: "Time from connect to live for resuming clients.", Buckets: prometheus.DefBuckets}),
		BadInput: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "bad_input_total",
			Help: "Bad client input by endpoint and reason."}, []string{"endpoint", "reason"}),
		Backend: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "backend_requests_total",
			Help: "Backend protocol requests by kind and result (success, failure)."}, []string{"request", "result"}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ready",
			Help: "1 when the events stream, the buckets and the upstream subscriptions are in place."}),
	}
	for _, c := range []prometheus.Collector{m.Clients, m.Connections, m.Upstream, m.BadUpstream, m.Sent, m.Slow,
		m.Replayed, m.ReplayTime, m.BadInput, m.Backend, m.Ready,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, k := range []hub.Kind{0, hub.KindEvent, hub.KindNode, hub.KindPot} {
		m.sent[k] = m.Sent.WithLabelValues(k.String())
	}
	return m
}

// FrameSent counts a frame written to a client.
func (m *Metrics) FrameSent(f *hub.Frame) {
	if int(f.Kind) < len(m.sent) && m.sent[f.Kind] != nil {
		m.sent[f.Kind].Inc()
	}
}

// ObserveReplay records a finished replay.
func (m *Metrics) ObserveReplay(d time.Duration) { m.ReplayTime.Observe(d.Seconds()) }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry (tests read counters from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
