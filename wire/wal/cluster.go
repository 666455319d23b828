package wal

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
)

// clusterNode and clusterLease are the JSON shapes of GET /v1/cluster.
type clusterNode struct {
	ID          string    `json:"id"`
	KafkaAddr   string    `json:"kafka_addr"`
	WALAddr     string    `json:"wal_addr"`
	RemoteAddr  string    `json:"remote_addr"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

type clusterLease struct {
	Resource string `json:"resource"`
	// Kind is "partition" or "group_slot".
	Kind      string `json:"kind"`
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Slot      *int   `json:"slot,omitempty"`
	// Node is the owning node's id; Owner adds the process incarnation
	// (meta.LeaseOwner). Both are empty for a released lease.
	Node      string    `json:"node"`
	Owner     string    `json:"owner"`
	Epoch     int64     `json:"epoch"`
	ExpiresAt time.Time `json:"expires_at"`
}

// handleCluster serves GET /v1/cluster: live nodes, and who holds which
// partition or group-slot lease at what epoch (an empty owner is a lease
// released and not yet taken). A node is live while its heartbeat is
// younger than the lease TTL, the same rule the ownership loop chooses
// owners by, so the view lists the nodes that can own partitions.
func (s *Server) handleCluster(ctx *fasthttp.RequestCtx) {
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	st, err := s.b.ClusterStatus(rctx, s.b.Options().LeaseTTL)
	if err != nil {
		s.fail(ctx, "cluster", err)
		return
	}
	out := struct {
		Nodes  []clusterNode  `json:"nodes"`
		Leases []clusterLease `json:"leases"`
	}{Nodes: []clusterNode{}, Leases: []clusterLease{}}
	for _, n := range st.Nodes {
		out.Nodes = append(out.Nodes, clusterNode(n))
	}
	names := map[actors.TopicID]string{}
	for _, l := range st.Leases {
		cl := clusterLease{Resource: l.Resource, Node: actors.LeaseNode(l.Owner), Owner: l.Owner, Epoch: l.Epoch, ExpiresAt: l.ExpiresAt}
		parts := strings.Split(l.Resource, "/")
		switch {
		case len(parts) == 3 && parts[0] == "p":
			cl.Kind = "partition"
			if p, err := strconv.ParseInt(parts[2], 10, 32); err == nil {
				p32 := int32(p)
				cl.Partition = &p32
			}
			cl.Topic = s.topicName(rctx, parts[1], names)
		case len(parts) == 2 && parts[0] == "g":
			cl.Kind = "group_slot"
			if n, err := strconv.Atoi(parts[1]); err == nil {
				cl.Slot = &n
			}
		}
		out.Leases = append(out.Leases, cl)
	}
	if err := marshalJSON(ctx, out); err != nil {
		s.fail(ctx, "cluster", err)
	}
}

// topicName resolves a topic id from a lease resource to its name ("" if
// the topic is gone), caching answers for the request.
func (s *Server) topicName(ctx context.Context, id string, cache map[actors.TopicID]string) string {
	tid, ok := parseTopicID(id)
	if !ok {
		return ""
	}
	if name, ok := cache[tid]; ok {
		return name
	}
	name := ""
	if t, err := s.b.TopicByID(ctx, tid); err == nil {
		name = t.Name
	}
	cache[tid] = name
	return name
}

// parseTopicID parses a canonical UUID string.
func parseTopicID(s string) (actors.TopicID, bool) {
	var id actors.TopicID
	hex := strings.ReplaceAll(s, "-", "")
	if len(hex) != 32 {
		return id, false
	}
	for i := range 16 {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return id, false
		}
		id[i] = byte(v)
	}
	return id, true
}
