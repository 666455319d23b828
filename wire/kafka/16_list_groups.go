package kafka

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// ListGroups: v0-5
//
// Behavior:
//   - Lists the groups this node coordinates: running ones with their live
//     state, the others from their stored state.
//   - StatesFilter (v4+) and TypesFilter (v5+) compare case-insensitively;
//     every group is of type "classic".
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: flexible
//   - v4: StatesFilter, GroupState (KIP-518)
//   - v5: TypesFilter, GroupType (KIP-848)
var listGroupsHandler = apiHandler{key: int16(kmsg.ListGroups), minVersion: 0, maxVersion: 5, handle: handleListGroups}

func handleListGroups(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	g := s.groups()
	if g == nil {
		resp.ErrorCode = groupErrorCode(errNoCoordinator)
		respond(resp)
		return
	}
	if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool { return strings.EqualFold(t, classicGroupType) }) {
		respond(resp)
		return
	}
	var states []string
	if req.Version >= 4 {
		states = req.StatesFilter
	}
	g.List(rc.ctx, states, func(r actors.ListGroupsResult) {
		resp.ErrorCode = groupErrorCode(r.Err)
		for _, l := range r.Groups {
			rg := kmsg.NewListGroupsResponseGroup()
			rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = l.Group, l.ProtocolType, l.State, classicGroupType
			resp.Groups = append(resp.Groups, rg)
		}
		respond(resp)
	})
}
