// Command kfake runs franz-go's in-memory Kafka cluster (kfake) on
// 127.0.0.1 until SIGINT or SIGTERM: the reference point the bench scripts
// measure Morax against. It is a dev tool, so that a fake broker never
// links into the production binary (internal/archtest keeps it out).
//
//	go run ./dev/kfake --brokers 1 --port 19093
//
// Once every broker accepts connections it prints their addresses on one
// line of stdout, comma-separated, ready for `morax bench --target kafka
// --brokers`. Data lives in memory only and is gone when it stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves a cluster until ctx ends and returns the exit status: 0 after
// a clean stop, 1 when the cluster could not start, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.Int("brokers", 1, "number of brokers")
	port := fs.Int("port", 0, "port of the first broker; the others take the next ones (0: free ports chosen by the system)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q (flags only)", fs.Arg(0)))
	}
	if *brokers < 1 {
		problems = append(problems, "--brokers: at least 1")
	}
	if *port < 0 || *port+*brokers-1 > 65535 {
		problems = append(problems, fmt.Sprintf("--port %d: the brokers' ports must lie in 1..65535 (or 0 for free ports)", *port))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "kfake: %s\n", strings.Join(problems, "; "))
		return 2
	}

	opts := []kfake.Opt{kfake.NumBrokers(*brokers)}
	if *port > 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	// NewCluster returns once every broker's listener is bound, so the
	// addresses printed next already accept connections.
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "kfake: start: %v\n", err)
		return 1
	}
	defer c.Close()
	if _, err := fmt.Fprintln(stdout, strings.Join(c.ListenAddrs(), ",")); err != nil {
		fmt.Fprintf(stderr, "kfake: %v\n", err)
		return 1
	}
	<-ctx.Done()
	return 0
}
