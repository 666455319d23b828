package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-6
//
// Behavior:
//   - Group keys: a group's coordinator is the node holding the lease of
//     the group's slot (this node for every group on a single node); while
//     the slot is vacant or changing hands the answer is
//     COORDINATOR_NOT_AVAILABLE, so the client asks again.
//   - Transaction and share-group keys are INVALID_REQUEST: neither is
//     served (or advertised) yet.
//
// Version notes:
//   - v1: CoordinatorType, ErrorMessage, ThrottleMillis
//   - v3: flexible
//   - v4: batched CoordinatorKeys (KIP-699)
//   - v5: same as v4 (TRANSACTION_ABORTABLE, transactions only)
//   - v6: share-group key type (KIP-932)
var findCoordinatorHandler = apiHandler{key: int16(kmsg.FindCoordinator), minVersion: 0, maxVersion: 6, handle: handleFindCoordinator}

// coordinatorTypeGroup is FindCoordinator's CoordinatorType for groups.
const coordinatorTypeGroup = 0

func handleFindCoordinator(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		c := s.findCoordinator(req.CoordinatorKey, req.CoordinatorType)
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.NodeID, c.Host, c.Port
		if req.Version >= 1 {
			resp.ErrorMessage = c.ErrorMessage
		}
		respond(resp)
		return
	}
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, s.findCoordinator(key, req.CoordinatorType))
	}
	respond(resp)
}

// findCoordinator answers one key.
func (s *Server) findCoordinator(key string, typ int8) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID, c.Port = key, -1, -1
	g := s.groups()
	switch {
	case typ != coordinatorTypeGroup:
		c.ErrorCode = kerr.InvalidRequest.Code
		c.ErrorMessage = strPtr("Only consumer-group coordinators are served.")
	case g == nil:
		c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		c.ErrorMessage = strPtr(kerr.CoordinatorNotAvailable.Description)
	case g.Owns(key):
		c.NodeID = s.brokerID()
		c.Host, c.Port = s.advertised()
	default:
		// Another node holds the slot's lease, or it is vacant while
		// changing hands (then the client asks again).
		b, ok := s.slotCoordinator(g.Slot(key))
		if !ok {
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			c.ErrorMessage = strPtr(kerr.CoordinatorNotAvailable.Description)
			break
		}
		c.NodeID, c.Host, c.Port = b.id, b.host, b.port
	}
	return c
}

// slotCoordinator is the live node holding a group slot's lease.
func (s *Server) slotCoordinator(slot int) (brokerInfo, bool) {
	v := s.broker.ClusterView()
	if v == nil {
		return brokerInfo{}, false
	}
	n, _, ok := v.SlotHolder(slot)
	if !ok || n.ID == v.Self {
		// Our own lease not yet (or no longer) in OwnsSlot: not usable.
		return brokerInfo{}, false
	}
	return nodeBroker(n)
}
