package archtest

import (
	"path"
	"strings"
	"testing"
)

// testSupport reports whether a package exists for tests or benchmarks
// rather than for the broker: franz-go's fake cluster kfake (the bench
// scripts run it from dev/kfake), and our own support packages, which are
// named for it (metatest, objstoretest, kafkatest, waltest, itest,
// teststores, clustertest).
func testSupport(importPath string) bool {
	if strings.Contains(importPath, "kfake") {
		return true
	}
	if importPath != module && !strings.HasPrefix(importPath, module+"/") {
		return false
	}
	base := path.Base(importPath)
	return strings.HasPrefix(base, "test") || strings.HasSuffix(base, "test")
}

// TestBinaryLinksNoTestSupport keeps test support out of the binary users
// run: it would grow it, and a fake broker or a fault injector linked into
// production is one flag or one wrong import away from being used there.
func TestBinaryLinksNoTestSupport(t *testing.T) {
	for _, own := range []string{"persistence/meta/metatest", "persistence/objstore/objstoretest", "persistence/segment/segmenttest", "internal/itest", "internal/teststores", "internal/clustertest", "wire/kafka/kafkatest", "wire/wal/waltest"} {
		if !testSupport(module + "/" + own) {
			t.Errorf("testSupport(%s) = false; the rule below would miss it", own)
		}
	}
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/cmd/morax" {
			continue
		}
		for _, d := range p.Deps {
			if testSupport(d) {
				t.Errorf("cmd/morax depends on %s, which is test support", d)
			}
		}
		return
	}
	t.Fatal("go list did not report cmd/morax")
}
