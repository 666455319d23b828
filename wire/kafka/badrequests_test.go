package kafka_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/persistence/segment"
)

// badRequest is one case of TestBadInput's table of refused requests.
type badRequest struct {
	name string
	req  kmsg.Request
	// result picks the error code and message (empty when the response
	// carries none) that answer the bad part of the request.
	result func(kmsg.Response) (int16, string)
	want   int16
	// message is a piece of the message the code comes with ("" when the
	// response has no message field at that version).
	message string
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Pickers of the error answering the first entry of each response kind.
func producePart(r kmsg.Response) (int16, string) {
	p := r.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return p.ErrorCode, str(p.ErrorMessage)
}

func fetchPart(r kmsg.Response) (int16, string) {
	resp := r.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, ""
	}
	return resp.Topics[0].Partitions[0].ErrorCode, ""
}

func createTopic0(r kmsg.Response) (int16, string) {
	t := r.(*kmsg.CreateTopicsResponse).Topics[0]
	return t.ErrorCode, str(t.ErrorMessage)
}

func joinCode(r kmsg.Response) (int16, string) { return r.(*kmsg.JoinGroupResponse).ErrorCode, "" }

func commitPart(r kmsg.Response) (int16, string) {
	return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, ""
}

// batchWith returns a valid one-record batch edited by edit, CRC fixed.
func batchWith(t *testing.T, edit func(b []byte)) []byte {
	b := testBatch(t, segment.CodecNone)
	edit(b)
	return recrc(b)
}

func joinReq(group string, session int32, protocolType string, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = group, session, 10000, protocolType
	for _, name := range protocols {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = name, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
	}
	return req
}

func commitReq(group string, offset int64, metadata string) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "bad-input"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.Metadata = offset, kmsg.StringPtr(metadata)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func createReq(name string, partitions int32, replication int16, configs map[string]*string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 7, 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, replication
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, v
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchOf(topic string, maxBytes int32, partitions ...int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 12, 10, maxBytes, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// badRequestCases are the refused requests of TestBadInput.
func badRequestCases(t *testing.T, topic string) []badRequest {
	valid := func() []byte { return testBatch(t, segment.CodecNone) }
	manyPartitions := make([]int32, 50000)
	for i := range manyPartitions {
		manyPartitions[i] = -int32(i) - 1
	}
	return []badRequest{
		{name: "produce acks=3", req: produceReq(9, topic, 0, 3, valid()), result: producePart, want: kerr.InvalidRequiredAcks.Code},
		{name: "produce acks=-2", req: produceReq(9, topic, 0, -2, valid()), result: producePart, want: kerr.InvalidRequiredAcks.Code},
		{name: "produce empty topic name", req: produceReq(9, "", 0, -1, valid()), result: producePart, want: kerr.UnknownTopicOrPartition.Code},
		{name: "produce partition 2^31-1", req: produceReq(9, topic, 1<<31-1, -1, valid()), result: producePart, want: kerr.UnknownTopicOrPartition.Code},
		{name: "produce negative record count", req: produceReq(9, topic, 0, -1, batchWith(t, func(b []byte) {
			binary.BigEndian.PutUint32(b[57:], 0xFFFFFFFF)
		})), result: producePart, want: kerr.CorruptMessage.Code},
		{name: "produce batch length past the records", req: produceReq(9, topic, 0, -1, batchWith(t, func(b []byte) {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)+100))
		})), result: producePart, want: kerr.CorruptMessage.Code},
		{name: "produce magic 3", req: produceReq(9, topic, 0, -1, batchWith(t, func(b []byte) { b[16] = 3 })), result: producePart, want: kerr.InvalidRecord.Code},
		{name: "init producer id with a transactional id", req: func() kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.Version, r.TransactionalID, r.TransactionTimeoutMillis = 4, kmsg.StringPtr("tx-1"), 60000
			return r
		}(), result: func(r kmsg.Response) (int16, string) { return r.(*kmsg.InitProducerIDResponse).ErrorCode, "" }, want: kerr.InvalidRequest.Code},
		{name: "fetch negative max bytes", req: fetchOf(topic, -1, 0), result: fetchPart, want: 0},
		{name: "fetch 50000 unknown partitions", req: fetchOf(topic, 1<<20, manyPartitions...), result: func(r kmsg.Response) (int16, string) {
			ps := r.(*kmsg.FetchResponse).Topics[0].Partitions
			for _, p := range ps {
				if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					return p.ErrorCode, ""
				}
			}
			if len(ps) != len(manyPartitions) {
				return -1, "partitions missing"
			}
			return ps[0].ErrorCode, ""
		}, want: kerr.UnknownTopicOrPartition.Code},
		{name: "join empty group id", req: joinReq("", 10000, "consumer", "range"), result: joinCode, want: kerr.InvalidGroupID.Code},
		{name: "join session timeout of a day", req: joinReq("g-bad", 86400000, "consumer", "range"), result: joinCode, want: kerr.InvalidSessionTimeout.Code},
		{name: "join session timeout negative", req: joinReq("g-bad", -1, "consumer", "range"), result: joinCode, want: kerr.InvalidSessionTimeout.Code},
		{name: "join without protocols", req: joinReq("g-bad", 10000, "consumer"), result: joinCode, want: kerr.InconsistentGroupProtocol.Code},
		{name: "join empty protocol type", req: joinReq("g-bad", 10000, "", "range"), result: joinCode, want: kerr.InconsistentGroupProtocol.Code},
		{name: "heartbeat unknown member", req: func() kmsg.Request {
			r := kmsg.NewPtrHeartbeatRequest()
			r.Version, r.Group, r.MemberID, r.Generation = 4, "g-bad", "nobody", 1
			return r
		}(), result: func(r kmsg.Response) (int16, string) { return r.(*kmsg.HeartbeatResponse).ErrorCode, "" }, want: kerr.UnknownMemberID.Code},
		{name: "sync group empty group id", req: func() kmsg.Request {
			r := kmsg.NewPtrSyncGroupRequest()
			r.Version, r.MemberID, r.Generation = 5, "m", 1
			return r
		}(), result: func(r kmsg.Response) (int16, string) { return r.(*kmsg.SyncGroupResponse).ErrorCode, "" }, want: kerr.InvalidGroupID.Code},
		{name: "commit to an unknown topic", req: func() kmsg.Request {
			r := commitReq("g-commit", 0, "")
			r.Topics[0].Topic = "no-such-topic"
			return r
		}(), result: commitPart, want: kerr.UnknownTopicOrPartition.Code},
		{name: "commit with a generation to a group that has none", req: func() kmsg.Request {
			r := commitReq("g-commit", 0, "")
			r.Generation, r.MemberID = 3, "ghost"
			return r
		}(), result: commitPart, want: kerr.IllegalGeneration.Code},
		{name: "commit metadata too large", req: commitReq("g-commit", 0, strings.Repeat("m", 5000)), result: commitPart, want: kerr.OffsetMetadataTooLarge.Code},
		{name: "metadata name too long", req: func() kmsg.Request {
			r := kmsg.NewPtrMetadataRequest()
			r.Version, r.AllowAutoTopicCreation = 12, true
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(strings.Repeat("t", 300))
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode, "" }, want: kerr.InvalidTopicException.Code},
		{name: "metadata invalid name without auto-create", req: func() kmsg.Request {
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 12
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("bad/name")
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode, "" }, want: kerr.UnknownTopicOrPartition.Code},
		{name: "create replication factor 0", req: createReq("c-rf0", 1, 0, nil), result: createTopic0, want: kerr.InvalidReplicationFactor.Code, message: "Replication factor"},
		{name: "create replication factor -2", req: createReq("c-rfm2", 1, -2, nil), result: createTopic0, want: kerr.InvalidReplicationFactor.Code, message: "Replication factor"},
		{name: "create 0 partitions", req: createReq("c-p0", 0, 1, nil), result: createTopic0, want: kerr.InvalidPartitions.Code, message: "partitions"},
		{name: "create -5 partitions", req: createReq("c-pm5", -5, 1, nil), result: createTopic0, want: kerr.InvalidPartitions.Code, message: "partitions"},
		{name: "create 2^31-1 partitions", req: createReq("c-huge", 1<<31-1, 1, nil), result: createTopic0, want: kerr.InvalidPartitions.Code, message: "max_partitions_per_topic"},
		{name: "create partitions to 2^31-1", req: func() kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			r.Version, r.TimeoutMillis = 3, 10000
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = topic, 1<<31-1
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) {
			t := r.(*kmsg.CreatePartitionsResponse).Topics[0]
			return t.ErrorCode, str(t.ErrorMessage)
		}, want: kerr.InvalidPartitions.Code, message: "max_partitions_per_topic"},
		{name: "create unknown config", req: createReq("c-cfg", 1, 1, map[string]*string{"no.such.config": kmsg.StringPtr("1")}), result: createTopic0, want: kerr.InvalidConfig.Code, message: "no.such.config"},
		{name: "create config value out of range", req: createReq("c-cfg2", 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("-7")}), result: createTopic0, want: kerr.InvalidConfig.Code, message: "retention.ms"},
		{name: "create null config value", req: createReq("c-cfg3", 1, 1, map[string]*string{"retention.ms": nil}), result: createTopic0, want: kerr.InvalidConfig.Code, message: "retention.ms"},
		{name: "create partitions fewer than now", req: func() kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			r.Version, r.TimeoutMillis = 3, 10000
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = topic, 1
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) {
			t := r.(*kmsg.CreatePartitionsResponse).Topics[0]
			return t.ErrorCode, str(t.ErrorMessage)
		}, want: kerr.InvalidPartitions.Code, message: "2"},
		{name: "delete records at a negative offset", req: func() kmsg.Request {
			r := kmsg.NewPtrDeleteRecordsRequest()
			r.Version, r.TimeoutMillis = 2, 10000
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = -7
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) {
			return r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode, ""
		}, want: kerr.OffsetOutOfRange.Code},
		{name: "delete unknown topic", req: func() kmsg.Request {
			r := kmsg.NewPtrDeleteTopicsRequest()
			r.Version, r.TimeoutMillis = 6, 10000
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr("no-such-topic")
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) {
			t := r.(*kmsg.DeleteTopicsResponse).Topics[0]
			return t.ErrorCode, str(t.ErrorMessage)
		}, want: kerr.UnknownTopicOrPartition.Code},
		{name: "alter config to an invalid value", req: func() kmsg.Request {
			r := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r.Version = 1
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			rc.Name, rc.Op, rc.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("soon")
			rr.Configs = append(rr.Configs, rc)
			r.Resources = append(r.Resources, rr)
			return r
		}(), result: func(r kmsg.Response) (int16, string) {
			rr := r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
			return rr.ErrorCode, str(rr.ErrorMessage)
		}, want: kerr.InvalidConfig.Code, message: "retention.ms"},
		{name: "list offsets unknown timestamp kind", req: func() kmsg.Request {
			r := kmsg.NewPtrListOffsetsRequest()
			r.Version = 7
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = -9
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		}(), result: func(r kmsg.Response) (int16, string) {
			return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode, ""
		}, want: kerr.InvalidRequest.Code},
		{name: "delete unknown group", req: func() kmsg.Request {
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.Version, r.Groups = 2, []string{"no-such-group"}
			return r
		}(), result: func(r kmsg.Response) (int16, string) { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, "" }, want: kerr.GroupIDNotFound.Code},
	}
}
