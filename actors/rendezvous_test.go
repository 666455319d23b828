package actors

import (
	"fmt"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
)

func viewOf(ids ...string) *ClusterView {
	v := &ClusterView{byID: map[string]int{}}
	for i, id := range ids {
		v.Nodes = append(v.Nodes, meta.Node{ID: id})
		v.byID[id] = i
	}
	return v
}

// TestRendezvousSpreadsAndMovesLittle checks the two properties ownership
// relies on: resources spread evenly over the nodes, and a node joining
// takes only its share, each moved resource moving to it and no other.
func TestRendezvousSpreadsAndMovesLittle(t *testing.T) {
	const n = 6000
	three := viewOf("node1", "node2", "node3")
	four := viewOf("node1", "node2", "node3", "node4")
	count := map[string]int{}
	moved := 0
	for i := range n {
		res := meta.PartitionResource(meta.TopicID{byte(i % 7), byte(i / 7 % 250)}, int32(i))
		before, after := three.Desired(res), four.Desired(res)
		count[before]++
		if before != after {
			if after != "node4" {
				t.Fatalf("%s moved from %s to %s, not to the newcomer", res, before, after)
			}
			moved++
		}
	}
	for _, id := range []string{"node1", "node2", "node3"} {
		if share := float64(count[id]) / n; share < 0.30 || share > 0.37 {
			t.Errorf("%s got %.3f of the resources, want about 1/3 (%v)", id, share, count)
		}
	}
	if share := float64(moved) / n; share < 0.22 || share > 0.28 {
		t.Errorf("a fourth node took %.3f of the resources, want about 1/4", share)
	}
}

// TestRendezvousIsStable checks that the choice depends only on the set of
// live nodes, not on their order, and that no node means no choice.
func TestRendezvousIsStable(t *testing.T) {
	a, b := viewOf("x", "y", "z"), viewOf("z", "x", "y")
	for i := range 100 {
		res := fmt.Sprintf("g/%d", i)
		if a.Desired(res) != b.Desired(res) {
			t.Fatalf("%s: %s vs %s for the same nodes", res, a.Desired(res), b.Desired(res))
		}
	}
	if got := viewOf().Desired("g/1"); got != "" {
		t.Fatalf("no nodes chose %q", got)
	}
}
