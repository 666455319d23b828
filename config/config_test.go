package config

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func TestHelpers(t *testing.T) {
	c := Default()
	c.DataDir = "/var/lib/morax"
	if !c.Embedded() {
		t.Error("Default is not embedded")
	}
	if got, want := c.MetaPath(), filepath.Join("/var/lib/morax", "meta.db"); got != want {
		t.Errorf("MetaPath = %q, want %q", got, want)
	}
	if got, want := c.ObjectsDir(), filepath.Join("/var/lib/morax", "objects"); got != want {
		t.Errorf("ObjectsDir = %q, want %q", got, want)
	}
	if got, want := c.NodeIDPath(), filepath.Join("/var/lib/morax", "node_id"); got != want {
		t.Errorf("NodeIDPath = %q, want %q", got, want)
	}
	if got := c.KafkaAdvertised(); got != "127.0.0.1:9092" {
		t.Errorf("KafkaAdvertised = %q, want the listen address", got)
	}

	c.Storage.Dir = "/mnt/objects"
	c.Server.KafkaBroker.AdvertisedAddr = "broker-1:9092"
	c.Server.Meta.ServiceURL = "postgres://db/meta"
	if c.Embedded() {
		t.Error("config with service_url is embedded")
	}
	if got := c.ObjectsDir(); got != "/mnt/objects" {
		t.Errorf("ObjectsDir = %q, want storage.dir", got)
	}
	if got := c.KafkaAdvertised(); got != "broker-1:9092" {
		t.Errorf("KafkaAdvertised = %q, want advertised_addr", got)
	}
}

func TestSlogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug,
		"info":  slog.LevelInfo,
		"warn":  slog.LevelWarn,
		"error": slog.LevelError,
		"loud":  slog.LevelInfo,
	} {
		if got := (LogConfig{Level: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClusterRefresh(t *testing.T) {
	for _, tc := range []struct {
		name               string
		ttl, poll, refresh time.Duration
		want               time.Duration
	}{
		{"default is half the lease", 10 * time.Second, 250 * time.Millisecond, 0, 5 * time.Second},
		{"set value kept", 10 * time.Second, 250 * time.Millisecond, 2 * time.Second, 2 * time.Second},
		{"never below the poll", time.Second, 800 * time.Millisecond, 0, 800 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ClusterConfig{LeaseTTL: Duration(tc.ttl), PollInterval: Duration(tc.poll), RefreshInterval: Duration(tc.refresh)}
			if got := c.Refresh(); got != tc.want {
				t.Fatalf("Refresh() = %s, want %s", got, tc.want)
			}
		})
	}
}
