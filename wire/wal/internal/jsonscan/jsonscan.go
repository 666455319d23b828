// Package jsonscan is the small JSON scanner behind the WAL's fast decoding
// paths: the server's for append bodies and the client's for read
// responses. Both accept only the plain shapes Morax itself writes and fall
// back to encoding/json on anything else (escapes, non-ASCII strings,
// non-integer numbers), so a scan either agrees with encoding/json or gives
// up. Standard library only: the WAL client imports it.
package jsonscan

import (
	"bytes"
	"strconv"
)

// Scanner reads JSON tokens from b; it is not safe for concurrent use.
type Scanner struct {
	b   []byte
	pos int
}

// New returns a scanner at the start of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// WS skips whitespace.
func (s *Scanner) WS() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// AtEnd skips whitespace and reports whether nothing follows.
func (s *Scanner) AtEnd() bool {
	s.WS()
	return s.pos == len(s.b)
}

// Consume skips whitespace and then c, reporting whether c was there.
func (s *Scanner) Consume(c byte) bool {
	s.WS()
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// Peek skips whitespace and returns the next byte (0 at the end).
func (s *Scanner) Peek() byte {
	s.WS()
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

// Str scans a string of plain ASCII without escapes or control characters
// and returns its bytes (aliasing the input). Escapes and non-ASCII (which
// encoding/json would check for valid UTF-8) give up.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Consume('"') {
		return nil, false
	}
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.b[start : s.pos-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.pos++
	}
	return nil, false
}

// Key scans an object key (as Str) and the colon after it.
func (s *Scanner) Key() (string, bool) {
	k, ok := s.Str()
	if !ok {
		return "", false
	}
	return string(k), s.Consume(':')
}

// B64 scans a string meant to hold base64 and returns its bytes (aliasing
// the input). It only rules out what base64 decoding would not catch: an
// escape, or a raw newline (which JSON forbids in strings but the decoder
// skips). Any other byte outside the alphabet fails the decoding later.
func (s *Scanner) B64() ([]byte, bool) {
	if !s.Consume('"') {
		return nil, false
	}
	rest := s.b[s.pos:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, false
	}
	v := rest[:end:end]
	if bytes.IndexByte(v, '\\') >= 0 || bytes.IndexByte(v, '\n') >= 0 || bytes.IndexByte(v, '\r') >= 0 {
		return nil, false
	}
	s.pos += end + 1
	return v, true
}

// Null consumes a JSON null.
func (s *Scanner) Null() bool {
	s.WS()
	if len(s.b)-s.pos >= 4 && string(s.b[s.pos:s.pos+4]) == "null" {
		s.pos += 4
		return true
	}
	return false
}

// Int scans an integer literal of at most 18 digits (so it fits an int64
// without overflow checks); fractions and exponents give up.
func (s *Scanner) Int() (int64, bool) {
	s.WS()
	start := s.pos
	if s.pos < len(s.b) && s.b[s.pos] == '-' {
		s.pos++
	}
	digits := s.pos
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		s.pos++
	}
	n := s.pos - digits
	if n == 0 || n > 18 || (n > 1 && s.b[digits] == '0') {
		return 0, false
	}
	if s.pos < len(s.b) {
		switch s.b[s.pos] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s.b[start:s.pos]), 10, 64)
	return v, err == nil
}
