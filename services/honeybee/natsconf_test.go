package honeybee

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestComposeNATSConfigs parses the NATS configuration files of
// compose.yaml (deploy/nats) with the server version the images are built
// from, so a typo fails here rather than in a container.
func TestComposeNATSConfigs(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "nats-2")
	tests := []struct {
		give       string
		wantName   string
		wantRoutes int
	}{
		{give: "nats.conf", wantName: "honeybee-nats", wantRoutes: 0},
		{give: "cluster.conf", wantName: "nats-2", wantRoutes: 3},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if !opts.JetStream || opts.StoreDir != "/data" {
				t.Errorf("JetStream %v store %q, want on in /data", opts.JetStream, opts.StoreDir)
			}
			if opts.ServerName != tt.wantName {
				t.Errorf("server name %q, want %q", opts.ServerName, tt.wantName)
			}
			if len(opts.Routes) != tt.wantRoutes {
				t.Errorf("%d routes, want %d", len(opts.Routes), tt.wantRoutes)
			}
			if opts.Port != 4222 || opts.HTTPPort != 8222 {
				t.Errorf("ports %d/%d, want 4222/8222", opts.Port, opts.HTTPPort)
			}
		})
	}
}
