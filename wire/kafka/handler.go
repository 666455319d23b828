package kafka

import (
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
type requestContext struct {
	clientID      string
	correlationID int32
	version       int16
	// conn identifies the connection, for logs.
	conn string
}
