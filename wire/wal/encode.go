package wal

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/persistence/segment"
)

// Response encoding. Bodies are built by appending to a byte slice rather
// than through reflection: the read and tail paths encode every entry, and
// writing the bytes by hand also pins the field order the compatibility
// test checks (original fields first, additive ones after).

const contentTypeJSON = "application/json"

// writeJSON sends a 200 response with a JSON body it takes ownership of.
func writeJSON(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentTypeJSON)
	ctx.Response.SetBodyRaw(body)
}

// marshalJSON encodes small fixed-shape responses (describe, list) whose
// field order is their struct order.
func marshalJSON(ctx *fasthttp.RequestCtx, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	writeJSON(ctx, b)
	return nil
}

// appendEntryJSON appends {"index":N,"data":"<base64>"} (plus "key" when
// the record has one: Kafka records read through the WAL API).
func appendEntryJSON(dst []byte, r *segment.Record) []byte {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"data":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, r.Value)
	dst = append(dst, '"')
	if r.Key != nil {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Key)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string. Messages can quote user
// input, so everything JSON requires is escaped; invalid UTF-8 becomes
// U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
