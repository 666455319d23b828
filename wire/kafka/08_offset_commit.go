package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// OffsetCommit: v0-10
//
// Behavior:
//   - Offsets (with leader epoch and metadata) are stored in the metadata
//     store before the answer, so they survive restarts.
//   - Generation -1 with an empty member id commits for a client outside
//     group management (simple consumers, admin tools) into an empty group.
//   - A topic or partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION
//     (UNKNOWN_TOPIC_ID by id at v10); the rest of the request still commits.
//   - Metadata longer than the coordinator's limit (4096 bytes by default)
//     is OFFSET_METADATA_TOO_LARGE for that partition.
//
// Version notes:
//   - v0: no generation or member (a simple commit)
//   - v1: Generation, MemberID, commit Timestamp (ignored)
//   - v2-v4: RetentionTimeMillis (ignored: offsets live until deleted)
//   - v3: ThrottleMillis
//   - v6: LeaderEpoch
//   - v7: InstanceID (KIP-345)
//   - v8: flexible
//   - v9: KIP-848 member epochs (classic groups: same as v8)
//   - v10: topics by id
var offsetCommitHandler = apiHandler{key: int16(kmsg.OffsetCommit), minVersion: 0, maxVersion: 10, handle: handleOffsetCommit}

func handleOffsetCommit(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		return s.offsetCommit(ctx, req)
	})
}

func (s *Server) offsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	cr := actors.CommitRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID), Generation: req.Generation}
	if req.Version == 0 {
		cr.MemberID, cr.Generation = "", -1
	}
	// codes[i][j] answers req.Topics[i].Partitions[j]; valid partitions
	// are sent on, and idx remembers where their answers go.
	type slot struct{ t, p int }
	var idx []slot
	lookup := newTopicLookup(ctx, s)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		var tr topicResult
		if req.Version >= 10 {
			tr = lookup.id(t.TopicID)
		} else {
			tr = lookup.name(t.Topic)
		}
		for j, p := range t.Partitions {
			switch {
			case tr.code != 0:
				codes[i][j] = tr.code
			case p.Partition < 0 || p.Partition >= tr.topic.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			default:
				epoch := p.LeaderEpoch
				if req.Version < 6 {
					epoch = -1
				}
				cr.Offsets = append(cr.Offsets, actors.OffsetCommit{
					Topic: tr.topic.Name, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: deref(p.Metadata),
				})
				idx = append(idx, slot{i, j})
			}
		}
	}
	if len(cr.Offsets) > 0 {
		var res actors.CommitResult
		g := s.groups()
		var err error
		if g == nil {
			res.Err = errNoCoordinator
		} else {
			res, err = actors.Call(ctx, "group coordinator", func(reply func(actors.CommitResult)) { g.CommitOffsets(cr, reply) })
			if err != nil {
				res.Err = err
			}
		}
		for k, sl := range idx {
			err := res.Err
			if err == nil && k < len(res.Offsets) {
				err = res.Offsets[k]
			}
			codes[sl.t][sl.p] = groupErrorCode(err)
		}
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
