package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// Heartbeat: v0-4
//
// Behavior:
//   - Keeps the member's session alive; REBALANCE_IN_PROGRESS tells it to
//     rejoin, ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID
//     where Kafka sends them.
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: InstanceID (KIP-345)
//   - v4: flexible
var heartbeatHandler = apiHandler{key: int16(kmsg.Heartbeat), minVersion: 0, maxVersion: 4, handle: handleHeartbeat}

func handleHeartbeat(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	answer := func(err error) {
		resp.ErrorCode = groupErrorCode(err)
		respond(resp)
	}
	g := s.groups()
	if g == nil {
		answer(errNoCoordinator)
		return
	}
	g.Heartbeat(actors.HeartbeatRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID), Generation: req.Generation}, answer)
}
