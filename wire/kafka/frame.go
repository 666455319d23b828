package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reasons a connection is closed for a protocol violation. Kafka closes the
// socket in all these cases; the client reconnects.
var (
	// errFrameTooLarge means the size prefix exceeds the frame limit.
	errFrameTooLarge = errors.New("request frame exceeds the size limit")
	// errBadFrame means the size prefix is negative or too small to hold a
	// request header.
	errBadFrame = errors.New("bad request frame size")
	// errBadHeader means the request header does not parse.
	errBadHeader = errors.New("malformed request header")
	// errUnsupported means the API key is unknown or its version is not
	// served. ApiVersions is the exception: it is answered with
	// UNSUPPORTED_VERSION instead (see unsupportedApiVersions).
	errUnsupported = errors.New("unsupported api key or version")
	// errBadBody means the request body does not parse at its version.
	errBadBody = errors.New("malformed request body")
)

// minHeaderBytes is the fixed part of every request header: api key (2),
// api version (2) and correlation id (4).
const minHeaderBytes = 8

// frameChunk is how much of a frame is allocated before its bytes arrive,
// so a size prefix alone cannot make us allocate the whole frame limit.
// Past it the buffer doubles as bytes arrive, so a peer that announces a
// large frame and stalls holds at most about twice what it sent: with
// thousands of connections, allocating the announced size up front would
// let each cost up to max_frame_bytes for the price of a few bytes.
const frameChunk = 64 << 10

// maxControlFrame bounds every request but Produce. Only Produce carries
// record payloads, which stay bytes; other requests decode into Go values
// that can be many times their wire size (kmsg checks an array's count only
// against the bytes left), so a large frame of another kind is refused
// before it is read. Real clients' largest such requests (OffsetCommit or
// Metadata over many thousands of partitions) are a few hundred KiB.
const maxControlFrame = 8 << 20

// readFrame reads one size-prefixed frame from r. It allocates as bytes
// arrive, up to limit.
func readFrame(r *bufio.Reader, limit int32) ([]byte, error) {
	return readFrameChunked(r, limit, frameChunk)
}

// readFrameChunked is readFrame with frames above chunk bytes read into a
// growing buffer (a parameter so tests reach that path with small inputs).
func readFrameChunked(r *bufio.Reader, limit int32, chunk int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sz[:]))
	switch {
	case size < minHeaderBytes:
		return nil, fmt.Errorf("%w: %d bytes", errBadFrame, size)
	case size > limit:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, size, limit)
	case size > maxControlFrame:
		key, err := r.Peek(2)
		if err != nil {
			return nil, noEOF(err)
		}
		if k := int16(binary.BigEndian.Uint16(key)); k != int16(kmsg.Produce) {
			return nil, fmt.Errorf("%w: %d bytes for api key %d, limit %d for requests other than Produce", errFrameTooLarge, size, k, maxControlFrame)
		}
	}
	frame := make([]byte, min(size, chunk))
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, noEOF(err)
	}
	// Each doubling is paid for by as many bytes received: the copies
	// add up to less than the frame, and the memory held stays within
	// twice what the peer actually sent.
	for int32(len(frame)) < size {
		have := len(frame)
		frame = slices.Grow(frame, min(int(size), 2*have)-have)
		frame = frame[:cap(frame)][:min(int(size), 2*have)]
		if _, err := io.ReadFull(r, frame[have:]); err != nil {
			return nil, noEOF(err)
		}
	}
	return frame, nil
}

// noEOF turns an EOF inside a frame into ErrUnexpectedEOF: the peer hung up
// mid-request, which is not a clean close.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// requestHeader is the decoded request header (v1 or v2).
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	// clientID is "" when the client sent a null client id, as in Kafka.
	clientID string
}

// peekHeader decodes the fixed part of the header, which is all that is
// needed to answer (or refuse) a request whose version is not served.
func peekHeader(frame []byte) (requestHeader, error) {
	if len(frame) < minHeaderBytes {
		return requestHeader{}, fmt.Errorf("%w: %d bytes", errBadHeader, len(frame))
	}
	return requestHeader{
		key:           int16(binary.BigEndian.Uint16(frame[0:])),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}, nil
}

// decodeRequest decodes a whole request frame (without its size prefix).
// served reports whether a key and version are served; the version is
// checked before the body is parsed, since a version kmsg does not know
// cannot be parsed at all. The fixed header fields are returned even on
// error, so an unsupported ApiVersions can still be answered.
//
// The request's byte fields (produce records) alias frame.
func decodeRequest(frame []byte, served func(key, version int16) bool) (requestHeader, kmsg.Request, error) {
	h, err := peekHeader(frame)
	if err != nil {
		return h, nil, err
	}
	if !served(h.key, h.version) {
		return h, nil, fmt.Errorf("%w: %s (key %d) version %d", errUnsupported, kmsg.NameForKey(h.key), h.key, h.version)
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil || h.version < 0 || h.version > req.MaxVersion() {
		// served lied; refuse rather than let kmsg guess at the format.
		return h, nil, fmt.Errorf("%w: kmsg cannot decode %s version %d", errUnsupported, kmsg.NameForKey(h.key), h.version)
	}
	req.SetVersion(h.version)
	r := kbin.Reader{Src: frame[minHeaderBytes:]}
	// The client id stays a classic nullable string even in flexible
	// headers, so that any broker can read ApiVersions.
	if cid := r.NullableString(); cid != nil {
		h.clientID = *cid
	}
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if err := r.Complete(); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d: %w", errBadHeader, kmsg.NameForKey(h.key), h.version, err)
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d: %w", errBadBody, kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// appendResponse appends a whole response frame, size prefix included.
func appendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	// Response header v1 (flexible) adds a tag section, except for
	// ApiVersions, whose response header stays v0 so that a client that
	// sent too new a version can still read the answer.
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
