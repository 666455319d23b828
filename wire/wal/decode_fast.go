package wal

import (
	"encoding/base64"

	"github.com/morax-dev/morax/wire/wal/internal/jsonscan"
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

// fastAppend scans an append body. The entries' data and keys are decoded
// into one new buffer, never aliasing body.
func fastAppend(body []byte) (fastAppendWire, bool) {
	s := jsonscan.New(body)
	var w fastAppendWire
	if !s.Consume('{') {
		return w, false
	}
	// Entries' base64 spans, decoded once the whole body has been checked.
	type span struct{ data, key []byte }
	var spans []span
	sawEntries := false
	if s.Peek() != '}' {
		for {
			key, ok := s.Str()
			if !ok || !s.Consume(':') {
				return w, false
			}
			switch string(key) {
			case "name":
				v, ok := s.Str()
				if !ok {
					return w, false
				}
				w.name = string(v)
			case "expected_offset", "partition":
				// As encoding/json does, a later null resets an earlier value.
				var p *int64
				if !s.Null() {
					v, ok := s.Int()
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
				if sawEntries || !s.Consume('[') {
					return w, false // a repeated key or null: slow path
				}
				sawEntries = true
				if s.Peek() != ']' {
					for {
						if !s.Consume('{') {
							return w, false
						}
						var sp span
						var sawData, sawKey bool
						if s.Peek() != '}' {
							for {
								k, ok := s.Str()
								if !ok || !s.Consume(':') {
									return w, false
								}
								var v []byte
								if !s.Null() {
									if v, ok = s.B64(); !ok {
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
								if !s.Consume(',') {
									break
								}
							}
						}
						if !s.Consume('}') {
							return w, false
						}
						spans = append(spans, sp)
						if !s.Consume(',') {
							break
						}
					}
				}
				if !s.Consume(']') {
					return w, false
				}
			default:
				return w, false
			}
			if !s.Consume(',') {
				break
			}
		}
	}
	if !s.Consume('}') {
		return w, false
	}
	if !s.AtEnd() {
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
