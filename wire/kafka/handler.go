package kafka

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiHandler serves one Kafka API key. The ApiVersions answer is built from
// the table of handlers, so it never advertises what is not served.
type apiHandler struct {
	key        int16
	minVersion int16
	maxVersion int16
	// handle answers req, already decoded at its version. It calls respond
	// exactly once: with the response (its version set to req's), or with
	// nil when no response is sent (Produce with acks=0). It may call
	// respond later and from any goroutine; the connection writes responses
	// in request order regardless.
	handle func(s *Server, rc *requestContext, req kmsg.Request, respond func(kmsg.Response))
}

// requestContext is what a handler knows about the request besides its body.
//
// handle is called on the connection's read loop, in request order, so the
// side effects of pipelined requests (appends to one partition) happen in
// the order the client sent them. A handler that blocks delays the
// connection's next requests (as Kafka's one-request-at-a-time connections
// do) but nothing else; handlers that wait on actors or the metadata store
// should return and respond later instead (see goRespond).
type requestContext struct {
	// ctx ends when the connection closes or the server gives up draining;
	// use it for metadata calls made on the request's behalf.
	ctx           context.Context
	clientID      string
	correlationID int32
	version       int16
	// conn identifies the connection, for logs.
	conn string
	// received is when the request was read, for timeouts that Kafka
	// measures from arrival (Fetch MaxWaitMillis, Produce TimeoutMillis).
	received time.Time
	// log is the connection's logger.
	log *slog.Logger
	// closing is closed when the connection stops reading requests (server
	// shutdown, or a drain): a handler waiting only to fill a response
	// (a parked fetch) should answer with what it has.
	closing <-chan struct{}
	// drain stops reading requests on the connection and closes it once the
	// responses owed are written (Kafka closes an acks=0 producer's
	// connection on error, so that it refreshes its metadata).
	drain func()
	// abort closes the connection at once (a handler bug).
	abort func()
}
