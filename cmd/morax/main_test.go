package main

import (
	"os"
	"testing"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/clustertest"
)

// shutdownTimeout is the longest a node on the default configuration takes
// to stop (server.shutdown_timeout); tests that stop nodes wait for it.
var shutdownTimeout = config.Default().Server.ShutdownTimeout.Duration()

// TestMain removes the morax binary the start and cluster tests share
// once they have all run: no single test owns it.
func TestMain(m *testing.M) {
	code := m.Run()
	clustertest.RemoveBinary()
	os.Exit(code)
}
