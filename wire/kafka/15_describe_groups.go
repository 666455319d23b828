package kafka

import (
	"errors"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// DescribeGroups: v0-6
//
// Behavior:
//   - Protocol, member metadata and assignments are filled only while the
//     group is Stable, as Kafka does.
//   - A group that does not exist is state "Dead" with no error before v6,
//     GROUP_ID_NOT_FOUND from v6 on.
//   - Authorized operations, when asked for, are "everything": no ACLs yet.
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: IncludeAuthorizedOperations
//   - v4: member InstanceID (KIP-345)
//   - v5: flexible
//   - v6: ErrorMessage, GROUP_ID_NOT_FOUND (KIP-1043)
var describeGroupsHandler = apiHandler{key: int16(kmsg.DescribeGroups), minVersion: 0, maxVersion: 6, handle: handleDescribeGroups}

func handleDescribeGroups(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	answer := func(ds []actors.GroupDescription) {
		for _, d := range ds {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.State, rg.ProtocolType, rg.Protocol = d.Group, d.State, d.ProtocolType, d.Protocol
			rg.AuthorizedOperations = math.MinInt32
			if req.IncludeAuthorizedOperations {
				rg.AuthorizedOperations = groupAllOps
			}
			if d.Err != nil && (req.Version >= 6 || !errors.Is(d.Err, actors.ErrGroupIDNotFound)) {
				rg.ErrorCode = groupErrorCode(d.Err)
				if req.Version >= 6 {
					rg.ErrorMessage = groupErrorMessage(d.Err)
				}
			}
			if errors.Is(d.Err, actors.ErrGroupIDNotFound) {
				rg.State = actors.GroupDead
			}
			for _, m := range d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, optString(m.InstanceID), m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
				rg.Members = append(rg.Members, rm)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		respond(resp)
	}
	g := s.groups()
	if g == nil {
		ds := make([]actors.GroupDescription, len(req.Groups))
		for i, name := range req.Groups {
			ds[i] = actors.GroupDescription{Group: name, Err: errNoCoordinator}
		}
		answer(ds)
		return
	}
	g.Describe(req.Groups, answer)
}
