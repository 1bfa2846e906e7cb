// Package metrics holds the gateway's Prometheus collectors, registered on
// a registry of their own (never the global one), so several gateways can
// live in one process. All collectors are safe for concurrent use.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registration outcomes (label "outcome" of RegistrationsTotal).
const (
	OutcomeAccepted        = "accepted"
	OutcomeVersion         = "refused_version"
	OutcomeNodeID          = "refused_node_id"
	OutcomeNodeName        = "refused_node_name"
	OutcomeNodeType        = "refused_node_type"
	OutcomeAuth            = "refused_auth"
	OutcomeNotRegistration = "refused_not_registration"
	OutcomeDraining        = "refused_draining"
	OutcomeTimeout         = "timeout"
	OutcomeClosed          = "closed"
	OutcomeTLS             = "tls_failed"
)

// Policy drops (label "reason" of DroppedTotal): things a node sent, or a
// command for it, that the gateway deliberately did not pass on.
const (
	DropIdentity       = "identity_mismatch"   // a message carried another node_id
	DropReregistration = "reregistration"      // a second NodeRegistration on a session
	DropRejected       = "publish_rejected"    // JetStream refused an event for good (e.g. too large)
	DropLifecycle      = "lifecycle_publish"   // a core NATS lifecycle publish failed
	DropCommandQueue   = "command_queue_full"  // the node's write queue was full
	DropUnexpected     = "unexpected_variant"  // a core->node or backend variant sent by a node
	DropOverCapacity   = "connection_capacity" // connection refused by MaxConnections
	DropShutdown       = "shutdown"            // an event read but not accepted before the drain deadline
)

// Metrics are the gateway's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Connections        prometheus.Gauge
	ConnectionsTotal   prometheus.Counter
	Nodes              prometheus.Gauge
	RegistrationsTotal *prometheus.CounterVec
	DisconnectsTotal   *prometheus.CounterVec
	MessagesTotal      *prometheus.CounterVec
	DecodeErrorsTotal  *prometheus.CounterVec
	DroppedTotal       *prometheus.CounterVec

	EventsTotal          prometheus.Counter
	EventsAckedTotal     prometheus.Counter
	EventRetriesTotal    prometheus.Counter
	PublishLatency       prometheus.Histogram
	UnackedBytes         prometheus.Gauge
	UnackedEvents        prometheus.Gauge
	BackpressureSeconds  prometheus.Counter
	Backpressured        prometheus.Gauge
	StateWriteErrorTotal prometheus.Counter

	CommandsTotal *prometheus.CounterVec
	NATSConnected prometheus.Gauge
}

// New creates the collectors and registers them, with the Go and process
// collectors, on a fresh registry.
func New() *Metrics {
	const ns, sub = "honeybee", "gateway"
	m := &Metrics{Registry: prometheus.NewRegistry()}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: ns, Subsystem: sub, Name: name, Help: help}
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts(opts(name, help)))
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts(opts(name, help)))
	}
	counterVec := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), []string{label})
	}
	m.Connections = gauge("connections", "Open node connections (registered or not).")
	m.ConnectionsTotal = counter("connections_total", "Node connections accepted.")
	m.Nodes = gauge("nodes", "Registered nodes held by this gateway.")
	m.RegistrationsTotal = counterVec("registrations_total", "Registration attempts by outcome.", "outcome")
	m.DisconnectsTotal = counterVec("disconnects_total", "Registered sessions ended, by reason.", "reason")
	m.MessagesTotal = counterVec("messages_total", "Messages received from nodes, by variant.", "type")
	m.DecodeErrorsTotal = counterVec("decode_errors_total", "Messages from nodes that could not be decoded, by kind.", "kind")
	m.DroppedTotal = counterVec("dropped_total", "Messages and commands dropped by policy, by reason.", "reason")
	m.EventsTotal = counter("events_total", "Attack events accepted from nodes.")
	m.EventsAckedTotal = counter("events_acked_total", "Attack events acknowledged by JetStream.")
	m.EventRetriesTotal = counter("event_retries_total", "Attack event publishes retried (same message id).")
	m.PublishLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
		Name: "publish_latency_seconds", Help: "Time from receiving an attack event to its JetStream acknowledgement.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.UnackedBytes = gauge("unacked_bytes", "Bytes of attack events awaiting a JetStream acknowledgement.")
	m.UnackedEvents = gauge("unacked_events", "Attack events awaiting a JetStream acknowledgement.")
	m.BackpressureSeconds = counter("backpressure_seconds_total", "Time sessions spent not reading because the unacknowledged window was full.")
	m.Backpressured = gauge("backpressured_sessions", "Sessions not reading their socket right now because the unacknowledged window is full.")
	m.StateWriteErrorTotal = counter("state_write_errors_total", "Failed key-value writes (retried).")
	m.CommandsTotal = counterVec("commands_total", "Command requests by outcome.", "outcome")
	m.NATSConnected = gauge("nats_connected", "1 while the NATS connection is up.")

	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Connections, m.ConnectionsTotal, m.Nodes, m.RegistrationsTotal, m.DisconnectsTotal,
		m.MessagesTotal, m.DecodeErrorsTotal, m.DroppedTotal, m.EventsTotal, m.EventsAckedTotal,
		m.EventRetriesTotal, m.PublishLatency, m.UnackedBytes, m.UnackedEvents, m.BackpressureSeconds, m.Backpressured,
		m.StateWriteErrorTotal, m.CommandsTotal, m.NATSConnected,
	)
	return m
}
