package wal

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
)

// handleCreate serves POST /v1/create: a WAL log is a single-partition
// topic of kind WAL, kept by the same partition actors as Kafka topics.
// The broker applies the creation limits (actors.Limits): past the node's
// creation rate the answer is 429 TooManyRequests with a Retry-After, and
// a cluster at its partition cap is 403 PermissionDenied.
func (s *Server) handleCreate(ctx *fasthttp.RequestCtx) {
	req, err := decodeCreate(ctx.PostBody())
	if err != nil {
		s.fail(ctx, "create", err)
		return
	}
	if err := s.checkStorage(req.Storage); err != nil {
		s.fail(ctx, "create", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	t, err := s.b.CreateTopic(rctx, actors.Topic{Name: req.Name, Kind: actors.KindWAL, Partitions: 1, Config: req.Config})
	if err != nil {
		s.fail(ctx, "create", err)
		return
	}
	s.log.Info("WAL log created", "name", t.Name, "id", t.ID.String())
	body := append([]byte(`{"name":`), strconv.Quote(t.Name)...)
	writeJSON(ctx, append(body, '}'))
}
