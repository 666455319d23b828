package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/morax-dev/morax/wire/wal/internal/jsonscan"
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

// optB64 scans a base64 string or null; a nil result means null.
func optB64(s *jsonscan.Scanner) ([]byte, bool) {
	if s.Null() {
		return nil, true
	}
	return s.B64()
}

// fastReadResult scans a read response. Entry data and keys are decoded
// into one new buffer.
func fastReadResult(body []byte) (ReadResult, bool) {
	s := jsonscan.New(body)
	var r ReadResult
	type span struct {
		index     int64
		data, key []byte
	}
	var spans []span
	sawEntries, sawEnd := false, false
	if !s.Consume('{') {
		return r, false
	}
	if s.Peek() != '}' {
		for {
			k, ok := s.Key()
			if !ok {
				return r, false
			}
			switch k {
			case "end_offset":
				if sawEnd {
					return r, false
				}
				sawEnd = true
				if r.EndOffset, ok = s.Int(); !ok {
					return r, false
				}
			case "entries":
				if sawEntries || !s.Consume('[') {
					return r, false // repeated, or null: encoding/json decides
				}
				sawEntries = true
				if s.Peek() != ']' {
					for {
						if !s.Consume('{') {
							return r, false
						}
						var sp span
						var sawIndex, sawData, sawKey bool
						if s.Peek() != '}' {
							for {
								ek, ok := s.Key()
								if !ok {
									return r, false
								}
								switch {
								case ek == "index" && !sawIndex:
									sawIndex = true
									if sp.index, ok = s.Int(); !ok {
										return r, false
									}
								case ek == "data" && !sawData:
									sawData = true
									if sp.data, ok = optB64(s); !ok {
										return r, false
									}
								case ek == "key" && !sawKey:
									sawKey = true
									if sp.key, ok = optB64(s); !ok {
										return r, false
									}
								default:
									return r, false
								}
								if !s.Consume(',') {
									break
								}
							}
						}
						if !s.Consume('}') {
							return r, false
						}
						spans = append(spans, sp)
						if !s.Consume(',') {
							break
						}
					}
				}
				if !s.Consume(']') {
					return r, false
				}
			default:
				return r, false
			}
			if !s.Consume(',') {
				break
			}
		}
	}
	if !s.Consume('}') {
		return r, false
	}
	if !s.AtEnd() {
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
