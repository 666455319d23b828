package wal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/client"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// TestCloseEndsLongPolls checks that Close answers parked reads at once
// (503 Unavailable, "shutting down") instead of waiting out their wait.
func TestCloseEndsLongPolls(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "lp", nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := n.Client.Read(ctx, "lp", 0, &client.ReadOptions{Wait: 25 * time.Second})
		got <- err
	}()
	itest.WaitForGauge(t, n.Registry, "morax_parked_readers", 1)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.Server.Close(cctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close waited %v for a parked read", d)
	}
	select {
	case err := <-got:
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Code != client.CodeUnavailable || !ae.Temporary() {
			t.Fatalf("parked read ended with %v, want a retriable Unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("parked read still waiting after Close")
	}
}

// TestServerLifecycle checks Listen, Serve, Start and Close in odd orders.
func TestServerLifecycle(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	if _, err := wal.NewServer(wal.Config{}); err == nil {
		t.Error("NewServer without a broker succeeded")
	}
	ctx := t.Context()

	// Closed before it ever served.
	s, err := wal.NewServer(wal.Config{Broker: n.Broker, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Error("Addr before Listen is not nil")
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil {
		t.Error("second Listen succeeded")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close before serve: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Serve listens by itself; Close makes it return nil.
	s, err = wal.NewServer(wal.Config{Broker: n.Broker, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c, err := client.New("http://" + s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx, client.Backoff{Initial: time.Millisecond, Attempts: 100}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v after Close", err)
	}
	if err := c.Health(ctx); err == nil {
		t.Error("a closed server still answers")
	}

	// A port in use fails Listen.
	s, _ = wal.NewServer(wal.Config{Broker: n.Broker, ListenAddr: n.Server.Addr().String()})
	if err := s.Listen(); err == nil {
		t.Error("Listen on a port in use succeeded")
	}
	_ = s.Close(ctx)
}

// TestReadAcrossLargeBatches reads with small limits from the middle of
// large batches spread over several flushes: every read answers promptly
// with entries from the offset asked for.
func TestReadAcrossLargeBatches(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "big", nil); err != nil {
		t.Fatal(err)
	}
	page := make([][]byte, 512)
	for i := range page {
		page[i] = make([]byte, 1024)
	}
	for range 6 {
		if _, err := n.Client.Append(ctx, "big", page); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range []int64{0, 100, 511, 512, 1500, 3000, 3071} {
		for _, opts := range []client.ReadOptions{{MaxBytes: 1}, {MaxBytes: 3000}, {MaxEntries: 700}, {}} {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res, err := n.Client.Read(rctx, "big", off, &opts)
			cancel()
			if err != nil {
				t.Fatalf("read at %d with %+v: %v", off, opts, err)
			}
			if len(res.Entries) == 0 || res.Entries[0].Index != off || res.EndOffset != 3072 {
				t.Fatalf("read at %d with %+v: %d entries from %d, end %d", off, opts, len(res.Entries), res.Entries[0].Index, res.EndOffset)
			}
			if opts.MaxEntries > 0 && len(res.Entries) > opts.MaxEntries {
				t.Fatalf("read at %d: %d entries, max %d", off, len(res.Entries), opts.MaxEntries)
			}
		}
	}
}

// TestTailLogDeleted checks that a tail whose log is deleted ends with an
// error event the client turns into an *APIError with a real status.
func TestTailLogDeleted(t *testing.T) {
	n := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) { c.TailHeartbeat = 100 * time.Millisecond }})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := n.Client.Create(ctx, "doomed", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client.Append(ctx, "doomed", [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	var last error
	for e, err := range n.Client.Tail(ctx, "doomed", 0, nil) {
		if err != nil {
			last = err
			break
		}
		if e.Index == 0 {
			if err := n.Client.Delete(ctx, "doomed"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ae *client.APIError
	if !errors.As(last, &ae) || ae.Status < 400 {
		t.Fatalf("tail of a deleted log ended with %v, want an API error", last)
	}
	t.Logf("tail of a deleted log ends with %v", ae)
}
