package wal

import (
	"encoding/base64"
	"strings"
	"testing"
)

// appendBody is an append of n entries of size bytes, as a client sends it.
func appendBody(n, size int) []byte {
	data := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", size)))
	var b strings.Builder
	b.WriteString(`{"name":"bench","entries":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"data":"` + data + `"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkDecodeAppend measures decoding a 100-entry append of 1 KiB
// entries, on the fast path and on the slow path errors take.
func BenchmarkDecodeAppend(b *testing.B) {
	body := appendBody(100, 1024)
	for _, c := range []struct {
		name   string
		decode func([]byte) (appendRequest, error)
	}{{"fast", decodeAppend}, {"slow", decodeAppendSlow}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(100 * 1024)
			for b.Loop() {
				if _, err := c.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
