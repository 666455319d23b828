// Package archtest checks that imports point down the layers named in
// DESIGN.md: cmd → wire → actors → persistence. config lies under cmd,
// wire and actors, which read their defaults from it (config.Default), and
// imports nothing of the project; persistence does not import it, so the
// stores take plain values. It also checks that the binary links no test
// support.
package archtest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/morax-dev/morax"

// rule forbids packages under from (a module-relative prefix) to depend,
// directly or not, on any package under one of the forbidden prefixes.
type rule struct {
	from   string
	forbid []string
}

var rules = []rule{
	{"persistence", []string{module + "/actors", module + "/wire", module + "/cmd", module + "/config"}},
	{"actors", []string{module + "/wire", module + "/cmd", "github.com/twmb/franz-go/pkg/kmsg", "github.com/valyala/fasthttp"}},
	{"wire", []string{module + "/cmd"}},
	{"config", []string{module + "/actors", module + "/wire", module + "/cmd", module + "/persistence", module + "/internal"}},
	{"internal/node", []string{module + "/cmd"}},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps,Standard", module+"/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list returned no packages")
	}
	return pkgs
}

func TestImportsPointDown(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, r := range rules {
			if rel != r.from && !strings.HasPrefix(rel, r.from+"/") {
				continue
			}
			for _, d := range p.Deps {
				for _, f := range r.forbid {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s imports %s: %s must not depend on %s", p.ImportPath, d, r.from, f)
					}
				}
			}
		}
	}
}

// directRules forbid direct imports only: the protocol layers reach the
// broker's state through actors, whose API names the stored records (as
// aliases), so they depend on persistence/meta through actors but never
// call a store themselves. Test-support packages (kafkatest, waltest)
// start nodes on real stores and are exempt.
var directRules = []rule{
	{"wire", []string{module + "/persistence/meta", module + "/persistence/objstore"}},
}

func TestWireTalksOnlyToActors(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if strings.HasSuffix(rel, "test") {
			continue
		}
		for _, r := range directRules {
			if rel != r.from && !strings.HasPrefix(rel, r.from+"/") {
				continue
			}
			for _, d := range p.Imports {
				for _, f := range r.forbid {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s imports %s: %s talks to the broker through actors only", p.ImportPath, d, r.from)
					}
				}
			}
		}
	}
}

// TestWALClientIsStdlibOnly keeps the Go client free of the broker's
// dependencies: users import it into their own programs. The WAL's own
// internal helpers are allowed; their dependencies are in the client's
// transitive list, so they are held to the same rule.
func TestWALClientIsStdlibOnly(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/wire/wal/client" {
			continue
		}
		std := map[string]bool{}
		cmd := exec.Command("go", "list", "std")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list std: %v", err)
		}
		for _, s := range strings.Fields(string(out)) {
			std[s] = true
		}
		for _, d := range p.Deps {
			own := strings.HasPrefix(d, module+"/wire/wal/internal/")
			if !std[d] && !own && !strings.HasPrefix(d, "vendor/") && !strings.HasPrefix(d, "internal/") {
				t.Errorf("wire/wal/client depends on non-standard package %s", d)
			}
		}
		return
	}
}
