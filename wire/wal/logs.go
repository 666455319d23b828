package wal

import (
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
)

// maxListScans bounds the metadata pages one list request reads while
// looking for logs of the kind asked for among other topics. A page cut
// short this way still carries "next", so the client just continues.
const maxListScans = 16

// logInfo is one element of GET /v1/logs and the answer of GET
// /v1/logs/{name}. The offset fields are filled by describe only: listing
// them would start a partition actor (and take its lease) per log.
type logInfo struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Partitions  int32     `json:"partitions"`
	Partition   *int32    `json:"partition,omitempty"`
	StartOffset *int64    `json:"start_offset,omitempty"`
	EndOffset   *int64    `json:"end_offset,omitempty"`
	Bytes       *int64    `json:"bytes,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

func newLogInfo(t actors.Topic) logInfo {
	return logInfo{Name: t.Name, Kind: string(t.Kind), Partitions: t.Partitions, CreatedAt: t.CreatedAt.UTC()}
}

// handleList serves GET /v1/logs?prefix=&after=&limit=&kind=. By default it
// lists WAL logs only; kind=kafka lists Kafka topics, kind=all both.
func (s *Server) handleList(ctx *fasthttp.RequestCtx) {
	q, err := decodeList(ctx.QueryArgs())
	if err != nil {
		s.fail(ctx, "list", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	out := struct {
		Logs []logInfo `json:"logs"`
		Next string    `json:"next"`
	}{Logs: []logInfo{}}
	cursor := q.After
scan:
	for range maxListScans {
		ts, err := s.b.ListTopics(rctx, q.Prefix, cursor, q.Limit)
		if err != nil {
			s.fail(ctx, "list", err)
			return
		}
		for i, t := range ts {
			cursor = t.Name
			if q.Kind == "all" || string(t.Kind) == q.Kind {
				out.Logs = append(out.Logs, newLogInfo(t))
			}
			if len(out.Logs) == q.Limit {
				// Full. More may follow unless this was the store's last
				// topic; a client may then get one empty last page.
				if i < len(ts)-1 || len(ts) == q.Limit {
					out.Next = cursor
				}
				break scan
			}
		}
		if len(ts) < q.Limit {
			out.Next = "" // the store has no more
			break
		}
		out.Next = cursor // in case the scans run out here
	}
	if err := marshalJSON(ctx, out); err != nil {
		s.fail(ctx, "list", err)
	}
}

// handleDescribe serves GET /v1/logs/{name}?partition=N.
func (s *Server) handleDescribe(ctx *fasthttp.RequestCtx, name string) {
	if err := checkName(name); err != nil {
		s.fail(ctx, "describe", err)
		return
	}
	p, err := decodePartitionQuery(ctx.QueryArgs())
	if err != nil {
		s.fail(ctx, "describe", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	t, err := s.topic(rctx, name)
	if err != nil {
		s.fail(ctx, "describe", err)
		return
	}
	st, err := s.b.Describe(rctx, t, p)
	if err != nil {
		s.fail(ctx, "describe", err)
		return
	}
	info := newLogInfo(t)
	info.Partition, info.StartOffset, info.EndOffset, info.Bytes = &p, &st.LogStartOffset, &st.HighWatermark, &st.Bytes
	if err := marshalJSON(ctx, info); err != nil {
		s.fail(ctx, "describe", err)
	}
}

// handleDelete serves DELETE /v1/logs/{name}. Only WAL logs: deleting a
// Kafka topic is the Kafka admin API's business, and a typo here should
// not drop one.
func (s *Server) handleDelete(ctx *fasthttp.RequestCtx, name string) {
	if err := checkName(name); err != nil {
		s.fail(ctx, "delete", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	// Bypass the topic cache: the kind decides whether this may go ahead.
	t, err := s.b.RefreshTopic(rctx, name)
	if err != nil {
		s.fail(ctx, "delete", notFound(name, err))
		return
	}
	if t.Kind != actors.KindWAL {
		s.fail(ctx, "delete", fmt.Errorf("%w: %q is a %s topic; delete it through the Kafka API", actors.ErrInvalidArgument, name, t.Kind))
		return
	}
	if err := s.b.DeleteTopic(rctx, name); err != nil {
		s.fail(ctx, "delete", err)
		return
	}
	s.log.Info("WAL log deleted", "name", name)
	writeJSON(ctx, append(append([]byte(`{"name":`), strconv.Quote(name)...), '}'))
}

// handleTrim serves POST /v1/trim: {"name", "offset"} makes offset the
// log's first readable offset.
func (s *Server) handleTrim(ctx *fasthttp.RequestCtx) {
	req, err := decodeTrim(ctx.PostBody())
	if err != nil {
		s.fail(ctx, "trim", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	t, err := s.topic(rctx, req.Name)
	if err != nil {
		s.fail(ctx, "trim", err)
		return
	}
	res, err := s.b.Trim(rctx, t, req.Partition, req.Offset)
	if err != nil {
		s.fail(ctx, "trim", s.withBounds(rctx, t, req.Partition, err))
		return
	}
	body := append([]byte(`{"start_offset":`), strconv.FormatInt(res.LogStartOffset, 10)...)
	writeJSON(ctx, append(body, '}'))
}
