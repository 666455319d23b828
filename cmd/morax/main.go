// Command morax is the Morax broker and its client tools.
//
//	morax start [--config-file F] [--data-dir D]   run a node
//	morax version                                  print the version
//	morax wal <command> ...                        use a node's WAL service
//	morax bench ...                                load tool and benchmarks
//	morax cluster status                           nodes and lease owners
//
// main only parses the command line and wires the parts together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "start":
		return runStart(ctx, args[1:], stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "morax", version())
		return 0
	case "wal":
		return runWAL(ctx, args[1:], stdin, stdout, stderr)
	case "cluster":
		return runCluster(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "morax: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Morax: a diskless message broker speaking Kafka and an HTTP WAL protocol.

Usage:
  morax start [--config-file F] [--data-dir D]   run a node (embedded default without a config)
  morax wal <create|append|read|tail|list|describe|delete|trim> ...
                                                 use a node's WAL service (morax wal --help)
  morax bench [flags] | raw-s3 | raw-pg | report  load tool and benchmarks (morax bench -h)
  morax cluster status [--endpoint URL] [--json] nodes, heartbeats and lease owners
  morax version                                  print the version
`)
}

// version reports the module version the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" {
		return "(devel)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
