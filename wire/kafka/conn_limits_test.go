package kafka_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/persistence/segment/segmenttest"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// gaugeValue reads an unlabelled gauge of the node's registry.
func gaugeValue(t *testing.T, n *kafkatest.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; it waits for state, it asserts nothing about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialFrom connects to addr from the loopback address src, so one test can
// be several client hosts.
func dialFrom(t *testing.T, src, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c), corr: new(int32)}
	t.Cleanup(func() { c.Close() })
	return r
}

// alive checks the connection is served.
func (r *rawConn) alive() {
	r.t.Helper()
	if resp := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		r.t.Fatalf("ApiVersions: code %d", resp.ErrorCode)
	}
}

// TestConnectionLimits: connections over the per-IP or total bound are
// closed on accept and counted by reason; closing one frees its slot.
func TestConnectionLimits(t *testing.T) {
	n := kafkatest.Start(t, kafkatest.Options{Server: func(c *kafka.Config) {
		c.MaxConnections, c.MaxConnectionsPerIP = 3, 2
	}})
	refused := func(reason string) float64 {
		return counterValue(t, n, "morax_kafka_connections_refused_total", reason)
	}
	a := dialFrom(t, "127.0.0.1", n.Addr)
	a.alive()
	dialFrom(t, "127.0.0.1", n.Addr).alive()
	dialFrom(t, "127.0.0.1", n.Addr).expectClosed()
	if got := refused("max_connections_per_ip"); got != 1 {
		t.Errorf("per-IP refusals %v, want 1", got)
	}
	dialFrom(t, "127.0.0.2", n.Addr).alive()
	dialFrom(t, "127.0.0.3", n.Addr).expectClosed()
	if got := refused("max_connections"); got != 1 {
		t.Errorf("total refusals %v, want 1", got)
	}
	if got := gaugeValue(t, n, "morax_kafka_connections"); got != 3 {
		t.Errorf("%v connections open, want 3", got)
	}
	// A closed connection gives its slot back once the server sees it go.
	a.c.Close()
	waitFor(t, "the closed connection to be released", func() bool {
		return gaugeValue(t, n, "morax_kafka_connections") == 2
	})
	dialFrom(t, "127.0.0.3", n.Addr).alive()
}

// idleConnBytes opens conns idle connections to a node and returns the heap
// and stack bytes the process gained per connection, once every connection
// is accepted and parked waiting for a request. It includes the client
// side's socket (a few hundred bytes).
func idleConnBytes(t *testing.T, n *kafkatest.Node, conns int) float64 {
	t.Helper()
	before := memInUse()
	goroutines := runtime.NumGoroutine()
	cs := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.DialTimeout("tcp", n.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		cs = append(cs, c)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	waitFor(t, "every connection to be served", func() bool {
		return gaugeValue(t, n, "morax_kafka_connections") >= float64(conns) &&
			runtime.NumGoroutine() >= goroutines+2*conns
	})
	return float64(memInUse()-before) / float64(conns)
}

// memInUse is the heap and goroutine stack memory in use after a full GC.
func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// TestIdleConnectionMemory bounds what an idle connection costs. Before
// buffers were allocated on demand each held about 130 KiB (64 KiB read
// and write buffers); now an idle one holds its goroutines, its actor and
// its socket. The bound has generous slack (the race detector and GC
// timing move it), far below the old cost.
func TestIdleConnectionMemory(t *testing.T) {
	const conns = 500
	n := kafkatest.Start(t, kafkatest.Options{Server: func(c *kafka.Config) {
		c.MaxConnections, c.MaxConnectionsPerIP = 2*conns, 2*conns
	}})
	per := idleConnBytes(t, n, conns)
	t.Logf("%d idle connections: %.0f bytes each (heap + stacks)", conns, per)
	if per > 48<<10 {
		t.Fatalf("an idle connection costs %.0f bytes, want under %d", per, 48<<10)
	}
}

// TestInflightResponseBytes is finding F6 scaled down: a connection
// pipelines all-topics Metadata requests over many topics and never reads.
// The request count bound is set out of reach, so only the response byte
// bound can stop it: the connection stops reading requests, the heap it
// holds stays within the bound plus one response (with slack), other
// clients are served meanwhile, and once the client reads, every response
// arrives in order.
func TestInflightResponseBytes(t *testing.T) {
	const (
		topics   = 200
		requests = 400
		limit    = 256 << 10
	)
	n := kafkatest.Start(t, kafkatest.Options{Broker: func(o *actors.Options) {
		// Many topics at once, which the creation limits would refuse.
		o.Limits = actors.DefaultLimits()
		o.Limits.MaxTopicsPerRequest, o.Limits.CreateBurst = 2*topics, 2*topics
	}, Server: func(c *kafka.Config) {
		// Out of reach of the requests sent (and small enough that the
		// connection's queue, sized by it, does not blur the measure).
		c.MaxInflight = 2 * requests
		c.MaxInflightResponseBytes = limit
	}})
	cl := newClient(t, n)
	create := kmsg.NewPtrCreateTopicsRequest()
	create.TimeoutMillis = 30000
	for i := range topics {
		ct := kmsg.NewCreateTopicsRequestTopic()
		// Long names make each all-topics response about 50 KiB.
		ct.Topic = fmt.Sprintf("%03d-%s", i, strings.Repeat("t", 240))
		ct.NumPartitions, ct.ReplicationFactor = 1, 1
		create.Topics = append(create.Topics, ct)
	}
	cresp, err := create.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for _, ct := range cresp.Topics {
		if ct.ErrorCode != 0 {
			t.Fatalf("create %s: code %d", ct.Topic, ct.ErrorCode)
		}
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	mreq.Topics = nil // all topics
	one := dialRaw(t, n.Addr).roundTrip(mreq).(*kmsg.MetadataResponse)
	if len(one.Topics) != topics {
		t.Fatalf("metadata lists %d topics, want %d", len(one.Topics), topics)
	}
	respBytes := len(one.AppendTo(nil))

	before := memInUse()
	dispatched := func() float64 { return counterValue(t, n, "morax_kafka_requests_total", "Metadata") }
	start := dispatched()
	r := dialRaw(t, n.Addr)
	frames := make([]byte, 0, requests*64)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))
	for i := range requests {
		// AppendRequest writes its size prefix at the start of dst, so
		// each frame is built on its own.
		frames = append(frames, formatter.AppendRequest(nil, mreq, int32(i+1))...)
	}
	// Written from a goroutine: once the server stops reading, the write
	// blocks until the test reads the responses below.
	wrote := make(chan error, 1)
	go func() {
		_ = r.c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		_, err := r.c.Write(frames)
		wrote <- err
	}()
	waitFor(t, "the connection to stop reading on its response bytes", func() bool {
		return counterValue(t, n, "morax_kafka_read_paused_total", "response_bytes") > 0
	})
	// Settled: nothing more is dispatched while the client does not read.
	var stalled float64
	waitFor(t, "dispatching to settle", func() bool {
		d := dispatched()
		settled := d == stalled
		stalled = d
		if !settled {
			time.Sleep(50 * time.Millisecond)
		}
		return settled
	})
	if got := stalled - start; got >= requests {
		t.Fatalf("all %d requests dispatched without the client reading", requests)
	}
	held := memInUse() - before
	t.Logf("%d topics, responses of %d bytes: %v of %d requests dispatched before the client read; heap held %d bytes (limit %d)",
		topics, respBytes, stalled-start, requests, held, limit)
	// The bound plus one response, plus the request bytes read ahead and
	// GC slack; without the bound the connection would hold every
	// response the kernel's socket buffers did not absorb (over 10 MiB
	// here: 400 responses of about 60 KB, less what the kernel buffers).
	if bound := int64(limit + respBytes + 8<<20); held > bound {
		t.Errorf("a non-reading connection holds %d bytes of heap, want under %d", held, bound)
	}

	// Others are served meanwhile.
	if resp := dialRaw(t, n.Addr).roundTrip(mreq).(*kmsg.MetadataResponse); len(resp.Topics) != topics {
		t.Errorf("another connection's metadata lists %d topics", len(resp.Topics))
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: *one.Topics[0].Topic, Value: []byte("v")}).FirstErr(); err != nil {
		t.Errorf("produce from another client: %v", err)
	}

	// Reading resumes the connection; every response arrives, in order.
	for i := range requests {
		resp := mreq.ResponseKind()
		if corr := r.recv(resp); corr != int32(i+1) {
			t.Fatalf("response %d has correlation id %d", i+1, corr)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write requests: %v", err)
	}
}

// TestCompressionBombsRefused is finding F5: a small batch that expands
// past partition.max_decompressed_batch_bytes is refused with
// MESSAGE_TOO_LARGE and never stored, for every codec, whether sent raw or
// by franz-go; a batch whose record count disagrees with its records is
// CORRUPT_MESSAGE. The log end does not move and the node keeps serving.
func TestCompressionBombsRefused(t *testing.T) {
	const limit = 2 << 20
	n := kafkatest.Start(t, kafkatest.Options{Broker: func(o *actors.Options) { o.MaxDecompressedBatchBytes = limit }})
	cl := newClient(t, n)
	const topic = "bombs"
	createTopic(t, cl, topic, 1, nil)
	r := dialRaw(t, n.Addr)
	end := func() int64 {
		t.Helper()
		p := listOffset(t, cl, topic, 0, -1)
		if p.ErrorCode != 0 {
			t.Fatalf("list offsets: code %d", p.ErrorCode)
		}
		return p.Offset
	}
	refused := func(reason string) float64 {
		return counterValue(t, n, "morax_append_errors_total", reason)
	}
	for _, bc := range []struct {
		name    string
		codec   segment.Codec
		xerial  bool
		expands int64
	}{
		{"gzip", segment.CodecGzip, false, 8 << 20},
		{"lz4", segment.CodecLZ4, false, 8 << 20},
		{"zstd", segment.CodecZstd, false, 8 << 20},
		{"snappy", segment.CodecSnappy, false, 4 << 20},
		{"snappy-xerial", segment.CodecSnappy, true, 8 << 20},
	} {
		t.Run(bc.name, func(t *testing.T) {
			b, err := segmenttest.Bomb(bc.codec, 1, bc.expands, bc.xerial)
			if err != nil {
				t.Fatalf("build bomb: %v", err)
			}
			before, counted := end(), refused("decompressed_too_large")
			if code := produceCode(t, r.on(t), produceReq(9, topic, 0, -1, b)); code != kerr.MessageTooLarge.Code {
				t.Fatalf("%d-byte batch expanding to %d: code %d, want MESSAGE_TOO_LARGE", len(b), bc.expands, code)
			}
			if got := end(); got != before {
				t.Errorf("log end moved from %d to %d: the bomb was stored", before, got)
			}
			if got := refused("decompressed_too_large"); got != counted+1 {
				t.Errorf("refusals counted %v, want %v", got, counted+1)
			}
		})
	}
	t.Run("record-count", func(t *testing.T) {
		recs := []segment.Record{{Value: []byte("a")}, {Value: []byte("b")}}
		for _, c := range []segment.Codec{segment.CodecGzip, segment.CodecZstd} {
			b, err := segment.BuildBatch(recs, c)
			if err != nil {
				t.Fatal(err)
			}
			before := end()
			for _, claim := range []int32{1, 3} {
				if code := produceCode(t, r.on(t), produceReq(9, topic, 0, -1, segmenttest.Recount(b, claim))); code != kerr.CorruptMessage.Code {
					t.Errorf("%v batch of 2 records claiming %d: code %d, want CORRUPT_MESSAGE", c, claim, code)
				}
			}
			if got := end(); got != before {
				t.Errorf("log end moved from %d to %d", before, got)
			}
		}
	})
	t.Run("franz-go", func(t *testing.T) {
		// A real producer's batch: one record of 8 MiB of zeros, a few KB
		// once compressed, four times the limit once decompressed.
		before := end()
		pr := newClient(t, n, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerBatchMaxBytes(16<<20), kgo.RecordRetries(0))
		err := pr.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: make([]byte, 8<<20)}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("franz-go produce of a batch expanding to 8 MiB: %v, want MESSAGE_TOO_LARGE", err)
		}
		if got := end(); got != before {
			t.Errorf("log end moved from %d to %d", before, got)
		}
	})
	// The node still serves, bombs and all: a normal compressed batch is
	// stored and read back.
	before := end()
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte("fine")}).FirstErr(); err != nil {
		t.Fatalf("normal produce after the bombs: %v", err)
	}
	if got := end(); got != before+1 {
		t.Fatalf("log end %d after a normal produce, want %d", got, before+1)
	}
	if recs := consume(t, n, topic, 1, 1); string(recs[0].Value) != "fine" {
		t.Fatalf("consumed %q", recs[0].Value)
	}
}
