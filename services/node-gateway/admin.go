package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminHandler serves /healthz (the process is up), /readyz (NATS
// connected, events stream and every bucket present, not draining) and
// /metrics (Prometheus).
func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if reason := g.notReady(ctx); reason != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}

// notReady returns why the gateway cannot serve nodes, or "".
func (g *Gateway) notReady(ctx context.Context) string {
	g.mu.Lock()
	nc, js, ready := g.nc, g.js, g.ready
	g.mu.Unlock()
	switch {
	case nc == nil || !nc.IsConnected():
		return "NATS not connected"
	case !ready:
		return "starting or draining"
	}
	if _, err := js.Stream(ctx, g.contract.EventsStream()); err != nil {
		return "events stream " + g.contract.EventsStream() + ": " + err.Error()
	}
	for _, cfg := range g.bucketConfigs() {
		if _, err := js.KeyValue(ctx, cfg.Bucket); err != nil {
			return "bucket " + cfg.Bucket + ": " + err.Error()
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
