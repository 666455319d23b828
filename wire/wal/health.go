package wal

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// handleHealth serves GET /v1/health: 200 "OK" while the node can serve
// (the original protocol's answer, byte for byte), else 503 Unavailable
// with the reasons (actors.Broker.Health: shutting down, lease renewals
// failing, metadata store unreachable). It reads what the node's owners
// published and touches no store, so it is cheap to poll.
func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	h := s.b.Health()
	if !h.OK() {
		writeError(ctx, newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "node cannot serve: "+strings.Join(h.Problems, "; ")))
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("OK")
}

// nodeStatus is the JSON shape of GET /v1/status.
type nodeStatus struct {
	Node     string   `json:"node"`
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
	// Partitions is what the node serves against its limit, and how many
	// partitions it should own by placement but refuses for that limit.
	Partitions struct {
		Serving int `json:"serving"`
		Limit   int `json:"limit"`
		Refused int `json:"refused"`
	} `json:"partitions"`
}

// handleStatus serves GET /v1/status: the health check's verdict with its
// reasons, and the partitions the node serves, may serve and refuses. It
// answers 200 whatever the verdict, so an operator can read why a node is
// unhealthy; load balancers should poll /v1/health.
func (s *Server) handleStatus(ctx *fasthttp.RequestCtx) {
	h := s.b.Health()
	st := nodeStatus{Node: s.b.NodeID(), Healthy: h.OK(), Problems: h.Problems}
	if st.Problems == nil {
		st.Problems = []string{}
	}
	st.Partitions.Serving, st.Partitions.Limit, st.Partitions.Refused = h.Partitions, h.PartitionLimit, h.PartitionsRefused
	if err := marshalJSON(ctx, st); err != nil {
		s.fail(ctx, "status", err)
	}
}
