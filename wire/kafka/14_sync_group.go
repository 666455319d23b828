package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// SyncGroup: v0-5
//
// Behavior:
//   - The leader's sync carries every member's assignment; once it is
//     stored, every member's parked sync is answered with its own.
//   - An empty assignment in a "consumer" group is sent as an empty
//     ConsumerMemberAssignment, which every client decodes (some fail on
//     zero bytes).
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: InstanceID (KIP-345)
//   - v4: flexible
//   - v5: ProtocolType and Protocol, checked against the group's
var syncGroupHandler = apiHandler{key: int16(kmsg.SyncGroup), minVersion: 0, maxVersion: 5, handle: handleSyncGroup}

func handleSyncGroup(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	answer := func(r actors.SyncResult) {
		resp.ErrorCode = groupErrorCode(r.Err)
		if r.Err == nil {
			if req.Version >= 5 {
				resp.ProtocolType, resp.Protocol = strPtr(r.ProtocolType), strPtr(r.Protocol)
			}
			resp.MemberAssignment = r.Assignment
			if len(r.Assignment) == 0 && r.ProtocolType == consumerProtocolType {
				empty := kmsg.NewConsumerMemberAssignment()
				resp.MemberAssignment = empty.AppendTo(nil)
			}
		}
		respond(resp)
	}
	g := s.groups()
	if g == nil {
		answer(actors.SyncResult{Err: errNoCoordinator})
		return
	}
	sr := actors.SyncRequest{
		Group:        req.Group,
		MemberID:     req.MemberID,
		InstanceID:   deref(req.InstanceID),
		Generation:   req.Generation,
		ProtocolType: deref(req.ProtocolType),
		Protocol:     deref(req.Protocol),
	}
	for _, a := range req.GroupAssignment {
		sr.Assignments = append(sr.Assignments, actors.MemberAssignment{MemberID: a.MemberID, Assignment: a.MemberAssignment})
	}
	g.Sync(sr, answer)
}
