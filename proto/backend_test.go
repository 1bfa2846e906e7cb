package proto_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/honeybee/core/proto"
)

// TestBackendTypeJSON: BackendType survives encoding/json both ways, so a
// BackendRegistration can be stored as JSON outside an envelope.
func TestBackendTypeJSON(t *testing.T) {
	tests := []struct {
		give proto.BackendType
		want string
	}{
		{proto.BackendType{Kind: "Web"}, `"Web"`},
		{proto.BackendType{Kind: "Api"}, `"Api"`},
		{proto.BackendType{Kind: "Monitoring"}, `"Monitoring"`},
		{proto.BackendType{Kind: "Cli"}, `"Cli"`},
		{proto.BackendType{Kind: "Custom", Custom: "grafana"}, `{"Custom":"grafana"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(proto.BackendRegistration{BackendName: "b", BackendType: tt.give})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"backend_name":"b","backend_type":` + tt.want + `}`; string(b) != want {
			t.Errorf("Marshal = %s, want %s", b, want)
		}
		var back proto.BackendRegistration
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if back.BackendType != tt.give {
			t.Errorf("Unmarshal(%s) = %+v, want %+v", b, back.BackendType, tt.give)
		}
	}
	for _, give := range []string{`"Toaster"`, `{"Custom":5}`, `"Custom"`, `{"Web":{},"Api":{}}`, `5`} {
		var bt proto.BackendType
		err := json.Unmarshal([]byte(give), &bt)
		if !errors.Is(err, proto.ErrUnknownVariant) && !errors.Is(err, proto.ErrInvalidField) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want ErrUnknownVariant or ErrInvalidField", give, bt, err)
		}
	}
}
