package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/nodes/{id}/commands", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer adm" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		if r.PathValue("id") != "18446744073709551615" || string(b) != `{"DeployPot":"cowrie-1"}` {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"INVALID_COMMAND"}}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"command_id":"c1","delivered":true}`)
	})
	mux.HandleFunc("GET /api/v1/commands/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"command_id":"`+r.PathValue("id")+`","state":"succeeded","progress":[]}`)
	})
	mux.HandleFunc("POST /api/v1/enrollments", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"node_name":"n","secret":"JBSWY3DPEHPK3PXP","uri":"otpauth://totp/x"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := New(srv.URL, "adm")
	defer c.CloseIdle()
	ctx := context.Background()

	a, err := c.SendCommand(ctx, 1<<64-1, json.RawMessage(`{"DeployPot":"cowrie-1"}`))
	if err != nil || a.CommandID != "c1" || !a.Delivered {
		t.Errorf("SendCommand = %+v, %v", a, err)
	}
	_, err = c.SendCommand(ctx, 1<<64-1, json.RawMessage(`{"StopPot":""}`))
	if !errors.Is(err, ErrStatus) {
		t.Errorf("bad command: err = %v, want ErrStatus", err)
	}
	s, err := c.Command(ctx, "c1")
	if err != nil || s.State != "succeeded" || s.CommandID != "c1" {
		t.Errorf("Command = %+v, %v", s, err)
	}
	sec, err := c.Enroll(ctx, "n")
	if err != nil || sec != "JBSWY3DPEHPK3PXP" {
		t.Errorf("Enroll = %q, %v", sec, err)
	}
	if err := New(srv.URL, "").Get(ctx, "/nope", nil); !errors.Is(err, ErrStatus) {
		t.Errorf("Get 404: err = %v, want ErrStatus", err)
	}
}
