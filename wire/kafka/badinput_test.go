package kafka_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// rawConn is a Kafka connection without a client library, for sending what
// no client would.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	corr *int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c), corr: new(int32)}
}

// on returns the connection reporting failures to t (a subtest).
func (r *rawConn) on(t *testing.T) *rawConn {
	c := *r
	c.t = t
	return &c
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send writes req at its set version and returns its correlation id.
func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	*r.corr++
	r.write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, *r.corr))
	return *r.corr
}

// recv reads one response frame into resp (whose version must be set) and
// returns its correlation id.
func (r *rawConn) recv(resp kmsg.Response) int32 {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.br, size[:]); err != nil {
		r.t.Fatalf("read response size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.br, frame); err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	corr := int32(binary.BigEndian.Uint32(frame))
	body := frame[4:]
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // empty tag section of response header v1
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	return corr
}

// roundTrip sends req and reads its response.
func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	corr := r.send(req)
	resp := req.ResponseKind()
	if got := r.recv(resp); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	return resp
}

// expectClosed checks the server closes the connection (without answering).
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := r.br.ReadByte()
	if err == nil {
		r.t.Fatalf("server answered (first byte %#x) instead of closing", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatal("server kept the connection open")
	}
}

// rawFrame builds a request frame by hand: header v1 (or v2 when flexible)
// and body.
func rawFrame(key, version int16, corr int32, flexible bool, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "raw"...)
	if flexible {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// testBatch is a valid, uncompressed RecordBatch v2 of one record.
func testBatch(t *testing.T, codec segment.Codec) []byte {
	t.Helper()
	b, err := segment.BuildBatch([]segment.Record{{Timestamp: time.Now().UnixMilli(), Key: []byte("k"), Value: []byte("v")}}, codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recrc recomputes a v2 batch's CRC after its header was edited.
func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// legacyMessage is a one-message v0 or v1 message set.
func legacyMessage(magic byte) []byte {
	msg := []byte{magic, 0} // magic, attributes
	if magic == 1 {
		msg = binary.BigEndian.AppendUint64(msg, uint64(time.Now().UnixMilli()))
	}
	msg = binary.BigEndian.AppendUint32(msg, 0xFFFFFFFF) // null key
	msg = binary.BigEndian.AppendUint32(msg, 1)
	msg = append(msg, 'v')
	crc := crc32.ChecksumIEEE(msg)
	out := binary.BigEndian.AppendUint64(nil, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(4+len(msg)))
	out = binary.BigEndian.AppendUint32(out, crc)
	return append(out, msg...)
}

// produceReq builds a one-partition produce request.
func produceReq(version int16, topic string, partition int32, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produceCode(t *testing.T, r *rawConn, req *kmsg.ProduceRequest) int16 {
	t.Helper()
	resp := r.roundTrip(req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestBadInput sends what a broken or hostile client might, over raw
// sockets, and checks each gets Kafka's error or a clean close while other
// connections to the node keep working.
func TestBadInput(t *testing.T) {
	n := kafkatest.Start(t, kafkatest.Options{})
	const topic = "bad-input"
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 2, nil)
	// bystander stays open through every case and must keep working.
	bystander := dialRaw(t, n.Addr)
	consumer := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}}))
	produced, consumed := 0, 0
	// consumeUp reads until the consumer saw everything produced so far.
	consumeUp := func(t *testing.T) {
		t.Helper()
		ctx := ctxT(t)
		for consumed < produced {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil || len(fs.Errors()) > 0 {
				t.Fatalf("second client cannot consume (%d of %d): %v", consumed, produced, fs.Errors())
			}
			consumed += fs.NumRecords()
		}
	}
	stillWorks := func(t *testing.T) {
		t.Helper()
		if resp := bystander.on(t).roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("bystander ApiVersions: code %d", resp.ErrorCode)
		}
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
			t.Fatalf("second client cannot produce: %v", err)
		}
		produced++
		consumeUp(t)
	}

	closes := []struct {
		name  string
		bytes func() []byte
		// halfClose shuts the client's write side after sending, so a
		// truncated frame ends in EOF rather than waiting for more.
		halfClose bool
	}{
		{"truncated frame", func() []byte { return append(binary.BigEndian.AppendUint32(nil, 100), make([]byte, 10)...) }, true},
		{"frame shorter than a header", func() []byte { return append(binary.BigEndian.AppendUint32(nil, 4), 0, 18, 0, 0) }, false},
		{"oversized frame", func() []byte { return binary.BigEndian.AppendUint32(nil, 100<<20+1) }, false},
		{"negative frame size", func() []byte { return binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF) }, false},
		{"oversized metadata request (not produce)", func() []byte {
			// 9 MiB announced, key 3 (Metadata): refused before it is read.
			return append(binary.BigEndian.AppendUint32(nil, 9<<20), 0, 3, 0, 12)
		}, false},
		{"unknown api key", func() []byte { return rawFrame(999, 0, 1, false, nil) }, false},
		{"key kmsg does not know", func() []byte { return rawFrame(-1, 0, 1, false, nil) }, false},
		{"unsupported metadata version", func() []byte { return rawFrame(3, 99, 1, true, nil) }, false},
		{"produce v2 (message sets)", func() []byte { return rawFrame(0, 2, 1, false, make([]byte, 16)) }, false},
		{"transactions not served", func() []byte { return rawFrame(26, 3, 1, true, make([]byte, 16)) }, false},
		{"garbage after the header", func() []byte {
			return rawFrame(3, 12, 1, true, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3})
		}, false},
		{"header tags overrun the frame", func() []byte {
			return rawFrame(18, 3, 1, false, []byte{0x05, 0x01, 0x7F}) // 5 tags, first 127 bytes long
		}, false},
		{"body truncated", func() []byte {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 4
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("some-topic")
			req.Topics = append(req.Topics, rt)
			full := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
			cut := full[:len(full)-4]
			binary.BigEndian.PutUint32(cut, uint32(len(cut)-4))
			return cut
		}, false},
	}
	for _, c := range closes {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, n.Addr)
			r.write(c.bytes())
			if c.halfClose {
				if err := r.c.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			r.expectClosed()
			stillWorks(t)
		})
	}

	t.Run("ApiVersions at an unsupported version", func(t *testing.T) {
		r := dialRaw(t, n.Addr)
		// A body the server cannot know the format of: it must not parse it.
		r.write(rawFrame(18, 99, 42, true, []byte{0xDE, 0xAD, 0xBE, 0xEF}))
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if corr := r.recv(resp); corr != 42 {
			t.Fatalf("correlation id %d", corr)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
		}
		var max18 int16 = -1
		for _, k := range resp.ApiKeys {
			if k.ApiKey == 18 {
				max18 = k.MaxVersion
			}
		}
		if max18 < 3 {
			t.Fatalf("ApiVersions range missing from the table: %+v", resp.ApiKeys)
		}
		// The client retries at a version both know, on the same connection.
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = max18
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1.0"
		if resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 || len(resp.ApiKeys) < 10 {
			t.Fatalf("retry: code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
		}
		stillWorks(t)
	})

	t.Run("ApiVersions with an invalid software name", func(t *testing.T) {
		r := dialRaw(t, n.Addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "bad name!", "1.0"
		if resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("code %d, want INVALID_REQUEST", resp.ErrorCode)
		}
	})

	batchCases := []struct {
		name      string
		version   int16
		topic     string
		partition int32
		acks      int16
		records   func() []byte
		want      int16
	}{
		{"bad CRC", 9, topic, 0, -1, func() []byte {
			b := testBatch(t, segment.CodecNone)
			b[len(b)-1] ^= 0xFF
			return b
		}, kerr.CorruptMessage.Code},
		{"magic v0 message set", 9, topic, 0, -1, func() []byte { return legacyMessage(0) }, kerr.InvalidRecord.Code},
		{"magic v1 message set", 9, topic, 0, -1, func() []byte { return legacyMessage(1) }, kerr.InvalidRecord.Code},
		{"two batches", 9, topic, 0, -1, func() []byte {
			return append(testBatch(t, segment.CodecNone), testBatch(t, segment.CodecNone)...)
		}, kerr.InvalidRecord.Code},
		{"no records", 9, topic, 0, -1, func() []byte { return nil }, kerr.InvalidRecord.Code},
		{"truncated batch", 9, topic, 0, -1, func() []byte {
			b := testBatch(t, segment.CodecNone)
			return b[:len(b)-3]
		}, kerr.CorruptMessage.Code},
		{"transactional batch", 9, topic, 0, -1, func() []byte {
			b := testBatch(t, segment.CodecNone)
			b[22] |= 0x10                         // transactional attribute
			binary.BigEndian.PutUint64(b[43:], 7) // producer id
			binary.BigEndian.PutUint16(b[51:], 0) // producer epoch
			binary.BigEndian.PutUint32(b[53:], 0) // base sequence
			return recrc(b)
		}, kerr.InvalidRecord.Code},
		{"zstd before produce v7", 6, topic, 0, -1, func() []byte { return testBatch(t, segment.CodecZstd) }, kerr.UnsupportedCompressionType.Code},
		{"invalid acks", 9, topic, 0, 2, func() []byte { return testBatch(t, segment.CodecNone) }, kerr.InvalidRequiredAcks.Code},
		{"invalid topic name", 9, "bad/topic", 0, -1, func() []byte { return testBatch(t, segment.CodecNone) }, kerr.UnknownTopicOrPartition.Code},
		{"topic name too long", 9, strings.Repeat("a", 250), 0, -1, func() []byte { return testBatch(t, segment.CodecNone) }, kerr.UnknownTopicOrPartition.Code},
		{"negative partition", 9, topic, -1, -1, func() []byte { return testBatch(t, segment.CodecNone) }, kerr.UnknownTopicOrPartition.Code},
		{"partition past the end", 9, topic, 2, -1, func() []byte { return testBatch(t, segment.CodecNone) }, kerr.UnknownTopicOrPartition.Code},
		{"valid batch (control)", 9, topic, 1, -1, func() []byte { return testBatch(t, segment.CodecGzip) }, 0},
	}
	for _, c := range batchCases {
		t.Run("produce "+c.name, func(t *testing.T) {
			r := dialRaw(t, n.Addr)
			if code := produceCode(t, r, produceReq(c.version, c.topic, c.partition, c.acks, c.records())); code != c.want {
				t.Fatalf("error code %d (%v), want %d (%v)", code, kerr.ErrorForCode(code), c.want, kerr.ErrorForCode(c.want))
			}
			// The connection stays usable after a partition error.
			if resp := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("ApiVersions after the error: code %d", resp.ErrorCode)
			}
			if c.want == 0 {
				produced++
				consumeUp(t)
			}
			stillWorks(t)
		})
	}

	// requestCases are well-formed requests with values a handler must
	// refuse: each names the error code it must get and a piece of the
	// message where the response carries one.
	for _, c := range badRequestCases(t, topic) {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, n.Addr)
			code, msg := c.result(r.roundTrip(c.req))
			if code != c.want {
				t.Fatalf("error code %d (%v), want %d (%v); message %q", code, kerr.ErrorForCode(code), c.want, kerr.ErrorForCode(c.want), msg)
			}
			if !strings.Contains(msg, c.message) {
				t.Fatalf("message %q does not mention %q", msg, c.message)
			}
			stillWorks(t)
		})
	}

	t.Run("acks=0 error closes the connection", func(t *testing.T) {
		r := dialRaw(t, n.Addr)
		r.send(produceReq(9, "no-such-topic", 0, 0, testBatch(t, segment.CodecNone)))
		r.expectClosed()
		stillWorks(t)
	})

	t.Run("fetch negative partition", func(t *testing.T) {
		r := dialRaw(t, n.Addr)
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 12, 100, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		for _, p := range []int32{-1, 0} {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := r.roundTrip(req).(*kmsg.FetchResponse)
		if ps := resp.Topics[0].Partitions; ps[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || ps[1].ErrorCode != 0 {
			t.Fatalf("codes %d and %d", ps[0].ErrorCode, ps[1].ErrorCode)
		}
		stillWorks(t)
	})

	t.Run("invalid topic names in admin requests", func(t *testing.T) {
		r := dialRaw(t, n.Addr)
		create := kmsg.NewPtrCreateTopicsRequest()
		create.Version = 7
		for _, name := range []string{"bad/topic", "..", "", strings.Repeat("x", 250), "ok.name_-1"} {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, -1
			create.Topics = append(create.Topics, rt)
		}
		create.ValidateOnly = true
		resp := r.roundTrip(create).(*kmsg.CreateTopicsResponse)
		for i, rt := range resp.Topics {
			want := kerr.InvalidTopicException.Code
			if i == len(resp.Topics)-1 {
				want = 0
			}
			if rt.ErrorCode != want {
				t.Errorf("create %q: code %d, want %d", rt.Topic, rt.ErrorCode, want)
			}
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version, md.AllowAutoTopicCreation = 12, true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("has space")
		md.Topics = append(md.Topics, rt)
		if resp := r.roundTrip(md).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("metadata auto-create of an illegal name: code %d", resp.Topics[0].ErrorCode)
		}
		stillWorks(t)
	})
}

// TestPipelinedResponsesInOrder sends many requests at once on one
// connection, including fetches that wait and requests answered at once,
// and checks responses come back in request order.
func TestPipelinedResponsesInOrder(t *testing.T) {
	n := kafkatest.Start(t, kafkatest.Options{})
	const topic = "pipeline"
	cl := newClient(t, n)
	createTopic(t, cl, topic, 1, nil)
	r := dialRaw(t, n.Addr)
	var want []kmsg.Request
	for i := range 30 {
		var req kmsg.Request
		switch i % 3 {
		case 0:
			f := kmsg.NewPtrFetchRequest()
			f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes, f.SessionEpoch = 12, int32(200-i*5), 1, 1<<20, -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			f.Topics = append(f.Topics, rt)
			req = f
		case 1:
			req = produceReq(9, topic, 0, -1, testBatch(t, segment.CodecNone))
		default:
			req = kmsg.NewPtrApiVersionsRequest()
		}
		r.send(req)
		want = append(want, req)
	}
	for i, req := range want {
		resp := req.ResponseKind()
		if corr := r.recv(resp); corr != int32(i+1) {
			t.Fatalf("response %d has correlation id %d", i+1, corr)
		}
	}
	// Ten produces made ten records, in order.
	if p := listOffset(t, cl, topic, 0, -1); p.Offset != 10 {
		t.Fatalf("high watermark %d, want 10", p.Offset)
	}
}

// TestIdleTimeout checks an idle connection is closed, and one waiting for
// a response is not.
func TestIdleTimeout(t *testing.T) {
	n := kafkatest.Start(t, kafkatest.Options{Server: func(c *kafka.Config) { c.IdleTimeout = 300 * time.Millisecond }})
	cl := newClient(t, n)
	createTopic(t, cl, "idle", 1, nil)
	busy := dialRaw(t, n.Addr)
	f := kmsg.NewPtrFetchRequest()
	f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes, f.SessionEpoch = 12, 1000, 1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "idle"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	f.Topics = append(f.Topics, rt)
	// A fetch parked longer than the idle timeout still gets its answer.
	if resp := busy.roundTrip(f).(*kmsg.FetchResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("parked fetch: code %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	idle := dialRaw(t, n.Addr)
	start := time.Now()
	idle.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
}

// TestPipelinedRequestsAreBounded pipelines more long-polling fetches and
// more requests than a connection may have unfinished: the connection
// dispatches only up to its bounds (maxInflightFetches fetches, and
// MaxInflight requests), reads the rest as responses are written, and
// still answers everything in request order.
func TestPipelinedRequestsAreBounded(t *testing.T) {
	const inflight = 6
	n := kafkatest.Start(t, kafkatest.Options{Server: func(c *kafka.Config) { c.MaxInflight = inflight }})
	const topic = "bounded"
	cl := newClient(t, n)
	createTopic(t, cl, topic, 1, nil)
	dispatched := func(api string) float64 {
		return counterValue(t, n, "morax_kafka_requests_total", api)
	}
	before := dispatched("Fetch")
	r := dialRaw(t, n.Addr)
	var want []kmsg.Request
	for i := range 12 {
		var req kmsg.Request
		if i < 8 {
			req = fetchReq(topic, 800*time.Millisecond, 1, 1<<20, 1<<20, 0)
		} else {
			req = kmsg.NewPtrApiVersionsRequest()
		}
		r.send(req)
		want = append(want, req)
	}
	// The first four fetches park; the fifth waits to be dispatched.
	deadline := time.Now().Add(5 * time.Second)
	for dispatched("Fetch")-before < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %v fetches dispatched", dispatched("Fetch")-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a fifth dispatch would show by now
	if got := dispatched("Fetch") - before; got != 4 {
		t.Fatalf("%v fetches dispatched while 4 were parked, want 4 (maxInflightFetches)", got)
	}
	for i, req := range want {
		resp := req.ResponseKind()
		if corr := r.recv(resp); corr != int32(i+1) {
			t.Fatalf("response %d has correlation id %d", i+1, corr)
		}
	}
	if got := dispatched("Fetch") - before; got != 8 {
		t.Fatalf("%v fetches dispatched in the end, want 8", got)
	}
}

// counterValue reads one labelled counter of the node's registry (0 when
// it has not been counted yet).
func counterValue(t *testing.T, n *kafkatest.Node, name, label string) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
