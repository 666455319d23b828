package kafka_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// answerWithin bounds the wait for one fuzzed request's answer. It is not a
// latency check: every wait a request may ask for is clamped far below it
// (see clampWaits), so running out of it means a handler never answered.
const answerWithin = 30 * time.Second

// fuzzTopic is a topic the seeds name, so that handlers get past the
// unknown-topic checks into their real work.
const fuzzTopic = "fuzz"

// apiPair is one API key at one version the node advertises.
type apiPair struct{ key, version int16 }

// advertised asks the node which keys and versions it advertises, with the
// ApiVersions request every client starts with.
func advertised(tb testing.TB, addr string) []apiPair {
	tb.Helper()
	fc := dialFuzz(tb, addr)
	defer fc.nc.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	corr, err := fc.send(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	got, rest, err := fc.recv()
	if err != nil || got != corr {
		tb.Fatalf("ApiVersions: correlation %d, %v", got, err)
	}
	if _, err := responseBody(resp, rest); err != nil || resp.ErrorCode != 0 {
		tb.Fatalf("ApiVersions: code %d, %v", resp.ErrorCode, err)
	}
	var pairs []apiPair
	for _, k := range resp.ApiKeys {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			pairs = append(pairs, apiPair{k.ApiKey, v})
		}
	}
	return pairs
}

// fuzzConn is a raw Kafka connection that reports failures as errors, so
// one connection can serve many fuzz iterations.
type fuzzConn struct {
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialFuzz(tb testing.TB, addr string) *fuzzConn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	return &fuzzConn{nc: nc, br: bufio.NewReader(nc)}
}

// send writes req at its version and returns its correlation id.
func (c *fuzzConn) send(req kmsg.Request) (int32, error) {
	c.corr++
	_ = c.nc.SetWriteDeadline(time.Now().Add(answerWithin))
	_, err := c.nc.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, c.corr))
	return c.corr, err
}

// recv reads one response frame and returns its correlation id and the
// rest of the frame: the response header's tags, if any, and the body.
func (c *fuzzConn) recv() (int32, []byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(answerWithin))
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 200<<20 {
		return 0, nil, fmt.Errorf("response frame of %d bytes", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.br, frame); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(frame)), frame[4:], nil
}

// responseBody strips the response header's tag section, which flexible
// responses but ApiVersions' carry (header v1), and decodes the body into
// resp, whose version must be set.
func responseBody(resp kmsg.Response, rest []byte) ([]byte, error) {
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		if len(rest) == 0 || rest[0] != 0 {
			return nil, fmt.Errorf("response header tags %x", rest[:min(len(rest), 1)])
		}
		rest = rest[1:]
	}
	return rest, resp.ReadFrom(rest)
}

// logWatch records the node's warnings and errors: a handler panic, a
// double answer or an unexpected server-side failure is logged rather than
// sent to the client, so the fuzz target reads the log to see them.
type logWatch struct {
	mu  sync.Mutex
	got []string
}

// Enabled implements slog.Handler: warnings and errors only.
func (w *logWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle implements slog.Handler, keeping the record as one line.
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	w.mu.Lock()
	w.got = append(w.got, b.String())
	w.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler; the loggers' own attributes (component,
// connection) do not help tell what a fuzzed request did, so they are
// dropped.
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler { return w }

// WithGroup implements slog.Handler, dropping the group as WithAttrs does.
func (w *logWatch) WithGroup(string) slog.Handler { return w }

// take returns and forgets what was logged so far.
func (w *logWatch) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.got
	w.got = nil
	return got
}

// clampWaits shortens the waits a request may ask for (a fetch's max wait,
// a join's rebalance timeout), so that an iteration costs milliseconds;
// what the handlers do with any value other than the wait's length is
// still reached, negative values included. Session timeouts are not
// clamped: the node refuses those over 500 ms (see FuzzHandlers).
func clampWaits(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		if r.MaxWaitMillis > 20 {
			r.MaxWaitMillis %= 20
		}
	case *kmsg.JoinGroupRequest:
		if r.RebalanceTimeoutMillis > 200 {
			r.RebalanceTimeoutMillis %= 200
		}
	}
}

// unknownServerErrors lists the ErrorCode fields of resp, at any depth,
// holding UNKNOWN_SERVER_ERROR: Kafka's 500, never the answer to input a
// handler can judge.
func unknownServerErrors(resp kmsg.Response) []string {
	var found []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 && int16(v.Field(i).Int()) == kerr.UnknownServerError.Code {
					found = append(found, path+".ErrorCode")
				}
				walk(v.Field(i), path+"."+f.Name)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(reflect.ValueOf(resp), "")
	return found
}

// handlerSeeds are realistic requests naming the fuzz topic and group, at
// their newest version; their bodies are added at every version that
// decodes them.
func handlerSeeds(tb testing.TB) []kmsg.Request {
	tb.Helper()
	batch, err := segment.BuildBatch([]segment.Record{{Timestamp: 1700000000000, Key: []byte("k"), Value: []byte("v")}}, segment.CodecNone)
	if err != nil {
		tb.Fatal(err)
	}
	produce := produceReq(13, fuzzTopic, 0, -1, batch)
	produce0 := produceReq(13, fuzzTopic, 1, 0, batch)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes, fetch.SessionEpoch = 10, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = fuzzTopic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	list := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = fuzzTopic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)

	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(fuzzTopic)
	md.Topics = append(md.Topics, mt)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = fuzzTopic
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 0
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)

	offFetch := kmsg.NewPtrOffsetFetchRequest()
	offFetch.Group = "g"
	oft := kmsg.NewOffsetFetchRequestTopic()
	oft.Topic, oft.Partitions = fuzzTopic, []int32{0}
	offFetch.Topics = append(offFetch.Topics, oft)

	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorKey, find.CoordinatorKeys = "g", []string{"g"}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = "g", 100, 100, "consumer"
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", []byte{0, 1, 0, 0, 0, 1, 0, 4, 'f', 'u', 'z', 'z', 0, 0, 0, 0}
	join.Protocols = append(join.Protocols, jp)

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", "m", 1
	sa := kmsg.NewSyncGroupRequestGroupAssignment()
	sa.MemberID, sa.MemberAssignment = "m", []byte{0, 1, 0, 0, 0, 0}
	sync.GroupAssignment = append(sync.GroupAssignment, sa)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", "m", 1

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "g", "m"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = "m"
	leave.Members = append(leave.Members, lm)

	describeGroups := kmsg.NewPtrDescribeGroupsRequest()
	describeGroups.Groups = []string{"g"}

	create := kmsg.NewPtrCreateTopicsRequest()
	crt := kmsg.NewCreateTopicsRequestTopic()
	crt.Topic, crt.NumPartitions, crt.ReplicationFactor = "fuzz-created", 2, -1
	cc := kmsg.NewCreateTopicsRequestTopicConfig()
	cc.Name, cc.Value = "retention.ms", kmsg.StringPtr("60000")
	crt.Configs = append(crt.Configs, cc)
	create.Topics = append(create.Topics, crt)
	create.TimeoutMillis = 1000

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"fuzz-created"}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("fuzz-created")
	del.Topics = append(del.Topics, dt)

	delRecords := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = fuzzTopic
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = 0
	drt.Partitions = append(drt.Partitions, drp)
	delRecords.Topics = append(delRecords.Topics, drt)

	initPID := kmsg.NewPtrInitProducerIDRequest()
	initPID.ProducerID, initPID.ProducerEpoch = -1, -1

	leaderEpoch := kmsg.NewPtrOffsetForLeaderEpochRequest()
	let := kmsg.NewOffsetForLeaderEpochRequestTopic()
	let.Topic = fuzzTopic
	lep := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	lep.CurrentLeaderEpoch, lep.LeaderEpoch = -1, 0
	let.Partitions = append(let.Partitions, lep)
	leaderEpoch.Topics = append(leaderEpoch.Topics, let)

	describeConfigs := kmsg.NewPtrDescribeConfigsRequest()
	dcr := kmsg.NewDescribeConfigsRequestResource()
	dcr.ResourceType, dcr.ResourceName = kmsg.ConfigResourceTypeTopic, fuzzTopic
	describeConfigs.Resources = append(describeConfigs.Resources, dcr)

	alter := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, fuzzTopic
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name, ac.Value = "retention.ms", kmsg.StringPtr("86400000")
	ar.Configs = append(ar.Configs, ac)
	alter.Resources = append(alter.Resources, ar)
	alter.ValidateOnly = true

	incAlter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ir := kmsg.NewIncrementalAlterConfigsRequestResource()
	ir.ResourceType, ir.ResourceName = kmsg.ConfigResourceTypeTopic, fuzzTopic
	ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	ic.Name, ic.Op, ic.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("86400000")
	ir.Configs = append(ir.Configs, ic)
	incAlter.Resources = append(incAlter.Resources, ir)
	incAlter.ValidateOnly = true

	logDirs := kmsg.NewPtrDescribeLogDirsRequest()
	ldt := kmsg.NewDescribeLogDirsRequestTopic()
	ldt.Topic, ldt.Partitions = fuzzTopic, []int32{0, 1}
	logDirs.Topics = append(logDirs.Topics, ldt)

	createParts := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = fuzzTopic, 3
	createParts.Topics = append(createParts.Topics, cpt)
	createParts.ValidateOnly = true

	delGroups := kmsg.NewPtrDeleteGroupsRequest()
	delGroups.Groups = []string{"g-empty"}

	offDel := kmsg.NewPtrOffsetDeleteRequest()
	offDel.Group = "g"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = fuzzTopic
	odp := kmsg.NewOffsetDeleteRequestTopicPartition()
	odt.Partitions = append(odt.Partitions, odp)
	offDel.Topics = append(offDel.Topics, odt)

	producers := kmsg.NewPtrDescribeProducersRequest()
	pt := kmsg.NewDescribeProducersRequestTopic()
	pt.Topic, pt.Partitions = fuzzTopic, []int32{0}
	producers.Topics = append(producers.Topics, pt)

	apiVersions := kmsg.NewPtrApiVersionsRequest()
	apiVersions.ClientSoftwareName, apiVersions.ClientSoftwareVersion = "fuzz", "1.0"

	return []kmsg.Request{
		produce, produce0, fetch, list, md, commit, offFetch, find, join, sync, hb, leave,
		describeGroups, kmsg.NewPtrListGroupsRequest(), create, del, delRecords, initPID,
		leaderEpoch, describeConfigs, alter, incAlter, logDirs, createParts, delGroups,
		offDel, producers, apiVersions, kmsg.NewPtrDescribeClusterRequest(),
	}
}

// FuzzHandlers sends every key the node advertises, at every advertised
// version, with a body decoded by kmsg from the fuzzer's bytes, through a
// real connection to a real in-process node (embedded stores), and checks:
//
//   - the request is answered, with its correlation id, by a response kmsg
//     decodes at the request's version and that re-encodes to the same
//     bytes; the only documented exceptions are an acks=0 produce (no
//     response; the connection is closed when a partition failed, so the
//     client refreshes its metadata) and a produce below v3, which is
//     advertised for librdkafka's sake but refused by closing the
//     connection (see 00_produce.go);
//   - no ErrorCode anywhere in the response is UNKNOWN_SERVER_ERROR;
//   - the node logs no warning or error (a recovered handler panic, a
//     double answer and an unexpected server-side failure all log one);
//   - the connection keeps serving: an ApiVersions request pipelined after
//     each fuzzed one is answered.
//
// One node and one connection serve every iteration of a fuzz worker.
func FuzzHandlers(f *testing.F) {
	watch := &logWatch{}
	n := kafkatest.Start(f, kafkatest.Options{
		Logger: slog.New(watch),
		// A fuzzed CreateTopics may ask for up to the limit; a small one
		// keeps such an iteration cheap, and the refusal above it is
		// reached all the same.
		Broker: func(o *actors.Options) { o.Limits.MaxPartitionsPerTopic = 8 },
		Groups: func(o *actors.GroupOptions) {
			// No initial delay, and sessions of at most 500 ms: a member
			// a fuzzed join left behind expires quickly, so a later join
			// of its group does not wait long for it to rejoin.
			o.InitialRebalanceDelay = -1
			o.MinSessionTimeout, o.MaxSessionTimeout = time.Millisecond, 500*time.Millisecond
		},
	})
	setup := dialFuzz(f, n.Addr)
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fuzzTopic, 2, -1
	create.Topics = append(create.Topics, rt)
	if _, err := setup.send(create); err != nil {
		f.Fatal(err)
	}
	if _, _, err := setup.recv(); err != nil {
		f.Fatalf("create %s: %v", fuzzTopic, err)
	}
	setup.nc.Close()

	pairs := advertised(f, n.Addr)
	index := map[apiPair]uint16{}
	for i, p := range pairs {
		index[p] = uint16(i)
		req := kmsg.RequestForKey(p.key)
		req.SetVersion(p.version)
		f.Add(uint16(i), req.AppendTo(nil))
	}
	for _, req := range handlerSeeds(f) {
		for _, p := range pairs {
			if p.key != req.Key() {
				continue
			}
			req.SetVersion(p.version)
			f.Add(index[p], req.AppendTo(nil))
		}
	}
	if len(watch.take()) > 0 {
		f.Fatal("the node logged warnings while starting")
	}

	var fc *fuzzConn
	f.Cleanup(func() {
		if fc != nil {
			fc.nc.Close()
		}
	})
	f.Fuzz(func(t *testing.T, sel uint16, body []byte) {
		p := pairs[int(sel)%len(pairs)]
		req := kmsg.RequestForKey(p.key)
		req.SetVersion(p.version)
		if err := req.ReadFrom(body); err != nil {
			return // not a request of this key and version
		}
		clampWaits(req)
		name := fmt.Sprintf("%s v%d", kmsg.NameForKey(p.key), p.version)
		if fc == nil {
			fc = dialFuzz(t, n.Addr)
		}
		// refused: the node closes the connection without answering.
		refused := p.key == int16(kmsg.Produce) && p.version < 3
		// silent: no response is due, and a failure closes the connection.
		produce, _ := req.(*kmsg.ProduceRequest)
		silent := produce != nil && produce.Acks == 0

		corr, err := fc.send(req)
		if err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		probe := kmsg.NewPtrApiVersionsRequest()
		probeCorr, err := fc.send(probe)
		if err != nil && !refused && !silent {
			t.Fatalf("%s: write the ApiVersions probe: %v", name, err)
		}

		got, rest, err := fc.recv()
		closed := err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET))
		switch {
		case closed && (refused || silent):
			fc.nc.Close()
			fc = nil
		case err != nil:
			t.Fatalf("%s: no answer: %v", name, err)
		case refused:
			t.Fatalf("%s: answered (correlation %d); want the connection closed", name, got)
		case silent && got == probeCorr:
			// acks=0 and nothing failed: the probe's answer comes first.
			checkProbe(t, name, rest)
		case got != corr:
			t.Fatalf("%s: correlation id %d, want %d", name, got, corr)
		default:
			if silent {
				t.Fatalf("%s: acks=0 produce answered", name)
			}
			resp := req.ResponseKind()
			resp.SetVersion(p.version)
			rbody, err := responseBody(resp, rest)
			if err != nil {
				t.Fatalf("%s: response does not decode: %v", name, err)
			}
			if again := resp.AppendTo(nil); string(again) != string(rbody) {
				t.Fatalf("%s: response re-encodes differently:\n sent  %x\n again %x", name, rbody, again)
			}
			if bad := unknownServerErrors(resp); len(bad) > 0 {
				t.Fatalf("%s: UNKNOWN_SERVER_ERROR at %v", name, bad)
			}
			got, pbody, err := fc.recv()
			if err != nil || got != probeCorr {
				t.Fatalf("%s: the connection stopped serving: correlation %d, %v", name, got, err)
			}
			checkProbe(t, name, pbody)
		}
		if silent && fc != nil {
			// A partition of an acks=0 produce may fail after the probe
			// was answered, and the node then closes the connection (as
			// documented); the next iteration starts on a fresh one.
			fc.nc.Close()
			fc = nil
		}
		if logged := watch.take(); len(logged) > 0 {
			t.Fatalf("%s: the node logged:\n%s", name, strings.Join(logged, "\n"))
		}
	})
}

// checkProbe checks the answer to the ApiVersions probe.
func checkProbe(t *testing.T, name string, body []byte) {
	t.Helper()
	resp := kmsg.NewPtrApiVersionsResponse()
	if _, err := responseBody(resp, body); err != nil || resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("%s: ApiVersions probe after it: code %d, %v", name, resp.ErrorCode, err)
	}
}

// TestDeleteUnknownGroupLogsNothing: deleting a group that does not exist
// is answered GROUP_ID_NOT_FOUND without a warning in the node's log (it
// logged "group metadata operation failed" for every such request; found
// by FuzzHandlers' seeds).
func TestDeleteUnknownGroupLogsNothing(t *testing.T) {
	watch := &logWatch{}
	n := kafkatest.Start(t, kafkatest.Options{Logger: slog.New(watch)})
	r := dialRaw(t, n.Addr)
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = []string{"no-such-group"}
	resp := r.roundTrip(req).(*kmsg.DeleteGroupsResponse)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("answer %+v, want GROUP_ID_NOT_FOUND", resp.Groups)
	}
	if logged := watch.take(); len(logged) > 0 {
		t.Fatalf("the node logged:\n%s", strings.Join(logged, "\n"))
	}
}
