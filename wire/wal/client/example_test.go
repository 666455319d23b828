package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/morax-dev/morax/wire/wal/client"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// startNode starts a throwaway embedded Morax node for an example and
// returns its WAL endpoint. In a program, the endpoint is that of a running
// node (client.DefaultEndpoint for `morax start` with defaults).
func startNode() (endpoint string, stop func()) {
	dir, err := waltest.TempDir()
	if err != nil {
		log.Fatal(err)
	}
	n, err := waltest.StartEmbedded(context.Background(), dir, waltest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return n.URL, func() {
		_ = n.Close(context.Background())
		_ = os.RemoveAll(dir)
	}
}

// Create a log, append to it and read it back.
func Example() {
	endpoint, stop := startNode()
	defer stop()
	ctx := context.Background()

	c, err := client.New(endpoint)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Create(ctx, "db_log", nil); err != nil {
		log.Fatal(err)
	}
	r, err := c.Append(ctx, "db_log", [][]byte{[]byte("BEGIN"), []byte("INSERT 1"), []byte("COMMIT")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("appended offsets %d to %d\n", r.Start, r.End-1)

	res, err := c.Read(ctx, "db_log", 0, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range res.Entries {
		fmt.Printf("%d: %s\n", e.Index, e.Data)
	}
	fmt.Println("end offset:", res.EndOffset)
	// Output:
	// appended offsets 0 to 2
	// 0: BEGIN
	// 1: INSERT 1
	// 2: COMMIT
	// end offset: 3
}

// A single writer fences out any other by appending only at the offset it
// expects the log to end at.
func ExampleClient_AppendIf() {
	endpoint, stop := startNode()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(endpoint)
	_ = c.Create(ctx, "ledger", nil)

	r, err := c.AppendIf(ctx, "ledger", [][]byte{[]byte("debit 10")}, 0)
	fmt.Println(r, err)

	// Another writer, still believing the log is empty, is refused and
	// learns where the log ends.
	_, err = c.AppendIf(ctx, "ledger", [][]byte{[]byte("credit 5")}, 0)
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == client.CodeConflict {
		fmt.Println("conflict; the log ends at", apiErr.EndOffset)
	}
	// Output:
	// {0 1} <nil>
	// conflict; the log ends at 1
}

// A read at the end of the log with a wait parks on the node until an entry
// commits (long polling).
func ExampleClient_Read_longPoll() {
	endpoint, stop := startNode()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(endpoint)
	_ = c.Create(ctx, "events", nil)

	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = c.Append(ctx, "events", [][]byte{[]byte("hello")})
	}()
	res, err := c.Read(ctx, "events", 0, &client.ReadOptions{Wait: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d: %s\n", res.Entries[0].Index, res.Entries[0].Data)
	// Output:
	// 0: hello
}

// Tail follows a log, delivering entries as they commit.
func ExampleClient_Tail() {
	endpoint, stop := startNode()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(endpoint)
	_ = c.Create(ctx, "jobs", nil)
	_, _ = c.Append(ctx, "jobs", [][]byte{[]byte("job-1"), []byte("job-2")})
	go func() { _, _ = c.Append(ctx, "jobs", [][]byte{[]byte("job-3")}) }()

	for e, err := range c.Tail(ctx, "jobs", 0, nil) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d: %s\n", e.Index, e.Data)
		if e.Index == 2 {
			break // or cancel ctx
		}
	}
	// Output:
	// 0: job-1
	// 1: job-2
	// 2: job-3
}

// Logs pages through every log.
func ExampleClient_Logs() {
	endpoint, stop := startNode()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(endpoint)
	for _, name := range []string{"app.audit", "app.orders", "billing"} {
		_ = c.Create(ctx, name, nil)
	}
	for l, err := range c.Logs(ctx, client.ListOptions{Prefix: "app."}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(l.Name, l.Kind)
	}
	// Output:
	// app.audit wal
	// app.orders wal
}

// Describe and Trim: drop entries a consumer no longer needs.
func ExampleClient_Trim() {
	endpoint, stop := startNode()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(endpoint)
	_ = c.Create(ctx, "wal", nil)
	_, _ = c.Append(ctx, "wal", [][]byte{[]byte("a"), []byte("b"), []byte("c")})

	start, _ := c.Trim(ctx, "wal", 2)
	info, _ := c.Describe(ctx, "wal")
	fmt.Println(start, info.StartOffset, info.EndOffset)

	_, err := c.Read(ctx, "wal", 0, nil)
	fmt.Println(client.CodeOf(err))
	// Output:
	// 2 2 3
	// OffsetOutOfRange
}

// WaitHealthy waits for a node that may still be starting.
func ExampleClient_WaitHealthy() {
	endpoint, stop := startNode()
	defer stop()
	c, _ := client.New(endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.WaitHealthy(ctx, client.Backoff{Initial: 50 * time.Millisecond, Max: time.Second})
	fmt.Println(err)
	// Output:
	// <nil>
}
