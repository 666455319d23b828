package kafka

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-2
//
// Behavior:
//   - This node is the only broker and the controller.
//   - EndpointType 2 (controllers, KIP-919) is UNSUPPORTED_ENDPOINT_TYPE,
//     as a Kafka broker answers it.
//   - Authorized operations, when asked for, are "everything": no ACLs yet.
//
// Version notes:
//   - v1: EndpointType
//   - v2: IncludeFencedBrokers (nothing is ever fenced here)
var describeClusterHandler = apiHandler{key: int16(kmsg.DescribeCluster), minVersion: 0, maxVersion: 2, handle: handleDescribeCluster}

// endpointTypeBrokers is DescribeCluster's EndpointType for brokers.
const endpointTypeBrokers = 1

func handleDescribeCluster(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBrokers
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = strPtr("Only brokers are described.")
		respond(resp)
		return
	}
	resp.ClusterID = s.cfg.ClusterID
	brokers, controller := s.brokers(s.broker.ClusterView())
	resp.ControllerID = controller
	for _, bi := range brokers {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = bi.id, bi.host, bi.port
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterAuthorizedOperations = math.MinInt32
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterAllOps
	}
	respond(resp)
}
