package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/morax-dev/morax/actors"
)

// groupHandlers are the consumer-group APIs (classic protocol), served by
// the coordinator in Config.Groups.
func groupHandlers() []apiHandler {
	return []apiHandler{
		offsetCommitHandler,
		offsetFetchHandler,
		findCoordinatorHandler,
		joinGroupHandler,
		heartbeatHandler,
		leaveGroupHandler,
		syncGroupHandler,
		describeGroupsHandler,
		listGroupsHandler,
		deleteGroupsHandler,
		offsetDeleteHandler,
	}
}

// consumerProtocolType is the protocol type of Kafka consumers, whose
// member metadata and assignments have a format the broker understands.
const consumerProtocolType = "consumer"

// classicGroupType is what ListGroups v5+ and friends call a group of the
// classic protocol, the only kind served.
const classicGroupType = "classic"

// groupAllOps are the operations on a group, as a DescribeGroups
// authorized-operations bit field (READ, DELETE, DESCRIBE): no ACLs yet.
const groupAllOps = 1<<aclOpRead | 1<<aclOpDelete | 1<<aclOpDescribe

// errNoCoordinator answers group requests on a server built without a
// coordinator.
var errNoCoordinator = fmt.Errorf("%w: no group coordinator configured", actors.ErrCoordinatorNotAvailable)

// groups returns the coordinator, or nil when the server has none (the
// caller answers errNoCoordinator).
func (s *Server) groups() *actors.Groups { return s.cfg.Groups }

// groupErrorCode maps a coordinator error to the code Kafka's group
// coordinator sends for it.
func groupErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, actors.ErrInvalidGroupID):
		return kerr.InvalidGroupID.Code
	case errors.Is(err, actors.ErrInvalidSessionTimeout):
		return kerr.InvalidSessionTimeout.Code
	case errors.Is(err, actors.ErrInconsistentGroupProtocol):
		return kerr.InconsistentGroupProtocol.Code
	case errors.Is(err, actors.ErrMemberIDRequired):
		return kerr.MemberIDRequired.Code
	case errors.Is(err, actors.ErrUnknownMemberID):
		return kerr.UnknownMemberID.Code
	case errors.Is(err, actors.ErrIllegalGeneration):
		return kerr.IllegalGeneration.Code
	case errors.Is(err, actors.ErrRebalanceInProgress):
		return kerr.RebalanceInProgress.Code
	case errors.Is(err, actors.ErrFencedInstanceID):
		return kerr.FencedInstanceID.Code
	case errors.Is(err, actors.ErrGroupMaxSizeReached):
		return kerr.GroupMaxSizeReached.Code
	case errors.Is(err, actors.ErrNotCoordinator):
		return kerr.NotCoordinator.Code
	case errors.Is(err, actors.ErrCoordinatorNotAvailable), errors.Is(err, actors.ErrShuttingDown):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, actors.ErrGroupIDNotFound):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, actors.ErrNonEmptyGroup):
		return kerr.NonEmptyGroup.Code
	case errors.Is(err, actors.ErrGroupSubscribedToTopic):
		return kerr.GroupSubscribedToTopic.Code
	case errors.Is(err, actors.ErrOffsetMetadataTooLarge):
		return kerr.OffsetMetadataTooLarge.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The client gave up or the server is closing: retriable.
		return kerr.CoordinatorNotAvailable.Code
	default:
		return errorCode(err)
	}
}

// groupErrorMessage is the message sent with a group error code in
// versions that carry one; store failures get the code's description
// (their details are for the log).
func groupErrorMessage(err error) *string {
	if err == nil {
		return nil
	}
	switch code := groupErrorCode(err); code {
	case kerr.CoordinatorNotAvailable.Code, kerr.UnknownServerError.Code, kerr.KafkaStorageError.Code:
		return strPtr(kerr.TypedErrorForCode(code).Description)
	}
	return strPtr(err.Error())
}

// clientHost is the client's address as Kafka reports it in
// DescribeGroups ("/ip"), from the connection id ("ip:port#seq").
func clientHost(rc *requestContext) string {
	addr, _, _ := strings.Cut(rc.conn, "#")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return "/" + host
}

// deref is *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// optString is nil for "", else a pointer to s: nullable strings that
// Kafka sends as null when unset (instance ids).
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// millis converts a Kafka millisecond field.
func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
