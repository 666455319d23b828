package wal

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
)

// Error codes of the WAL API, sent as {"code": ..., "message": ...} with a
// non-2xx status. The original protocol had only CodeUnexpected; the rest
// follow its PascalCase style. The table in doc.go lists their statuses.
const (
	CodeUnexpected       = "Unexpected"       // 500: anything not below
	CodeNotFound         = "NotFound"         // 404: unknown log, partition or endpoint
	CodeAlreadyExists    = "AlreadyExists"    // 409: create of an existing name
	CodeInvalidArgument  = "InvalidArgument"  // 400: malformed or out-of-domain request
	CodeConflict         = "Conflict"         // 409: expected_offset is not the log's end
	CodeOffsetOutOfRange = "OffsetOutOfRange" // 416: offset outside the log
	CodePayloadTooLarge  = "PayloadTooLarge"  // 413: body or entry over its limit
	CodeTooManyRequests  = "TooManyRequests"  // 429: node buffers full; retry
	CodeUnavailable      = "Unavailable"      // 503: storage, ownership or shutdown; retry
	CodeMethodNotAllowed = "MethodNotAllowed" // 405: wrong HTTP method
	CodePermissionDenied = "PermissionDenied" // 403: refused by the node's configuration
	CodeUnimplemented    = "Unimplemented"    // 501: not supported by this node
)

// Errors of this layer that have no broker counterpart.
var (
	// errPermissionDenied: the node's configuration forbids the request.
	errPermissionDenied = errors.New("permission denied")
	// errUnimplemented: understood, not supported by this node yet.
	errUnimplemented = errors.New("not implemented")
	// errClosing: the server is shutting down.
	errClosing = errors.New("WAL server shutting down")
)

// apiError is one error response.
type apiError struct {
	status  int
	code    string
	message string
	// startOffset and endOffset are the log's bounds when known (Conflict,
	// OffsetOutOfRange), else -1. Additive fields: the original client
	// ignores them.
	startOffset, endOffset int64
	// internal marks a server-side failure: the message sent is generic and
	// the cause is logged instead, so storage or database details (hosts,
	// paths) stay out of client responses.
	internal bool
	// inStream marks an error sent as a tail stream's error event, after the
	// response status (200) went out; the body then carries the status the
	// error would have had.
	inStream bool
	// retryAfter is the Retry-After of a 429 or 503, when the node knows
	// it (a creation refused for the node's rate); else one second.
	retryAfter time.Duration
}

func newAPIError(status int, code, message string) apiError {
	return apiError{status: status, code: code, message: message, startOffset: -1, endOffset: -1}
}

// classify maps an error to its response. It tests sentinels with
// errors.Is, never messages.
func classify(err error) apiError {
	var ce *actors.ConflictError
	switch {
	case errors.As(err, &ce):
		e := newAPIError(fasthttp.StatusConflict, CodeConflict, err.Error())
		e.endOffset = ce.End
		return e
	case errors.Is(err, actors.ErrConflict):
		return newAPIError(fasthttp.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, actors.ErrUnknownTopic), errors.Is(err, actors.ErrUnknownPartition):
		return newAPIError(fasthttp.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, actors.ErrTopicExists):
		return newAPIError(fasthttp.StatusConflict, CodeAlreadyExists, err.Error())
	case errors.Is(err, actors.ErrOffsetOutOfRange):
		e := newAPIError(fasthttp.StatusRequestedRangeNotSatisfiable, CodeOffsetOutOfRange, err.Error())
		var re *rangeError
		if errors.As(err, &re) {
			e.startOffset, e.endOffset = re.start, re.end
		}
		return e
	case errors.Is(err, actors.ErrThrottled):
		e := newAPIError(fasthttp.StatusTooManyRequests, CodeTooManyRequests, err.Error())
		e.retryAfter = actors.ThrottleWait(err)
		return e
	case errors.Is(err, actors.ErrLimitReached):
		return newAPIError(fasthttp.StatusForbidden, CodePermissionDenied, err.Error())
	case errors.Is(err, actors.ErrTooManyPartitions):
		return newAPIError(fasthttp.StatusBadRequest, CodeInvalidArgument, err.Error())
	case errors.Is(err, actors.ErrMessageTooLarge):
		return newAPIError(fasthttp.StatusRequestEntityTooLarge, CodePayloadTooLarge, err.Error())
	case errors.Is(err, actors.ErrInvalidArgument), errors.Is(err, actors.ErrInvalidRecord):
		return newAPIError(fasthttp.StatusBadRequest, CodeInvalidArgument, err.Error())
	case errors.Is(err, errPermissionDenied):
		return newAPIError(fasthttp.StatusForbidden, CodePermissionDenied, err.Error())
	case errors.Is(err, errUnimplemented):
		return newAPIError(fasthttp.StatusNotImplemented, CodeUnimplemented, err.Error())
	case errors.Is(err, actors.ErrBackpressure):
		e := newAPIError(fasthttp.StatusTooManyRequests, CodeTooManyRequests, "the node's buffers are full; retry shortly")
		e.internal = true
		return e
	case errors.Is(err, errClosing), errors.Is(err, actors.ErrShuttingDown):
		return newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "the node is shutting down; retry on another node")
	case errors.Is(err, actors.ErrNotOwner):
		e := newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "the log is moving between nodes; retry shortly")
		e.internal = true
		return e
	case errors.Is(err, actors.ErrOutcomeUnknown):
		e := newAPIError(fasthttp.StatusGatewayTimeout, CodeUnavailable,
			"the append was passed to the node that serves the log but its answer was lost: it may or may not have been applied; read the log's end before retrying")
		e.internal = true
		return e
	case errors.Is(err, actors.ErrUnreachable):
		e := newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "the node that serves the log did not answer; retry shortly")
		e.internal = true
		return e
	case errors.Is(err, actors.ErrStorage):
		e := newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "storage unavailable; nothing was acknowledged, retry")
		e.internal = true
		return e
	case errors.Is(err, context.DeadlineExceeded):
		e := newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "the request timed out on the node; retry")
		e.internal = true
		return e
	case errors.Is(err, context.Canceled):
		return newAPIError(fasthttp.StatusServiceUnavailable, CodeUnavailable, "the request was canceled on the node; retry")
	}
	e := newAPIError(fasthttp.StatusInternalServerError, CodeUnexpected, "unexpected error; the node's log has details")
	e.internal = true
	return e
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up so a
// client that honours it is not refused again, and at least one.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// appendErrorJSON appends e's JSON body: code and message first, as the
// original protocol had them, then the additive offset fields.
func appendErrorJSON(dst []byte, e apiError) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendQuote(dst, e.code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.message)
	if e.startOffset >= 0 {
		dst = append(dst, `,"start_offset":`...)
		dst = strconv.AppendInt(dst, e.startOffset, 10)
	}
	if e.endOffset >= 0 {
		dst = append(dst, `,"end_offset":`...)
		dst = strconv.AppendInt(dst, e.endOffset, 10)
	}
	if e.inStream {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(e.status), 10)
	}
	return append(dst, '}')
}

// writeError sends e.
func writeError(ctx *fasthttp.RequestCtx, e apiError) {
	ctx.Response.Reset()
	ctx.SetStatusCode(e.status)
	ctx.SetContentType(contentTypeJSON)
	if e.status == fasthttp.StatusTooManyRequests || e.status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", retryAfterSeconds(e.retryAfter))
	}
	ctx.SetBody(appendErrorJSON(nil, e))
}

// fail answers the request with the error err maps to, logging server-side
// failures with their cause (never the request body: it may hold
// credentials).
func (s *Server) fail(ctx *fasthttp.RequestCtx, op string, err error) {
	if s.baseCtx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errClosing // cut short by Close, not by anything the client did
	}
	e := classify(err)
	switch {
	case moved(op, err):
		// Routine while a partition changes hands; the broker retried it
		// until the request's time was up.
		s.log.Debug("WAL request refused: partition moving", "op", op, "status", e.status, "err", err)
	case e.internal && e.status >= 500:
		s.log.Warn("WAL request failed", "op", op, "status", e.status, "err", err)
	case e.internal:
		s.log.Debug("WAL request refused", "op", op, "status", e.status, "err", err)
	}
	writeError(ctx, e)
}

// moved reports whether err refuses a request of op without acting on it
// because the partition is not (or no longer) served where it was sent: it
// is safe to send again once the owner has been looked up afresh, appends
// included. A request canceled by the server closing is, except an append,
// which may have been applied.
func moved(op string, err error) bool {
	switch {
	case errors.Is(err, actors.ErrNotOwner), errors.Is(err, actors.ErrShuttingDown), errors.Is(err, actors.ErrUnreachable):
		return true
	case errors.Is(err, errClosing):
		return op != "append"
	}
	return false
}

// errorHandler answers requests fasthttp rejects before a handler runs:
// bodies over the limit, malformed HTTP, timeouts.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, newAPIError(fasthttp.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"request body exceeds the node's limit of "+strconv.Itoa(s.cfg.MaxBodyBytes)+" bytes"))
	case errors.As(err, &small):
		writeError(ctx, newAPIError(fasthttp.StatusRequestHeaderFieldsTooLarge, CodeInvalidArgument, "request headers too large"))
	case errors.As(err, &ne) && ne.Timeout():
		writeError(ctx, newAPIError(fasthttp.StatusRequestTimeout, CodeInvalidArgument, "timed out reading the request"))
	default:
		writeError(ctx, newAPIError(fasthttp.StatusBadRequest, CodeInvalidArgument, "malformed HTTP request"))
	}
}
