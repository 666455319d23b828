package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// moraxPackage is the command the harness builds. It is named by import
// path, not by a directory, so the build resolves against the module
// whichever package's directory the calling test runs in.
const moraxPackage = "github.com/morax-dev/morax/cmd/morax"

// The morax binary the cluster tests run, built once per test binary: each
// scenario restarts nodes many times and a build per node would dominate
// the run time.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of a morax binary built from the current source,
// building it on the first call of the test binary and failing t if the
// build fails. The file lives until RemoveBinary.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "morax-cluster-test-")
		if err != nil {
			binary.err = err
			return
		}
		binary.dir = dir
		binary.path = filepath.Join(dir, "morax")
		out, err := exec.Command("go", "build", "-o", binary.path, moraxPackage).CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// RemoveBinary deletes the binary Binary built, if any. A package whose
// tests call Binary calls it from TestMain after m.Run: no single test
// owns the shared binary, so no test's cleanup can remove it.
func RemoveBinary() {
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
}
