package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// TestMembership registers two nodes, checks both are live and that the
// status lists the partition lease, then deregisters one.
func TestMembership(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		b := startBroker(t, be, testOptions("node-a"))
		a, err := actors.StartMembership(ctx, be.meta, meta.Node{ID: "node-a", KafkaAddr: "127.0.0.1:9092", WALAddr: "127.0.0.1:8848"}, 50*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := actors.StartMembership(ctx, be.meta, meta.Node{ID: "node-c", KafkaAddr: "127.0.0.1:9093"}, 50*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		tp := createTopic(t, b, "status", 1, nil)
		appendOK(t, b, tp, 0, batchOf(t, "x"))
		st, err := b.ClusterStatus(ctx, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Nodes) != 2 || st.Nodes[0].ID != "node-a" || st.Nodes[1].ID != "node-c" || st.Nodes[0].KafkaAddr != "127.0.0.1:9092" {
			t.Fatalf("nodes: %+v", st.Nodes)
		}
		found := false
		for _, l := range st.Leases {
			if l.Resource == meta.PartitionResource(tp.ID, 0) && meta.LeaseNode(l.Owner) == "node-a" && l.Epoch >= 1 {
				found = true
			}
		}
		if !found {
			t.Fatalf("partition lease not listed: %+v", st.Leases)
		}
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		st, _ = b.ClusterStatus(ctx, 5*time.Second)
		if len(st.Nodes) != 1 || st.Nodes[0].ID != "node-a" {
			t.Fatalf("after node-c left: %+v", st.Nodes)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
