package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	tests := []struct {
		name   string
		give   string
		wantOK bool
	}{
		{name: "2xx", give: srv.URL + "/ok", wantOK: true},
		{name: "503", give: srv.URL + "/ready", wantOK: false},
		{name: "timeout", give: srv.URL + "/slow", wantOK: false},
		{name: "refused", give: "http://127.0.0.1:1/", wantOK: false},
		{name: "bad url", give: "::", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(context.Background(), tt.give, 200*time.Millisecond)
			if (err == nil) != tt.wantOK {
				t.Fatalf("check(%q) = %v, want ok=%v", tt.give, err, tt.wantOK)
			}
		})
	}
}
