package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// A fast path for the one large response, a read's entries.
//
// encoding/json decodes base64 entries at about 100 MB/s, which made it
// most of the cost of reading a log. fastReadResult scans the shape Morax
// servers send, {"entries":[{"index":N,"data":"...","key":"..."}],
// "end_offset":N}, and base64-decodes every entry into one buffer. It
// accepts only inputs on which its result is encoding/json's (checked by
// FuzzReadResult); anything else, such as a field added by a newer server,
// goes through encoding/json.

// bodyDecoder is a response type that decodes its whole body itself.
type bodyDecoder interface {
	decodeBody([]byte) error
}

func (r *ReadResult) decodeBody(body []byte) error {
	if res, ok := fastReadResult(body); ok {
		*r = res
		return nil
	}
	*r = ReadResult{}
	if err := json.Unmarshal(body, r); err != nil {
		return fmt.Errorf("decode read response: %w", err)
	}
	return nil
}

type scanner struct {
	b   []byte
	pos int
}

func (s *scanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	s.ws()
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

// key scans an object key made of plain ASCII.
func (s *scanner) key() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		if c == '"' {
			s.pos++
			return string(s.b[start : s.pos-1]), s.consume(':')
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", false
		}
		s.pos++
	}
	return "", false
}

// b64 scans a string meant to hold base64 (see the server's twin): it
// rules out escapes and raw newlines, which base64 decoding would skip;
// other stray bytes fail the decoding.
func (s *scanner) b64() ([]byte, bool) {
	if !s.consume('"') {
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

func (s *scanner) null() bool {
	s.ws()
	if len(s.b)-s.pos >= 4 && string(s.b[s.pos:s.pos+4]) == "null" {
		s.pos += 4
		return true
	}
	return false
}

// int scans an integer literal of at most 18 digits.
func (s *scanner) int() (int64, bool) {
	s.ws()
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

// optB64 scans a base64 string or null; a nil result means null.
func (s *scanner) optB64() ([]byte, bool) {
	if s.null() {
		return nil, true
	}
	return s.b64()
}

// fastReadResult scans a read response. Entry data and keys are decoded
// into one new buffer.
func fastReadResult(body []byte) (ReadResult, bool) {
	s := scanner{b: body}
	var r ReadResult
	type span struct {
		index     int64
		data, key []byte
	}
	var spans []span
	sawEntries, sawEnd := false, false
	if !s.consume('{') {
		return r, false
	}
	if s.peek() != '}' {
		for {
			k, ok := s.key()
			if !ok {
				return r, false
			}
			switch k {
			case "end_offset":
				if sawEnd {
					return r, false
				}
				sawEnd = true
				if r.EndOffset, ok = s.int(); !ok {
					return r, false
				}
			case "entries":
				if sawEntries || !s.consume('[') {
					return r, false // repeated, or null: encoding/json decides
				}
				sawEntries = true
				if s.peek() != ']' {
					for {
						if !s.consume('{') {
							return r, false
						}
						var sp span
						var sawIndex, sawData, sawKey bool
						if s.peek() != '}' {
							for {
								ek, ok := s.key()
								if !ok {
									return r, false
								}
								switch {
								case ek == "index" && !sawIndex:
									sawIndex = true
									if sp.index, ok = s.int(); !ok {
										return r, false
									}
								case ek == "data" && !sawData:
									sawData = true
									if sp.data, ok = s.optB64(); !ok {
										return r, false
									}
								case ek == "key" && !sawKey:
									sawKey = true
									if sp.key, ok = s.optB64(); !ok {
										return r, false
									}
								default:
									return r, false
								}
								if !s.consume(',') {
									break
								}
							}
						}
						if !s.consume('}') {
							return r, false
						}
						spans = append(spans, sp)
						if !s.consume(',') {
							break
						}
					}
				}
				if !s.consume(']') {
					return r, false
				}
			default:
				return r, false
			}
			if !s.consume(',') {
				break
			}
		}
	}
	if !s.consume('}') {
		return r, false
	}
	if s.ws(); s.pos != len(body) {
		return r, false
	}
	if !sawEntries {
		return r, true
	}
	size := 0
	for _, sp := range spans {
		size += base64.StdEncoding.DecodedLen(len(sp.data)) + base64.StdEncoding.DecodedLen(len(sp.key))
	}
	buf := make([]byte, size)
	dec := func(src []byte) ([]byte, bool) {
		if src == nil {
			return nil, true
		}
		n, err := base64.StdEncoding.Decode(buf, src)
		if err != nil {
			return nil, false
		}
		out := buf[:n:n]
		buf = buf[n:]
		return out, true
	}
	r.Entries = make([]Entry, len(spans))
	for i, sp := range spans {
		e := &r.Entries[i]
		e.Index = sp.index
		var ok bool
		if e.Data, ok = dec(sp.data); !ok {
			return r, false
		}
		if e.Key, ok = dec(sp.key); !ok {
			return r, false
		}
	}
	return r, true
}
