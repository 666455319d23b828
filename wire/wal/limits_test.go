package wal_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/persistence/segment/segmenttest"
	"github.com/morax-dev/morax/wire/wal"
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

// dialFrom connects to the node from the loopback address src.
func dialFrom(t *testing.T, src, url string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// health sends GET /v1/health on c and returns the status line, or the
// read error when the server closed the connection instead.
func health(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestWALConnectionLimits: a connection over the per-IP bound is closed on
// accept and counted; a client trickling its request is cut off at the
// read timeout; others are served throughout.
func TestWALConnectionLimits(t *testing.T) {
	n := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) {
		c.MaxConnectionsPerIP = 2
		c.ReadTimeout = 300 * time.Millisecond
	}})
	a, b := dialFrom(t, "127.0.0.2", n.URL), dialFrom(t, "127.0.0.2", n.URL)
	for _, c := range []net.Conn{a, b} {
		if line, err := health(c); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("health: %q %v", line, err)
		}
	}
	if line, err := health(dialFrom(t, "127.0.0.2", n.URL)); err == nil {
		t.Fatalf("third connection from one address answered %q; want it closed", line)
	}
	if got := refusals(t, n, "max_connections_per_ip"); got != 1 {
		t.Errorf("per-IP refusals %v, want 1", got)
	}
	// Slowloris: half a request, then nothing. The server closes the
	// connection once the read timeout passes (fasthttp may answer 408
	// first).
	slow := dialFrom(t, "127.0.0.3", n.URL)
	if _, err := slow.Write([]byte("GET /v1/health HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(slow)
	if err != nil {
		t.Fatalf("trickled request: %v after %q; want the server to close it", err, rest)
	}
	if len(rest) > 0 && !strings.Contains(string(rest), "408") {
		t.Errorf("trickled request answered %q", rest)
	}
	if line, err := health(dialFrom(t, "127.0.0.4", n.URL)); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("health from another client: %q %v", line, err)
	}
}

// refusals reads the WAL listener's refusals for reason.
func refusals(t *testing.T, n *waltest.Node, reason string) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "morax_wal_connections_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
