package wal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/persistence/segment/segmenttest"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// TestStoredBombReadFailsCleanly: a compression bomb stored before appends
// were checked (here: by a node whose bound was large enough to take it)
// fails reads and tails of its offsets at the bound of the node that reads
// it, with a 500 for that request only; other logs and the rest of the API
// keep working.
func TestStoredBombReadFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bomb, err := segmenttest.Bomb(segment.CodecZstd, 1, 32<<20, false)
	if err != nil {
		t.Fatalf("build bomb: %v", err)
	}

	// The old node: its bound lets the 32 MiB record in.
	old, err := waltest.StartEmbedded(ctx, dir, waltest.Options{Broker: actors.Options{MaxDecompressedBatchBytes: 64 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bombed", "fine"} {
		if err := old.Client.Create(ctx, name, nil); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	topic, err := old.Broker.Topic(ctx, "bombed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Broker.Append(ctx, topic, 0, bomb, -1); err != nil {
		t.Fatalf("store the bomb under a 64 MiB bound: %v", err)
	}
	if _, err := old.Client.Append(ctx, "fine", [][]byte{[]byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The node reading it has a 1 MiB bound.
	n, err := waltest.StartEmbedded(ctx, dir, waltest.Options{Broker: actors.Options{MaxDecompressedBatchBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	for range 3 {
		status, body := n.Post(t, "/v1/read", `{"name":"bombed","offset":0}`)
		if status != 500 || !strings.Contains(body, "Unexpected") {
			t.Fatalf("read of the stored bomb: %d %s, want a 500", status, body)
		}
	}
	if status, body := n.Do(t, "GET", "/v1/logs/bombed/tail?offset=0", ""); !strings.Contains(body, "event: error") && status < 400 {
		t.Errorf("tail of the stored bomb: %d %q, want an error", status, body)
	}
	res, err := n.Client.Read(ctx, "fine", 0, nil)
	if err != nil || len(res.Entries) != 2 {
		t.Fatalf("read of another log: %d entries, %v", len(res.Entries), err)
	}
	// New bombs are refused at the node's bound and not stored.
	if _, err := n.Broker.Append(ctx, topic, 0, bomb, -1); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("append of a bomb over the bound: %v, want refused", err)
	}
}
