package wal

import "github.com/valyala/fasthttp"

// Handler exposes the server's request handler to the external tests, so
// that the fuzz test can drive the whole request path without a socket.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// DecodeBody runs the decoder of the POST endpoint at path on body, so the
// fuzz test can check no endpoint answers 2xx to a body its decoder
// refuses. Paths without a body decoder decode nothing.
func DecodeBody(path string, body []byte) error {
	var err error
	switch path {
	case "/v1/create":
		_, err = decodeCreate(body)
	case "/v1/append":
		_, err = decodeAppend(body)
	case "/v1/read":
		_, err = decodeRead(body)
	case "/v1/trim":
		_, err = decodeTrim(body)
	}
	return err
}
