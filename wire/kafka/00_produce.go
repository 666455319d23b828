package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
)

// Produce: v3-13
//
// Behavior:
//   - Each partition's batch is checked as Kafka's ProduceRequest does
//     (exactly one v2 batch; no zstd before v7), copied out of the request
//     frame, and appended through its partition actor; the actor validates
//     the rest (CRC, framing, sequences) and answers once the batch is in
//     object storage and committed, so acks=1 and acks=all both mean durable.
//   - acks=0 gets no response. As in Kafka, an error closes the connection
//     (after the responses owed are written), so the producer notices and
//     refreshes its metadata.
//   - TimeoutMillis bounds the wait: partitions not answered by then get
//     REQUEST_TIMED_OUT (the append may still commit, as in Kafka).
//   - Backpressure answers NOT_ENOUGH_REPLICAS with a throttle.
//   - Transactional batches are refused by the actor (INVALID_RECORD):
//     transactions are not served yet.
//
// Version notes:
//   - v0-2 carry message sets, which Morax does not store: a request at those
//     versions closes the connection. ApiVersions still lists Produce from
//     v0, as Kafka 4 does (KAFKA-18659), because older librdkafka disables
//     compression unless it sees v0.
//   - v3: RecordBatch v2 only, TransactionalID
//   - v5: LogStartOffset in response
//   - v7: zstd allowed
//   - v8: ErrorMessage, ErrorRecords
//   - v9: flexible
//   - v10: CurrentLeader/NodeEndpoints tags (not sent: one broker)
//   - v12: implicit transaction partitions (KIP-890; no transactions here)
//   - v13: topics addressed by TopicID (KIP-516)
var produceHandler = apiHandler{key: int16(kmsg.Produce), minVersion: 3, maxVersion: 13, handle: handleProduce}

func setProduceError(version int16, p *kmsg.ProduceResponseTopicPartition, code int16, msg *string) {
	p.ErrorCode = code
	p.BaseOffset, p.LogAppendTime, p.LogStartOffset = -1, -1, -1
	if version >= 8 {
		p.ErrorMessage = msg
	}
}

func handleProduce(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks

	type work struct {
		out       *kmsg.ProduceResponseTopicPartition
		topic     topicResult
		partition int32
		records   []byte
	}
	var (
		works  []work
		syncEr bool // an error known before appending (acks=0 closes the connection)
	)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	lookup := newTopicLookup(rc.ctx, s)
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		var tr topicResult
		if req.Version >= 13 {
			tr = lookup.id(rt.TopicID)
		} else {
			tr = lookup.name(rt.Topic)
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case acks != 0 && acks != 1 && acks != -1:
				setProduceError(req.Version, sp, kerr.InvalidRequiredAcks.Code, nil)
			case tr.code != 0:
				setProduceError(req.Version, sp, tr.code, nil)
				syncEr = true
			default:
				if code, msg := checkProduceRecords(req.Version, rp.Records); code != 0 {
					setProduceError(req.Version, sp, code, &msg)
					syncEr = true
					continue
				}
				works = append(works, work{out: sp, topic: tr, partition: rp.Partition, records: rp.Records})
			}
		}
	}

	if acks == 0 {
		if syncEr {
			rc.drain()
		}
		for _, w := range works {
			s.broker.Send(w.topic.topic, w.partition, &actors.Append{
				Batches:        bytes.Clone(w.records),
				ExpectedOffset: -1,
				Reply: func(r actors.AppendResult) {
					if r.Err != nil {
						rc.drain()
					}
				},
			})
		}
		respond(nil)
		return
	}

	timeout := s.replyTimeout()
	if req.TimeoutMillis > 0 {
		timeout = min(timeout, time.Duration(req.TimeoutMillis)*time.Millisecond-time.Since(rc.received))
	}
	g := newGather(len(works), timeout,
		func(i int) { setProduceError(req.Version, works[i].out, kerr.RequestTimedOut.Code, nil) },
		func() { respond(resp) })
	for i, w := range works {
		s.broker.Send(w.topic.topic, w.partition, &actors.Append{
			// The actor owns and rewrites the batch; the request frame
			// it came in may be reused or retained by nobody else.
			Batches:        bytes.Clone(w.records),
			ExpectedOffset: -1,
			Reply: func(r actors.AppendResult) {
				g.answer(i, func() {
					p := w.out
					if r.Err != nil {
						if errors.Is(r.Err, actors.ErrBackpressure) {
							resp.ThrottleMillis = int32(backpressureThrottle / time.Millisecond)
						}
						s.logUnexpected(r.Err, "produce", "topic", w.topic.topic.Name, "partition", w.partition)
						setProduceError(req.Version, p, errorCode(r.Err), errorMessage(r.Err))
						return
					}
					p.BaseOffset = r.BaseOffset
					p.LogAppendTime = r.LogAppendTime
					p.LogStartOffset = r.LogStartOffset
				})
			},
		})
	}
}

// checkProduceRecords makes the checks Kafka's ProduceRequest.validateRecords
// makes before a batch reaches the log; anything else is the partition
// actor's to check. Framing errors are left to the actor too, which reports
// them as CORRUPT_MESSAGE.
func checkProduceRecords(version int16, records []byte) (code int16, msg string) {
	if len(records) == 0 {
		return kerr.InvalidRecord.Code, fmt.Sprintf("Produce requests with version %d must have at least one record batch per partition", version)
	}
	h, err := segment.ParseHeader(records)
	switch {
	case errors.Is(err, segment.ErrBadMagic):
		return kerr.InvalidRecord.Code, fmt.Sprintf("Produce requests with version %d are only allowed to contain record batches with magic version 2", version)
	case err != nil:
		return 0, ""
	case h.Compression() == segment.CodecZstd && version < 7:
		return kerr.UnsupportedCompressionType.Code, fmt.Sprintf("Produce requests with version %d are not allowed to use ZStandard compression", version)
	case h.Size() < len(records):
		return kerr.InvalidRecord.Code, fmt.Sprintf("Produce requests with version %d are only allowed to contain exactly one record batch per partition", version)
	}
	return 0, ""
}
