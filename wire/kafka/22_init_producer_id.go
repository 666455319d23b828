package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID: v0-5
//
// Behavior:
//   - Without a transactional id (idempotent producers) every call gets a
//     new cluster-unique producer id from the metadata store, at epoch 0.
//     A v3+ request naming its current id and epoch also gets a new id, as
//     Kafka answers a non-transactional producer (KIP-360).
//   - With a transactional id it is INVALID_REQUEST: transactions are not
//     served yet (and not advertised).
//
// Version notes:
//   - v1: same as v0
//   - v2: flexible
//   - v3: ProducerID, ProducerEpoch (KIP-360 epoch bump)
//   - v4: PRODUCER_FENCED replaces INVALID_PRODUCER_EPOCH (transactional only)
//   - v5: KIP-890 (transactional only)
var initProducerIDHandler = apiHandler{key: int16(kmsg.InitProducerID), minVersion: 0, maxVersion: 5, handle: handleInitProducerID}

func handleInitProducerID(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		id, err := s.broker.NextProducerID(ctx)
		if err != nil {
			s.log.Warn("kafka: allocate producer id failed", "err", err)
			// Retriable: the producer asks again.
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
		return resp
	})
}
