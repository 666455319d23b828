package wal

import "github.com/valyala/fasthttp"

// Handler exposes the server's request handler to the external tests, so
// that the fuzz test can drive the whole request path without a socket.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }
