package main

import (
	"os"
	"testing"

	"github.com/morax-dev/morax/internal/clustertest"
)

// TestMain removes the morax binary the start and cluster tests share
// once they have all run: no single test owns it.
func TestMain(m *testing.M) {
	code := m.Run()
	clustertest.RemoveBinary()
	os.Exit(code)
}
