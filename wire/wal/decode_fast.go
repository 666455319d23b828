package wal

import (
	"bytes"
	"encoding/base64"
	"strconv"
)

// A fast path for the one hot request body, POST /v1/append.
//
// encoding/json decodes about 100 MB/s of base64 entries on one core,
// which made JSON decoding the WAL layer's main cost. fastAppend scans the
// common shape of an append body, {"name": "...", "entries": [{"data":
// "..."}, ...]} with the optional fields, and base64-decodes every entry
// into one fresh buffer. It accepts only inputs on which its result is the
// same as encoding/json's (checked by FuzzFastAppend): anything else
// (escapes, unknown or differently-cased keys, non-integer numbers,
// malformed JSON) returns ok=false and the caller falls back to
// encoding/json, which also produces the error messages.

// fastAppendWire is what fastAppend extracts, before validation.
type fastAppendWire struct {
	name                string
	entries             []appendEntry
	expected, partition *int64
}

type fastScanner struct {
	b   []byte
	pos int
}

func (s *fastScanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (s *fastScanner) consume(c byte) bool {
	s.ws()
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte (0 at the end).
func (s *fastScanner) peek() byte {
	s.ws()
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

// str scans a string without escapes or control characters and returns
// its bytes (aliasing the input).
func (s *fastScanner) str() ([]byte, bool) {
	if !s.consume('"') {
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
			// Escapes and non-ASCII (which encoding/json would check for
			// valid UTF-8) take the slow path.
			return nil, false
		}
		s.pos++
	}
	return nil, false
}

// b64 scans a string meant to hold base64 and returns its bytes (aliasing
// the input). It only rules out what base64 decoding would not catch: an
// escape, or a raw newline (which JSON forbids in strings but the decoder
// skips). Any other byte outside the alphabet fails the decoding later.
func (s *fastScanner) b64() ([]byte, bool) {
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

// null consumes a JSON null.
func (s *fastScanner) null() bool {
	s.ws()
	if len(s.b)-s.pos >= 4 && string(s.b[s.pos:s.pos+4]) == "null" {
		s.pos += 4
		return true
	}
	return false
}

// int scans an integer literal that fits an int64 comfortably.
func (s *fastScanner) int() (int64, bool) {
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

// fastAppend scans an append body. The entries' data and keys are decoded
// into one new buffer, never aliasing body.
func fastAppend(body []byte) (fastAppendWire, bool) {
	s := fastScanner{b: body}
	var w fastAppendWire
	if !s.consume('{') {
		return w, false
	}
	// Entries' base64 spans, decoded once the whole body has been checked.
	type span struct{ data, key []byte }
	var spans []span
	sawEntries := false
	if s.peek() != '}' {
		for {
			key, ok := s.str()
			if !ok || !s.consume(':') {
				return w, false
			}
			switch string(key) {
			case "name":
				v, ok := s.str()
				if !ok {
					return w, false
				}
				w.name = string(v)
			case "expected_offset", "partition":
				// As encoding/json does, a later null resets an earlier value.
				var p *int64
				if !s.null() {
					v, ok := s.int()
					if !ok {
						return w, false
					}
					p = &v
				}
				if string(key) == "partition" {
					w.partition = p
				} else {
					w.expected = p
				}
			case "entries":
				if sawEntries || !s.consume('[') {
					return w, false // a repeated key or null: slow path
				}
				sawEntries = true
				if s.peek() != ']' {
					for {
						if !s.consume('{') {
							return w, false
						}
						var sp span
						var sawData, sawKey bool
						if s.peek() != '}' {
							for {
								k, ok := s.str()
								if !ok || !s.consume(':') {
									return w, false
								}
								var v []byte
								if !s.null() {
									if v, ok = s.b64(); !ok {
										return w, false
									}
									if v == nil {
										v = []byte{} // "" is an empty, non-null value
									}
								}
								switch string(k) {
								case "data":
									if sawData {
										return w, false
									}
									sawData, sp.data = true, v
								case "key":
									if sawKey {
										return w, false
									}
									sawKey, sp.key = true, v
								default:
									return w, false
								}
								if !s.consume(',') {
									break
								}
							}
						}
						if !s.consume('}') {
							return w, false
						}
						spans = append(spans, sp)
						if !s.consume(',') {
							break
						}
					}
				}
				if !s.consume(']') {
					return w, false
				}
			default:
				return w, false
			}
			if !s.consume(',') {
				break
			}
		}
	}
	if !s.consume('}') {
		return w, false
	}
	if s.ws(); s.pos != len(body) {
		return w, false
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
	w.entries = make([]appendEntry, len(spans))
	for i, sp := range spans {
		var ok bool
		if w.entries[i].Data, ok = dec(sp.data); !ok {
			return w, false
		}
		if w.entries[i].Data == nil {
			w.entries[i].Data = []byte{}
		}
		if w.entries[i].Key, ok = dec(sp.key); !ok {
			return w, false
		}
	}
	return w, true
}
