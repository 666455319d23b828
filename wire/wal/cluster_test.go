package wal_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// TestClusterStatus checks GET /v1/cluster lists the registered node and
// the lease of a log's partition with its topic name and epoch.
func TestClusterStatus(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	ctx := context.Background()
	m, err := actors.StartMembership(ctx, n.Broker.Meta(), meta.Node{ID: n.Broker.NodeID(), WALAddr: "127.0.0.1:8848"}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if err := n.Client.Create(ctx, "status-log", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client.Append(ctx, "status-log", [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	code, body := n.Do(t, "GET", "/v1/cluster", "")
	if code != 200 {
		t.Fatalf("GET /v1/cluster: %d %s", code, body)
	}
	var st struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
		Leases []struct {
			Kind      string `json:"kind"`
			Topic     string `json:"topic"`
			Partition *int32 `json:"partition"`
			Node      string `json:"node"`
			Owner     string `json:"owner"`
			Epoch     int64  `json:"epoch"`
		} `json:"leases"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].ID != n.Broker.NodeID() {
		t.Fatalf("nodes: %s", body)
	}
	if len(st.Leases) != 1 || st.Leases[0].Kind != "partition" || st.Leases[0].Topic != "status-log" ||
		st.Leases[0].Partition == nil || *st.Leases[0].Partition != 0 || st.Leases[0].Node != n.Broker.NodeID() || st.Leases[0].Owner != n.Broker.LeaseOwner() || st.Leases[0].Epoch < 1 {
		t.Fatalf("leases: %s", body)
	}
	if code, _ := n.Do(t, "POST", "/v1/cluster", "{}"); code != 405 {
		t.Fatalf("POST /v1/cluster: %d, want 405", code)
	}
}
