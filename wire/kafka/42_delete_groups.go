package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-3
//
// Behavior:
//   - Deletes empty groups with their committed offsets; a group with
//     members is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
//
// Version notes:
//   - v1: same as v0
//   - v2: flexible
//   - v3: ErrorMessage
var deleteGroupsHandler = apiHandler{key: int16(kmsg.DeleteGroups), minVersion: 0, maxVersion: 3, handle: handleDeleteGroups}

func handleDeleteGroups(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	answer := func(errs []error) {
		for i, name := range req.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group = name
			if i < len(errs) && errs[i] != nil {
				rg.ErrorCode = groupErrorCode(errs[i])
				if req.Version >= 3 {
					rg.ErrorMessage = groupErrorMessage(errs[i])
				}
			}
			resp.Groups = append(resp.Groups, rg)
		}
		respond(resp)
	}
	g := s.groups()
	if g == nil {
		errs := make([]error, len(req.Groups))
		for i := range errs {
			errs[i] = errNoCoordinator
		}
		answer(errs)
		return
	}
	g.Delete(req.Groups, answer)
}
