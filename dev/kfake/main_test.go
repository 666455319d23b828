package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRunServesUntilCanceled starts two brokers on free ports, checks a
// client can reach the cluster at the printed addresses, and that the
// tool stops cleanly when its context ends (as on SIGTERM).
func TestRunServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	exit := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"--brokers", "2"}, pw, &stderr)
		pw.Close()
		exit <- code
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read the addresses: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addrs := strings.Split(strings.TrimSpace(line), ",")
	if len(addrs) != 2 {
		t.Fatalf("printed %q, want two comma-separated addresses", line)
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("broker address %q is not on 127.0.0.1", a)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := cl.Ping(pctx); err != nil {
		t.Fatalf("ping the cluster: %v", err)
	}
	cl.Close()

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after cancel, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after its context ended")
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--brokers", "0"},
		{"--port", "-1"},
		{"--port", "65535", "--brokers", "2"},
		{"extra"},
		{"--no-such-flag"},
	} {
		var stderr strings.Builder
		if code := run(t.Context(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}
