package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// Metadata: v0-13
//
// Behavior:
//   - This node is the only broker, the controller, and the leader of every
//     partition; the leader epoch is the partition's lease epoch (-1 before
//     any node has opened the partition).
//   - v0 with no topics, or v1+ with null topics, lists every topic (Kafka
//     and WAL topics alike: one log, two protocols).
//   - A missing topic is created when the server allows auto-creation and
//     the request does (v4+; always before v4), with the default partition
//     count; an illegal name then gets INVALID_TOPIC_EXCEPTION, as in Kafka.
//     The new topic is answered at once, without LEADER_NOT_AVAILABLE: its
//     partitions are usable immediately.
//   - One request auto-creates at most limits.max_auto_create_per_request
//     topics, and creations take from the node's creation rate like any
//     other (actors.Limits). A topic not created for a limit (or the
//     cluster's partition cap) is answered UNKNOWN_TOPIC_OR_PARTITION, as
//     if auto-creation were off: clients retry it, and a later request
//     creates more. Once a limit refuses one of its creations, a request
//     creates no more.
//   - Topics asked by id (v12+ allows a null name) answer UNKNOWN_TOPIC_ID
//     when unknown.
//   - Authorized operations, when asked for, are "everything": there are no
//     ACLs yet.
//
// Version notes:
//   - v1: ControllerID, IsInternal, Rack; null topics means all
//   - v2: ClusterID
//   - v4: AllowAutoTopicCreation
//   - v5: OfflineReplicas
//   - v7: LeaderEpoch
//   - v8: authorized operations
//   - v9: flexible
//   - v10: TopicID
//   - v12: topics by id only
//   - v13: top-level ErrorCode (KIP-1102; always 0)
var metadataHandler = apiHandler{key: int16(kmsg.Metadata), minVersion: 0, maxVersion: 13, handle: handleMetadata}

// Kafka ACL operation numbers, for authorized-operation bit fields.
const (
	aclOpRead            = 3
	aclOpWrite           = 4
	aclOpCreate          = 5
	aclOpDelete          = 6
	aclOpAlter           = 7
	aclOpDescribe        = 8
	aclOpClusterAction   = 9
	aclOpDescribeConfigs = 10
	aclOpAlterConfigs    = 11
	aclOpIdempotentWrite = 12
)

// All operations on a topic and on the cluster, as bit fields.
const (
	topicAllOps = 1<<aclOpRead | 1<<aclOpWrite | 1<<aclOpCreate | 1<<aclOpDelete | 1<<aclOpAlter |
		1<<aclOpDescribe | 1<<aclOpDescribeConfigs | 1<<aclOpAlterConfigs
	clusterAllOps = 1<<aclOpCreate | 1<<aclOpAlter | 1<<aclOpDescribe | 1<<aclOpClusterAction |
		1<<aclOpDescribeConfigs | 1<<aclOpAlterConfigs | 1<<aclOpIdempotentWrite
)

func handleMetadata(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.MetadataRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		return s.metadata(ctx, req)
	})
}

func (s *Server) metadata(ctx context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	view := s.broker.ClusterView()
	brokers, controller := s.brokers(view)
	for _, bi := range brokers {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = bi.id, bi.host, bi.port
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = strPtr(s.cfg.ClusterID)
	resp.ControllerID = controller
	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterAllOps
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	// Resolve the topics first, so leases are read once for all of them.
	type entry struct {
		topic actors.Topic
		code  int16
		name  *string
		id    [16]byte
	}
	var entries []entry
	if all {
		ts, err := s.broker.ListTopics(ctx, "", "", 0)
		if err != nil {
			s.log.Warn("kafka metadata: list topics failed", "err", err)
			// Nothing to list is wrong, but clients retry on an error
			// only per topic; an empty answer makes them ask again.
			ts = nil
		}
		for _, t := range ts {
			entries = append(entries, entry{topic: t, name: strPtr(t.Name), id: t.ID})
		}
	} else {
		allowance := s.broker.AutoCreateAllowance()
		// A request naming many topics is resolved from one listing
		// rather than one store read per name: 20,000 names would
		// otherwise cost 20,000 reads (issue #12, F3).
		var listed map[string]actors.Topic
		if len(req.Topics) > bulkMetadataTopics {
			ts, err := s.broker.ListTopics(ctx, "", "", 0)
			if err != nil {
				s.log.Warn("kafka metadata: list topics failed", "err", err)
			} else {
				listed = make(map[string]actors.Topic, len(ts))
				for _, t := range ts {
					listed[t.Name] = t
				}
			}
		}
		for _, rt := range req.Topics {
			if rt.Topic == nil {
				t, err := s.broker.TopicByID(ctx, actors.TopicID(rt.TopicID))
				e := entry{topic: t, id: rt.TopicID, code: errorCode(err)}
				if err != nil {
					s.logUnexpected(err, "metadata by topic id")
					if e.code == kerr.UnknownTopicOrPartition.Code {
						e.code = kerr.UnknownTopicID.Code
					}
				} else {
					e.name = strPtr(t.Name)
				}
				entries = append(entries, e)
				continue
			}
			name := *rt.Topic
			if t, ok := listed[name]; ok {
				entries = append(entries, entry{topic: t, name: strPtr(name), id: t.ID})
				continue
			}
			if listed != nil && (!autoCreate || allowance <= 0 || !validTopicName(name)) {
				// Not listed, and not to be created: unknown without
				// asking the store again.
				code := kerr.UnknownTopicOrPartition.Code
				switch {
				case autoCreate && !validTopicName(name):
					code = kerr.InvalidTopicException.Code
				case autoCreate:
					s.broker.RefuseAutoCreate()
				}
				entries = append(entries, entry{code: code, name: strPtr(name)})
				continue
			}
			t, code, outcome := s.metadataTopic(ctx, name, autoCreate && allowance > 0, autoCreate)
			switch outcome {
			case autoCreated:
				allowance--
			case autoCreateRefused:
				// The node refused a creation for a limit (its rate, the
				// cluster's cap): the request creates no more, or every
				// name left would cost a store read and a refusal.
				allowance = 0
			}
			entries = append(entries, entry{topic: t, code: code, name: strPtr(name), id: t.ID})
		}
	}

	var epochs map[actors.PartitionKey]int32
	if view == nil {
		var topics []actors.Topic
		for _, e := range entries {
			if e.code == 0 {
				topics = append(topics, e.topic)
			}
		}
		epochs = s.leaderEpochs(ctx, topics)
	}

	resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(entries))
	for _, e := range entries {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID, mt.ErrorCode = e.name, e.id, e.code
		if req.Version >= 8 && req.IncludeTopicAuthorizedOperations && e.code == 0 {
			mt.AuthorizedOperations = topicAllOps
		}
		if e.code == 0 {
			mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, e.topic.Partitions)
			for p := range e.topic.Partitions {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition = p
				mp.OfflineReplicas = []int32{}
				if view != nil {
					leader, epoch, ok := s.partitionLeader(view, e.topic.ID, p)
					mp.Leader, mp.LeaderEpoch = leader, epoch
					mp.Replicas, mp.ISR = []int32{leader}, []int32{leader}
					if !ok {
						// Vacant while a node takes it over: clients wait
						// and ask again.
						mp.ErrorCode = kerr.LeaderNotAvailable.Code
						mp.Replicas, mp.ISR = []int32{}, []int32{}
					}
					mt.Partitions[p] = mp
					continue
				}
				mp.Leader = s.brokerID()
				mp.LeaderEpoch = -1
				if ep, ok := epochs[actors.PartitionKey{TopicID: e.topic.ID, Partition: p}]; ok {
					mp.LeaderEpoch = ep
				}
				mp.Replicas = []int32{s.brokerID()}
				mp.ISR = []int32{s.brokerID()}
				mt.Partitions[p] = mp
			}
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

// bulkMetadataTopics is how many named topics a Metadata request may ask
// for before they are resolved from one listing of all topics instead of
// one store read each.
const bulkMetadataTopics = 100

// autoCreateOutcome says what metadataTopic did about creating a topic.
type autoCreateOutcome int

const (
	autoCreateNone    autoCreateOutcome = iota // it created nothing
	autoCreated                                // it created the topic
	autoCreateRefused                          // a limit refused the creation
)

// metadataTopic resolves one named topic, creating it when autoCreate
// says so. asked says the request asked for auto-creation (and the server
// allows it), which autoCreate may deny for the request's allowance; then
// the topic is answered as unknown and the refusal counted.
func (s *Server) metadataTopic(ctx context.Context, name string, autoCreate, asked bool) (actors.Topic, int16, autoCreateOutcome) {
	if !validTopicName(name) {
		if asked {
			return actors.Topic{}, kerr.InvalidTopicException.Code, autoCreateNone
		}
		return actors.Topic{}, kerr.UnknownTopicOrPartition.Code, autoCreateNone
	}
	// Read through the cache: another node may have grown the topic.
	t, err := s.broker.RefreshTopic(ctx, name)
	if err == nil {
		return t, 0, autoCreateNone
	}
	if !errors.Is(err, actors.ErrUnknownTopic) || !asked {
		s.logUnexpected(err, "metadata", "topic", name)
		return actors.Topic{}, errorCode(err), autoCreateNone
	}
	if !autoCreate {
		s.broker.RefuseAutoCreate()
		return actors.Topic{}, kerr.UnknownTopicOrPartition.Code, autoCreateNone
	}
	t, err = s.broker.CreateTopic(ctx, actors.Topic{Name: name, Kind: actors.KindKafka, Partitions: s.cfg.DefaultPartitions})
	outcome := autoCreated
	if errors.Is(err, actors.ErrTopicExists) {
		// Another client created it first.
		outcome = autoCreateNone
		t, err = s.broker.RefreshTopic(ctx, name)
	}
	switch {
	case errors.Is(err, actors.ErrThrottled), errors.Is(err, actors.ErrLimitReached), errors.Is(err, actors.ErrTooManyPartitions):
		// Counted by the broker; Metadata has no code for a refused
		// creation that clients would retry, so the topic is unknown.
		s.log.Debug("kafka metadata: auto-create refused by a limit", "topic", name, "err", err)
		return actors.Topic{}, kerr.UnknownTopicOrPartition.Code, autoCreateRefused
	case err != nil:
		s.log.Warn("kafka metadata: auto-create topic failed", "topic", name, "err", err)
		return actors.Topic{}, errorCode(err), autoCreateNone
	}
	if outcome == autoCreated {
		s.log.Info("auto-created topic", "topic", name, "partitions", t.Partitions)
	}
	return t, 0, outcome
}

// leaderEpochs returns the lease epoch of every partition of topics that
// has a lease. A failure only costs the epochs: clients treat -1 as
// "unknown" and skip fencing checks.
func (s *Server) leaderEpochs(ctx context.Context, topics []actors.Topic) map[actors.PartitionKey]int32 {
	epochs, err := s.broker.LeaderEpochs(ctx, topics)
	if err != nil && ctx.Err() == nil { // a client that hung up is not worth a warning
		s.log.Warn("kafka metadata: read partition leases failed", "err", err)
	}
	return epochs
}
