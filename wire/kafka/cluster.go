package kafka

import (
	"hash/fnv"
	"net"
	"slices"
	"strconv"

	"github.com/morax-dev/morax/actors"
)

// BrokerID is the Kafka broker id of a node: a 31-bit hash of its node id,
// so every node computes every other node's id alike, with no coordination,
// and a node keeps its id across restarts. Kafka ids are non-negative
// int32s; two live node ids mapping to one broker id are logged (see
// Server.brokers) and one of them must be renamed.
func BrokerID(nodeID string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(nodeID))
	return int32(h.Sum32() & 0x7fffffff)
}

// brokerID is this node's Kafka broker id.
func (s *Server) brokerID() int32 { return s.selfID }

// brokerInfo is one broker as Metadata and DescribeCluster list it.
type brokerInfo struct {
	id   int32
	host string
	port int32
}

// brokers lists the live nodes as Kafka brokers, this node always among
// them (clients connected here must be able to keep talking to it even
// while its own heartbeat is late), and the controller id: the lowest live
// node id, since Morax has no controller and clients only need a stable
// live broker there.
func (s *Server) brokers(v *actors.ClusterView) ([]brokerInfo, int32) {
	host, port := s.advertised()
	self := brokerInfo{id: s.brokerID(), host: host, port: port}
	if v == nil {
		return []brokerInfo{self}, self.id
	}
	out := []brokerInfo{self}
	controller := int32(-1)
	for _, n := range v.Nodes {
		if controller < 0 {
			controller = BrokerID(n.ID)
		}
		if n.ID == v.Self {
			continue
		}
		b, ok := nodeBroker(n)
		if !ok {
			continue
		}
		if slices.ContainsFunc(out, func(o brokerInfo) bool { return o.id == b.id }) {
			if !s.dupIDWarned.Swap(true) {
				s.log.Error("two live nodes share one Kafka broker id; rename one of them", "node", n.ID, "broker_id", b.id)
			}
			continue
		}
		out = append(out, b)
	}
	if controller < 0 {
		controller = self.id
	}
	return out, controller
}

// nodeBroker is the broker entry of a node from its registered Kafka
// address; false when the address cannot be used.
func nodeBroker(n actors.Node) (brokerInfo, bool) {
	host, portStr, err := net.SplitHostPort(n.KafkaAddr)
	if err != nil {
		return brokerInfo{}, false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return brokerInfo{}, false
	}
	return brokerInfo{id: BrokerID(n.ID), host: host, port: int32(port)}, true
}

// partitionLeader is the leader of a partition as Metadata reports it: the
// live node holding its lease and the lease epoch; ok is false while the
// lease is vacant, expired or held by a node that is not live (clients get
// LEADER_NOT_AVAILABLE and ask again). A lease this node's actors hold is
// known before the view shows it.
func (s *Server) partitionLeader(v *actors.ClusterView, id actors.TopicID, p int32) (leader int32, epoch int32, ok bool) {
	if e, ok := s.broker.LocalLeader(id, p); ok {
		return s.brokerID(), int32(min(e, 1<<31-1)), true
	}
	n, l, ok := v.PartitionHolder(id, p)
	if !ok {
		return -1, -1, false
	}
	return BrokerID(n.ID), int32(min(l.Epoch, 1<<31-1)), true
}
