package kafka

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testServed returns the served-version check of a server built from the
// real handler table (no broker needed: decoding never touches it).
func testServed(t testing.TB) func(key, version int16) bool {
	t.Helper()
	s := &Server{}
	if err := s.buildHandlers(slices.Concat(ownHandlers(), groupHandlers())); err != nil {
		t.Fatal(err)
	}
	return s.served
}

// requestSeeds are valid frames (without size prefix) of every served key
// at every served version.
func requestSeeds(t testing.TB) [][]byte {
	t.Helper()
	s := &Server{}
	if err := s.buildHandlers(slices.Concat(ownHandlers(), groupHandlers())); err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, v := range s.versions {
		for ver := v.MinVersion; ver <= v.MaxVersion; ver++ {
			req := kmsg.RequestForKey(v.ApiKey)
			req.SetVersion(ver)
			seeds = append(seeds, f.AppendRequest(nil, req, int32(ver))[4:])
		}
	}
	return seeds
}

// FuzzDecodeRequest feeds arbitrary frames to the header and body decoder:
// it must never panic, and whatever it accepts must survive re-encoding.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range requestSeeds(f) {
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1})
	served := testServed(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		hdr, req, err := decodeRequest(frame, served)
		if err != nil {
			if req != nil {
				t.Fatalf("error %v with a request", err)
			}
			return
		}
		if req.Key() != hdr.key || req.GetVersion() != hdr.version || !served(hdr.key, hdr.version) {
			t.Fatalf("decoded %s v%d from header key %d v%d", kmsg.NameForKey(req.Key()), req.GetVersion(), hdr.key, hdr.version)
		}
		again := kmsg.RequestForKey(hdr.key)
		again.SetVersion(hdr.version)
		if err := again.ReadFrom(req.AppendTo(nil)); err != nil {
			t.Fatalf("re-encoded %s v%d does not decode: %v", kmsg.NameForKey(hdr.key), hdr.version, err)
		}
	})
}

// splitReader returns its input in two reads, split at the given point.
type splitReader struct {
	data  []byte
	split int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if r.split > 0 {
		n = min(n, r.split)
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	r.split -= n
	return n, nil
}

// frameResult is what reading a stream of frames produced.
type frameResult struct {
	frames [][]byte
	err    error
}

func readFrames(r io.Reader) frameResult {
	// A tiny bufio buffer and chunk size make every path (buffered, direct,
	// growing) run on small inputs.
	br := bufio.NewReaderSize(r, 16)
	var res frameResult
	for {
		frame, err := readFrameChunked(br, 1<<12, 8)
		if err != nil {
			res.err = err
			return res
		}
		res.frames = append(res.frames, frame)
	}
}

// sameErrKind compares errors by the sentinel they carry.
func sameErrKind(a, b error) bool {
	for _, e := range []error{errFrameTooLarge, errBadFrame, io.ErrUnexpectedEOF, io.EOF} {
		if errors.Is(a, e) || errors.Is(b, e) {
			return errors.Is(a, e) && errors.Is(b, e)
		}
	}
	return (a == nil) == (b == nil)
}

// FuzzReadFrame checks the framer finds the same frames however the bytes
// arrive: whole, split at every point, or one byte at a time (a TCP read
// may return any prefix of what was sent). Every frame also goes through
// the request decoder.
func FuzzReadFrame(f *testing.F) {
	for _, seed := range requestSeeds(f) {
		framed := append([]byte{0, 0, 0, byte(len(seed))}, seed...)
		if len(seed) < 256 {
			f.Add(append(framed, framed...))
		}
	}
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0, 0, 0x10, 0x01})
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3})
	served := testServed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		want := readFrames(bytes.NewReader(data))
		check := func(how string, got frameResult) {
			if len(got.frames) != len(want.frames) || !sameErrKind(got.err, want.err) {
				t.Fatalf("%s: %d frames and %v, want %d frames and %v", how, len(got.frames), got.err, len(want.frames), want.err)
			}
			for i := range got.frames {
				if !bytes.Equal(got.frames[i], want.frames[i]) {
					t.Fatalf("%s: frame %d differs", how, i)
				}
			}
		}
		for split := 1; split < len(data); split++ {
			check("split", readFrames(&splitReader{data: data, split: split}))
		}
		check("one byte at a time", readFrames(iotest.OneByteReader(bytes.NewReader(data))))
		for _, frame := range want.frames {
			_, _, _ = decodeRequest(frame, served)
		}
	})
}

// TestReadFrameLimits checks the framer's refusals without fuzzing.
func TestReadFrameLimits(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"over the limit", []byte{0, 0, 0x10, 0x01}, errFrameTooLarge},
		{"negative", []byte{0x80, 0, 0, 0}, errBadFrame},
		{"shorter than a header", []byte{0, 0, 0, 7}, errBadFrame},
		{"truncated", []byte{0, 0, 0, 9, 1, 2}, io.ErrUnexpectedEOF},
		{"truncated in the growing path", append([]byte{0, 0, 0x01, 0}, make([]byte, 100)...), io.ErrUnexpectedEOF},
		{"clean end", nil, io.EOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readFrameChunked(bufio.NewReader(bytes.NewReader(c.in)), 1<<12, 8)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
	frame, err := readFrameChunked(bufio.NewReader(bytes.NewReader(append([]byte{0, 0, 0, 100}, make([]byte, 100)...))), 1<<12, 8)
	if err != nil || len(frame) != 100 {
		t.Fatalf("growing path: %d bytes, %v", len(frame), err)
	}
}

// TestDecodeRequestRefusals checks each refusal is the sentinel the
// connection closes on, and that ApiVersions keeps its header fields.
func TestDecodeRequestRefusals(t *testing.T) {
	served := testServed(t)
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short header", []byte{0, 3, 0}, errBadHeader},
		{"unknown key", []byte{0x03, 0xE7, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF}, errUnsupported},
		{"version too new", []byte{0, 3, 0, 99, 0, 0, 0, 1, 0xFF, 0xFF}, errUnsupported},
		{"client id past the end", []byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 50, 'a'}, errBadHeader},
		{"body garbage", []byte{0, 3, 0, 12, 0, 0, 0, 1, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, errBadBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, req, err := decodeRequest(c.frame, served)
			if !errors.Is(err, c.want) || req != nil {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
	hdr, _, err := decodeRequest([]byte{0, 18, 0, 99, 0, 0, 0, 7}, served)
	if !errors.Is(err, errUnsupported) || hdr.key != 18 || hdr.version != 99 || hdr.correlationID != 7 {
		t.Fatalf("ApiVersions v99: %+v %v", hdr, err)
	}
}
