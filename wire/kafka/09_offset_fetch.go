package kafka

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// OffsetFetch: v0-10
//
// Behavior:
//   - A partition (or a whole group) without a commit answers offset -1,
//     leader epoch -1, no error, as Kafka does.
//   - Null topics (v2+) return every committed offset of the group.
//   - A fetch sees every commit of the group answered before it arrived.
//   - RequireStable (v7+) changes nothing: without transactions no offset
//     is ever pending.
//   - v8+ fetches several groups at once, each answered on its own.
//
// Version notes:
//   - v1: same as v0 (offsets in the coordinator, not ZooKeeper)
//   - v2: null topics means all; top-level ErrorCode
//   - v3: ThrottleMillis
//   - v5: LeaderEpoch
//   - v6: flexible
//   - v7: RequireStable
//   - v8: Groups batch (KIP-709)
//   - v9: MemberID, MemberEpoch (KIP-848; ignored for classic groups)
//   - v10: topics by id
var offsetFetchHandler = apiHandler{key: int16(kmsg.OffsetFetch), minVersion: 0, maxVersion: 10, handle: handleOffsetFetch}

func handleOffsetFetch(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		return s.offsetFetch(ctx, req)
	})
}

func (s *Server) offsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = req.Group
		if req.Topics != nil || req.Version < 2 {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		}
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = t.Topic, t.Partitions
			rg.Topics = append(rg.Topics, rt)
		}
		g := s.offsetFetchGroup(ctx, req.Version, rg)
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				if req.Version < 2 && g.ErrorCode != 0 {
					// No top-level error before v2: each partition carries it.
					rp.ErrorCode = g.ErrorCode
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(req.Groups))
	var wg sync.WaitGroup
	for i, rg := range req.Groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp.Groups[i] = s.offsetFetchGroup(ctx, req.Version, rg)
		}()
	}
	wg.Wait()
	return resp
}

// offsetFetchGroup answers one group of an OffsetFetch.
func (s *Server) offsetFetchGroup(ctx context.Context, version int16, rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	lookup := newTopicLookup(ctx, s)
	// Topics asked by id (v10) are fetched by name; unknown ids are
	// answered UNKNOWN_TOPIC_ID without asking the coordinator.
	names := make([]string, len(rg.Topics))
	idErr := make([]int16, len(rg.Topics))
	var fetchTopics []string
	if rg.Topics != nil {
		fetchTopics = []string{}
	}
	for i, t := range rg.Topics {
		names[i] = t.Topic
		if version >= 10 {
			tr := lookup.id(t.TopicID)
			if tr.code != 0 {
				idErr[i] = tr.code
				continue
			}
			names[i] = tr.topic.Name
		}
		fetchTopics = append(fetchTopics, names[i])
	}
	var res actors.FetchOffsetsResult
	if g := s.groups(); g == nil {
		res.Err = errNoCoordinator
	} else if rg.Topics == nil || len(fetchTopics) > 0 {
		var err error
		res, err = actors.Call(ctx, "group coordinator", func(reply func(actors.FetchOffsetsResult)) {
			g.FetchOffsets(actors.FetchOffsetsRequest{Group: rg.Group, Topics: fetchTopics}, reply)
		})
		if err != nil {
			res.Err = err
		}
	}
	if res.Err != nil {
		sg.ErrorCode = groupErrorCode(res.Err)
		if version >= 2 {
			return sg
		}
	}
	type key struct {
		topic     string
		partition int32
	}
	commits := make(map[key]actors.OffsetCommit, len(res.Offsets))
	for _, o := range res.Offsets {
		commits[key{o.Topic, o.Partition}] = o
	}
	fill := func(p *kmsg.OffsetFetchResponseGroupTopicPartition, o actors.OffsetCommit, ok bool) {
		p.Offset, p.LeaderEpoch, p.Metadata = -1, -1, strPtr("")
		if ok {
			p.Offset, p.LeaderEpoch, p.Metadata = o.Offset, o.LeaderEpoch, strPtr(o.Metadata)
		}
	}
	if rg.Topics == nil {
		// Every committed offset, grouped by topic in the store's order.
		byTopic := map[string]int{}
		for _, o := range res.Offsets {
			i, ok := byTopic[o.Topic]
			if !ok {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = o.Topic
				if version >= 10 {
					tr := lookup.name(o.Topic)
					if tr.code != 0 {
						continue // its topic is gone
					}
					st.TopicID = tr.topic.ID
				}
				i = len(sg.Topics)
				byTopic[o.Topic] = i
				sg.Topics = append(sg.Topics, st)
			}
			sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			sp.Partition = o.Partition
			fill(&sp, o, true)
			sg.Topics[i].Partitions = append(sg.Topics[i].Partitions, sp)
		}
		return sg
	}
	for i, t := range rg.Topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic, st.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			sp.Partition = p
			o, ok := commits[key{names[i], p}]
			fill(&sp, o, ok)
			if idErr[i] != 0 {
				sp.ErrorCode = idErr[i]
			}
			st.Partitions = append(st.Partitions, sp)
		}
		sg.Topics = append(sg.Topics, st)
	}
	return sg
}
