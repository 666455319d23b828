package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes the server puts in APIError.Code. The original server knew
// only CodeUnexpected; the others were added in the same PascalCase style,
// so a client that does not know a code can still show it.
const (
	// CodeUnexpected is an unexpected server failure (HTTP 500).
	CodeUnexpected = "Unexpected"
	// CodeNotFound means the log (or partition, or path) does not exist (404).
	CodeNotFound = "NotFound"
	// CodeAlreadyExists means Create named an existing log (409).
	CodeAlreadyExists = "AlreadyExists"
	// CodeInvalidArgument means the request is malformed or a field is out
	// of its domain (400). Retrying it unchanged will not help.
	CodeInvalidArgument = "InvalidArgument"
	// CodeConflict means a conditional append's expected offset was not the
	// log's end (409); APIError.EndOffset holds the end.
	CodeConflict = "Conflict"
	// CodeOffsetOutOfRange means a read or tail started below the log's
	// start or past its end (416); APIError.StartOffset and EndOffset say
	// where the log is.
	CodeOffsetOutOfRange = "OffsetOutOfRange"
	// CodePayloadTooLarge means the request body, or one entry, exceeds the
	// server's limit (413).
	CodePayloadTooLarge = "PayloadTooLarge"
	// CodeTooManyRequests means the node's buffers are full (429); retry
	// after a pause.
	CodeTooManyRequests = "TooManyRequests"
	// CodeUnavailable means the node cannot serve the request now (storage
	// or metadata store unavailable, partition moving, node shutting down)
	// (503); retry, possibly on another node.
	CodeUnavailable = "Unavailable"
	// CodeMethodNotAllowed means the path exists but not with that HTTP
	// method (405).
	CodeMethodNotAllowed = "MethodNotAllowed"
	// CodePermissionDenied means the node's configuration refuses the
	// request, e.g. per-log storage settings that differ from the node's
	// (403).
	CodePermissionDenied = "PermissionDenied"
	// CodeUnimplemented means the node understood the request but does not
	// support it yet (501).
	CodeUnimplemented = "Unimplemented"
)

// APIError is an error response from the server: a non-2xx status with a
// JSON body {"code": ..., "message": ...}.
type APIError struct {
	// Code is one of the Code constants (or a newer code this client does
	// not know).
	Code string
	// Message explains the error for a person.
	Message string
	// Status is the HTTP status code.
	Status int
	// StartOffset and EndOffset are the log's bounds when the server sent
	// them (Conflict sends the end, OffsetOutOfRange both); -1 otherwise.
	StartOffset, EndOffset int64
}

// Error formats the code, status and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("morax wal: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Temporary reports whether retrying the same request later may succeed.
func (e *APIError) Temporary() bool {
	switch e.Code {
	case CodeUnavailable, CodeTooManyRequests:
		return true
	}
	return false
}

// StatusError is an unexpected HTTP status whose body is not a JSON API
// error, e.g. from a proxy in front of the node or a node that is not Morax.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body, for diagnosis.
	Body string
}

// Error formats the status and the start of the body.
func (e *StatusError) Error() string {
	return fmt.Sprintf("morax wal: unexpected HTTP status %d %s: %q", e.Status, http.StatusText(e.Status), e.Body)
}

// ErrStreamEnded is yielded by Tail when the server ends the stream on
// purpose (it is shutting down). Resume from the offset after the last
// entry received, on this node later or on another.
var ErrStreamEnded = errors.New("morax wal: tail stream ended by the server")

// CodeOf returns the APIError code in err's chain, or "" if there is none.
func CodeOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
