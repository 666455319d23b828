package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// LeaveGroup: v0-5
//
// Behavior:
//   - v3+ removes a batch of members, each answered on its own; a static
//     member may be named by instance id alone (admin clients do).
//   - Before v3 the one member's error is the response's error.
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: Members batch with InstanceID (KIP-345)
//   - v4: flexible
//   - v5: Reason per member
var leaveGroupHandler = apiHandler{key: int16(kmsg.LeaveGroup), minVersion: 0, maxVersion: 5, handle: handleLeaveGroup}

func handleLeaveGroup(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	lr := actors.LeaveRequest{Group: req.Group}
	if req.Version < 3 {
		lr.Members = []actors.LeavingMember{{MemberID: req.MemberID}}
	}
	for _, m := range req.Members {
		lr.Members = append(lr.Members, actors.LeavingMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), Reason: deref(m.Reason)})
	}
	answer := func(r actors.LeaveResult) {
		resp.ErrorCode = groupErrorCode(r.Err)
		if r.Err != nil {
			respond(resp)
			return
		}
		if req.Version < 3 {
			if len(r.Members) > 0 {
				resp.ErrorCode = groupErrorCode(r.Members[0])
			}
			respond(resp)
			return
		}
		for i, m := range req.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
			if i < len(r.Members) {
				rm.ErrorCode = groupErrorCode(r.Members[i])
			}
			resp.Members = append(resp.Members, rm)
		}
		respond(resp)
	}
	g := s.groups()
	if g == nil {
		answer(actors.LeaveResult{Err: errNoCoordinator})
		return
	}
	g.Leave(lr, answer)
}
