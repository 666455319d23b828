package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// DescribeLogDirs: v0-4
//
// Behavior:
//   - There are no local log directories: every partition lives in object
//     storage, reported as one directory named logDirName. Sizes are the
//     partitions' committed bytes from the metadata store (partition actors
//     are not started for this). Total and usable bytes are -1: object
//     storage has no meaningful capacity.
//   - Null topics describes every topic; unknown topics and partitions are
//     left out, as Kafka leaves out what it does not host.
//
// Version notes:
//   - v0 is served although Kafka 4 dropped it: it is the same as v1.
//   - v1: same as v0 (Kafka bumped it for throttling)
//   - v2: flexible
//   - v3: top-level ErrorCode
//   - v4: TotalBytes, UsableBytes
var describeLogDirsHandler = apiHandler{key: int16(kmsg.DescribeLogDirs), minVersion: 0, maxVersion: 4, handle: handleDescribeLogDirs}

// logDirName is the one "log directory" DescribeLogDirs reports.
const logDirName = "object-storage"

func handleDescribeLogDirs(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
		dir := kmsg.NewDescribeLogDirsResponseDir()
		dir.Dir, dir.TotalBytes, dir.UsableBytes = logDirName, -1, -1
		type want struct {
			topic      actors.Topic
			partitions []int32 // nil: all
		}
		var wants []want
		if req.Topics == nil {
			ts, err := s.broker.ListTopics(ctx, "", "", 0)
			if err != nil {
				s.log.Warn("kafka describe log dirs: list topics failed", "err", err)
				dir.ErrorCode = kerr.KafkaStorageError.Code
			}
			for _, t := range ts {
				wants = append(wants, want{topic: t})
			}
		} else {
			for _, rt := range req.Topics {
				if !validTopicName(rt.Topic) {
					continue
				}
				t, err := s.broker.Topic(ctx, rt.Topic)
				if err != nil {
					s.logUnexpected(err, "describe log dirs", "topic", rt.Topic)
					continue
				}
				wants = append(wants, want{topic: t, partitions: rt.Partitions})
			}
		}
		for _, w := range wants {
			dt := kmsg.NewDescribeLogDirsResponseDirTopic()
			dt.Topic = w.topic.Name
			parts := w.partitions
			if parts == nil {
				for p := range w.topic.Partitions {
					parts = append(parts, p)
				}
			}
			for _, p := range parts {
				if p < 0 || p >= w.topic.Partitions {
					continue
				}
				size, err := s.broker.PartitionBytes(ctx, w.topic.ID, p)
				if err != nil {
					if !errors.Is(err, actors.ErrUnknownPartition) {
						s.logUnexpected(err, "describe log dirs", "topic", w.topic.Name, "partition", p)
					}
					continue
				}
				dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
				dp.Partition, dp.Size = p, size
				dt.Partitions = append(dt.Partitions, dp)
			}
			dir.Topics = append(dir.Topics, dt)
		}
		resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
		return resp
	})
}
