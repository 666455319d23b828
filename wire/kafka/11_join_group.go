package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// JoinGroup: v0-9
//
// Behavior:
//   - Classic group protocol, served by the group's coordinator actor; the
//     answer may be parked until the rebalance's join phase ends.
//   - A dynamic member's first join (no member id) at v4+ is answered
//     MEMBER_ID_REQUIRED with its new member id; before v4 it joins at once.
//     A static member (group.instance.id, v5+) joins at once, and a static
//     member rejoining without its member id replaces its old member id
//     (which is fenced), without a rebalance when nothing else changed.
//   - For protocol type "consumer" the members' subscribed topics are read
//     from their metadata, so OffsetDelete can refuse consumed topics.
//
// Version notes:
//   - v1: RebalanceTimeoutMillis (v0 uses the session timeout)
//   - v2: ThrottleMillis
//   - v4: MEMBER_ID_REQUIRED (KIP-394)
//   - v5: InstanceID (KIP-345)
//   - v6: flexible
//   - v7: ProtocolType in the response
//   - v8: Reason
//   - v9: SkipAssignment (KIP-814)
var joinGroupHandler = apiHandler{key: int16(kmsg.JoinGroup), minVersion: 0, maxVersion: 9, handle: handleJoinGroup}

func handleJoinGroup(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	answer := func(r actors.JoinResult) {
		resp.ErrorCode = groupErrorCode(r.Err)
		resp.MemberID = r.MemberID
		resp.Generation = r.Generation
		if r.Err != nil {
			resp.Generation = -1
			respond(resp)
			return
		}
		if req.Version >= 7 {
			resp.ProtocolType = strPtr(r.ProtocolType)
		}
		resp.Protocol = strPtr(r.Protocol)
		resp.LeaderID = r.Leader
		resp.SkipAssignment = r.SkipAssignment
		for _, m := range r.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, optString(m.InstanceID), m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		respond(resp)
	}
	g := s.groups()
	if g == nil {
		answer(actors.JoinResult{Err: errNoCoordinator, MemberID: req.MemberID})
		return
	}
	jr := actors.JoinRequest{
		Group:                req.Group,
		MemberID:             req.MemberID,
		InstanceID:           deref(req.InstanceID),
		ClientID:             rc.clientID,
		ClientHost:           clientHost(rc),
		ProtocolType:         req.ProtocolType,
		SessionTimeout:       millis(req.SessionTimeoutMillis),
		RebalanceTimeout:     millis(req.SessionTimeoutMillis),
		RequireKnownMemberID: req.Version >= 4,
		Reason:               deref(req.Reason),
	}
	if req.Version >= 1 {
		jr.RebalanceTimeout = millis(req.RebalanceTimeoutMillis)
	}
	for _, p := range req.Protocols {
		gp := actors.GroupProtocol{Name: p.Name, Metadata: p.Metadata}
		if req.ProtocolType == consumerProtocolType {
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(p.Metadata); err == nil {
				gp.Topics = append([]string{}, md.Topics...)
			}
		}
		jr.Protocols = append(jr.Protocols, gp)
	}
	g.Join(jr, answer)
}
