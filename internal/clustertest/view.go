package clustertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// Snapshot is the JSON of GET /v1/cluster.
type Snapshot struct {
	Nodes []struct {
		ID          string    `json:"id"`
		KafkaAddr   string    `json:"kafka_addr"`
		WALAddr     string    `json:"wal_addr"`
		HeartbeatAt time.Time `json:"heartbeat_at"`
	} `json:"nodes"`
	Leases []struct {
		Resource  string    `json:"resource"`
		Kind      string    `json:"kind"`
		Topic     string    `json:"topic"`
		Partition *int32    `json:"partition"`
		Owner     string    `json:"owner"`
		Epoch     int64     `json:"epoch"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"leases"`
}

// PartLease is who holds one partition's lease: the node id (without the
// incarnation; "" when vacant) and the epoch.
type PartLease struct {
	Node    string
	Owner   string // the full owner string, node@incarnation
	Epoch   int64
	Expires time.Time
}

// Status reads GET /v1/cluster from a live node (any: they read the same
// tables).
func (c *Cluster) Status() (Snapshot, error) {
	var last error
	for _, n := range c.live() {
		s, err := n.status()
		if err == nil {
			return s, nil
		}
		last = err
	}
	if last == nil {
		last = errors.New("no live node")
	}
	return Snapshot{}, last
}

func (n *Node) status() (Snapshot, error) {
	var s Snapshot
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + n.walAddr + "/v1/cluster")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return s, err
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /v1/cluster on %s: %s %s", n.id, resp.Status, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("GET /v1/cluster on %s: %v", n.id, err)
	}
	return s, nil
}

// PartitionLeases returns the leases of topic's partitions, by partition.
func (s Snapshot) PartitionLeases(topic string) map[int32]PartLease {
	out := map[int32]PartLease{}
	for _, l := range s.Leases {
		if l.Kind != "partition" || l.Topic != topic || l.Partition == nil {
			continue
		}
		out[*l.Partition] = PartLease{Node: meta.LeaseNode(l.Owner), Owner: l.Owner, Epoch: l.Epoch, Expires: l.ExpiresAt}
	}
	return out
}

// DesiredOwners is the rendezvous choice of owner for each partition of a
// topic among the given nodes: what ownership converges to. It uses the
// broker's own choice function, so the test checks convergence, not a
// re-implementation of the hash.
func DesiredOwners(id meta.TopicID, partitions int32, nodeIDs []string) map[int32]string {
	v := &actors.ClusterView{}
	for _, n := range nodeIDs {
		v.Nodes = append(v.Nodes, meta.Node{ID: n})
	}
	out := map[int32]string{}
	for p := range partitions {
		out[p] = v.Desired(meta.PartitionResource(id, p))
	}
	return out
}

// WaitBalanced waits until every partition of topic is held by its
// rendezvous owner among the live nodes, with an unexpired lease, and stays
// so for a few polls (ownership settled, no hand-over in flight). It
// returns when that was first seen and the leases then.
func (c *Cluster) WaitBalanced(topic string, partitions int32, timeout time.Duration) (time.Time, map[int32]PartLease) {
	c.t.Helper()
	id := c.TopicID(topic)
	want := DesiredOwners(id, partitions, c.LiveIDs())
	var (
		first  time.Time
		prev   map[int32]PartLease
		stable int
	)
	c.WaitFor("ownership of "+topic+" balanced over "+strings.Join(c.LiveIDs(), ","), timeout, func() (bool, string) {
		s, err := c.Status()
		if err != nil {
			return false, err.Error()
		}
		got := s.PartitionLeases(topic)
		for p := range partitions {
			l := got[p]
			if l.Node != want[p] || !time.Now().Before(l.Expires) {
				first, prev, stable = time.Time{}, nil, 0
				return false, fmt.Sprintf("partition %d held by %q (epoch %d), want %q", p, l.Owner, l.Epoch, want[p])
			}
		}
		if prev != nil && sameOwners(prev, got) {
			stable++
		} else {
			first, stable = time.Now(), 0
		}
		prev = got
		// Three more polls (300 ms, over half a heartbeat) with nothing
		// moving: no drain or takeover was under way.
		return stable >= 3, "settling"
	})
	return first, prev
}

func sameOwners(a, b map[int32]PartLease) bool {
	if len(a) != len(b) {
		return false
	}
	for p, l := range a {
		if m, ok := b[p]; !ok || m.Owner != l.Owner || m.Epoch != l.Epoch {
			return false
		}
	}
	return true
}

// CountByNode counts partitions per holding node.
func CountByNode(leases map[int32]PartLease) map[string]int {
	out := map[string]int{}
	for _, l := range leases {
		out[l.Node]++
	}
	return out
}

// OwnerOf returns who holds a partition of a log or topic now, waiting
// while it has no owner.
func (c *Cluster) OwnerOf(topic string, partition int32) PartLease {
	c.t.Helper()
	var l PartLease
	c.WaitFor("an owner for "+topic, 30*time.Second, func() (bool, string) {
		s, err := c.Status()
		if err != nil {
			return false, err.Error()
		}
		l = s.PartitionLeases(topic)[partition]
		return l.Node != "", "no owner yet"
	})
	return l
}
