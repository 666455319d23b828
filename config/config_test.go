package config

import (
	"log/slog"
	"path/filepath"
	"testing"
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
