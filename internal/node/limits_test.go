package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/objstore"
)

// The tests of issue #12 ("limits against abuse"): each finding of the
// probe, scaled down through the [limits] keys so it runs in seconds, on
// both deployments, with real clients against a whole node.

// deployment is a way to configure a node: embedded, or PostgreSQL and
// MinIO from the dev servers.
type deployment struct {
	name   string
	config func(t *testing.T) config.Config
}

func deployments() []deployment {
	return []deployment{{"embedded", embeddedConfig}, {"pg+minio", clusteredConfig}}
}

// clusteredConfig is a node on a fresh PostgreSQL database and MinIO
// bucket of the dev servers.
func clusteredConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := embeddedConfig(t)
	cfg.Server.Meta.ServiceURL = config.SecretURL(itest.PostgresURL(t))
	s3 := itest.S3(t)
	cfg.Storage = config.Default().Storage
	cfg.Storage.Scheme, cfg.Storage.Bucket, cfg.Storage.Region = config.SchemeS3, "t-"+itest.RandomName(10), s3.Region
	cfg.Storage.Endpoint, cfg.Storage.PathStyle = s3.Endpoint, true
	cfg.Storage.AccessKeyID, cfg.Storage.SecretAccessKey = s3.AccessKey, config.Secret(s3.SecretKey)
	cfg.Cluster.RemoteListenAddr = unusedAddr(t)
	bucket, err := objstore.NewS3(t.Context(), s3Config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	bucket.Close()
	return cfg
}

// runNode builds and runs a node on cfg until the test ends (or stop is
// called), and waits until it answers its health check.
func runNode(t *testing.T, cfg config.Config) (n *Node, logs *lockedBuffer, stop func()) {
	t.Helper()
	logger, logs := testLogger()
	n, err := New(t.Context(), cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	waitHealthy(t, n.WALAddr().String())
	return n, logs, stop
}

func kafkaClient(t *testing.T, n *Node, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.KafkaAddr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopics sends one CreateTopics request and returns each topic's
// answer by name, and the throttle time.
func createTopics(t *testing.T, cl *kgo.Client, partitions int32, names ...string) (map[string]kmsg.CreateTopicsResponseTopic, int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, name := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	out := make(map[string]kmsg.CreateTopicsResponseTopic, len(resp.Topics))
	for _, st := range resp.Topics {
		out[st.Topic] = st
	}
	if len(out) != len(names) {
		t.Fatalf("CreateTopics answered %d topics, want %d", len(out), len(names))
	}
	return out, resp.ThrottleMillis
}

func createPartitions(t *testing.T, cl *kgo.Client, topic string, count int32) kmsg.CreatePartitionsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, count
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("CreatePartitions: %v (%d topics)", err, len(resp.Topics))
	}
	return resp.Topics[0]
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error, msg *string) {
	t.Helper()
	if got != want.Code {
		t.Errorf("%s: error %v (%s), want %v", what, kerr.ErrorForCode(got), deref(msg), want)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// counter is the value of the counter name with label reason in reg.
func counter(t *testing.T, reg prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// bystander is another client of the node producing to its own topic
// while a test abuses the node: it must keep being served.
type bystander struct {
	t     *testing.T
	n     *Node
	topic string
	stop  chan struct{}
	done  chan struct{}
	sent  int
	errs  []error
}

// startBystander creates topic (before any limit is used up) and produces
// to it, one acknowledged record after another, until check.
func startBystander(t *testing.T, n *Node, topic string) *bystander {
	t.Helper()
	cl := kafkaClient(t, n, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res, _ := createTopics(t, cl, 1, topic)
	if c := res[topic].ErrorCode; c != 0 {
		t.Fatalf("create the bystander's topic: %v", kerr.ErrorForCode(c))
	}
	by := &bystander{t: t, n: n, topic: topic, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(by.done)
		for {
			select {
			case <-by.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v" + strconv.Itoa(by.sent))}).FirstErr()
			cancel()
			if err != nil {
				by.errs = append(by.errs, err)
				return
			}
			by.sent++
		}
	}()
	return by
}

// check stops the bystander's producer, then reads back everything it
// produced with a new consumer.
func (by *bystander) check() {
	t := by.t
	t.Helper()
	close(by.stop)
	<-by.done
	if len(by.errs) > 0 {
		t.Fatalf("the bystander's produce failed while the node was abused: %v", by.errs)
	}
	if by.sent == 0 {
		t.Fatal("the bystander produced nothing")
	}
	cl := kafkaClient(t, by.n, kgo.ConsumeTopics(by.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for got < by.sent {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("the bystander consumed %d of %d records: %v", got, by.sent, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != "v"+strconv.Itoa(got) {
				t.Fatalf("record %d is %q", got, r.Value)
			}
			got++
		})
	}
}

// F1: one CreateTopics request with a million partitions was accepted and
// took the node down. Now a topic over limits.max_partitions_per_topic is
// INVALID_PARTITIONS (2^31-1 included, answered at once), a creation or
// growth the cluster cannot hold is POLICY_VIOLATION, nothing past the caps
// is created, and another client is served throughout.
func TestLimitsF1PartitionCaps(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			cfg := d.config(t)
			cfg.Limits.MaxPartitionsPerTopic = 40
			cfg.Limits.MaxClusterPartitions = 61 // the bystander's 1, then 60
			n, _, _ := runNode(t, cfg)
			by := startBystander(t, n, "bystander")
			cl := kafkaClient(t, n)

			for _, parts := range []int32{1_000_000, math.MaxInt32, 41} {
				res, _ := createTopics(t, cl, parts, "huge")
				wantCode(t, fmt.Sprintf("create %d partitions", parts), res["huge"].ErrorCode, kerr.InvalidPartitions, res["huge"].ErrorMessage)
			}
			res, _ := createTopics(t, cl, 40, "a")
			wantCode(t, "create a (40, at the per-topic cap)", res["a"].ErrorCode, &kerr.Error{Code: 0}, res["a"].ErrorMessage)
			res, _ = createTopics(t, cl, 21, "b")
			wantCode(t, "create b (21: the cluster would hold 62)", res["b"].ErrorCode, kerr.PolicyViolation, res["b"].ErrorMessage)
			res, _ = createTopics(t, cl, 20, "b")
			wantCode(t, "create b (20: the cluster holds 61)", res["b"].ErrorCode, &kerr.Error{Code: 0}, res["b"].ErrorMessage)
			st := createPartitions(t, cl, "b", 21)
			wantCode(t, "grow b to 21 (cluster full)", st.ErrorCode, kerr.PolicyViolation, st.ErrorMessage)
			st = createPartitions(t, cl, "a", 41)
			wantCode(t, "grow a to 41 (over the per-topic cap)", st.ErrorCode, kerr.InvalidPartitions, st.ErrorMessage)

			// A WAL log is a partition too: a full cluster refuses it, 403.
			resp, err := http.Post("http://"+n.WALAddr().String()+"/v1/create", "application/json", strings.NewReader(`{"name":"wal-1"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"code":"PermissionDenied"`) {
				t.Errorf("WAL create in a full cluster: %s %s, want 403 PermissionDenied", resp.Status, body)
			}

			count, err := n.store.PartitionCount(t.Context())
			if err != nil || count != 61 {
				t.Errorf("the cluster holds %d partitions (%v), want 61: nothing past the caps", count, err)
			}
			if _, err := n.store.Topic(t.Context(), "huge"); err == nil {
				t.Error("topic huge exists")
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "topic_partitions"); got != 4 {
				t.Errorf("refusals for topic_partitions = %v, want 4", got)
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "cluster_partitions"); got != 3 {
				t.Errorf("refusals for cluster_partitions = %v, want 3", got)
			}
			by.check()
		})
	}
}

// F2: 10,000 topics in one request, or creations as fast as a client can
// send them. Now a request naming more than limits.max_topics_per_request
// is POLICY_VIOLATION whole; past the node's creation burst, topics are
// THROTTLING_QUOTA_EXCEEDED with a throttle time (POLICY_VIOLATION for a
// client older than KIP-599), WAL creates are 429 with Retry-After, and
// another client is served throughout.
func TestLimitsF2CreationBurst(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			cfg := d.config(t)
			const rate, burst = 1, 6
			cfg.Limits.CreateRate, cfg.Limits.CreateBurst = rate, burst
			cfg.Limits.MaxTopicsPerRequest = 30
			n, _, _ := runNode(t, cfg)
			by := startBystander(t, n, "bystander") // takes one creation
			cl := kafkaClient(t, n)

			names := make([]string, 10_000)
			for i := range names {
				names[i] = fmt.Sprintf("flood-%05d", i)
			}
			res, _ := createTopics(t, cl, 1, names...)
			for _, name := range names[:3] {
				wantCode(t, "a topic of a 10,000-topic request", res[name].ErrorCode, kerr.PolicyViolation, res[name].ErrorMessage)
			}
			for name, st := range res {
				if st.ErrorCode != kerr.PolicyViolation.Code {
					t.Fatalf("%s of the 10,000-topic request: %v", name, kerr.ErrorForCode(st.ErrorCode))
				}
			}

			// One request of 30 topics: the burst's remaining five are
			// created, the rest throttled.
			start := time.Now()
			res, throttle := createTopics(t, cl, 1, names[:30]...)
			elapsed := time.Since(start)
			created, throttled := 0, 0
			for _, st := range res {
				switch st.ErrorCode {
				case 0:
					created++
				case kerr.ThrottlingQuotaExceeded.Code:
					throttled++
				default:
					t.Errorf("%s: %v", st.Topic, kerr.ErrorForCode(st.ErrorCode))
				}
			}
			// Tokens come back at rate per second while the request runs.
			most := burst - 1 + int(math.Ceil(elapsed.Seconds()*rate))
			if created < burst-1 || created > most || throttled != 30-created {
				t.Errorf("created %d, throttled %d of 30 topics in %s; want %d to %d created, the rest throttled", created, throttled, elapsed, burst-1, most)
			}
			if throttle <= 0 {
				t.Errorf("throttle time %d ms, want > 0", throttle)
			}

			// A client before KIP-599 (CreateTopics v5) is refused with
			// POLICY_VIOLATION, which it knows. A token may come back
			// between two requests (one a second), so the test asks until
			// it is refused, counting what got through.
			old := kafkaClient(t, n, kgo.MaxVersions(kversion.V2_6_0()))
			oldRefused := false
			for i := 0; i < 10 && !oldRefused; i++ {
				name := fmt.Sprintf("old-client-%d", i)
				res, _ = createTopics(t, old, 1, name)
				switch res[name].ErrorCode {
				case 0:
					created++
				case kerr.PolicyViolation.Code:
					oldRefused = true
				default:
					t.Fatalf("CreateTopics v5 past the rate: %v", kerr.ErrorForCode(res[name].ErrorCode))
				}
			}
			if !oldRefused {
				t.Error("CreateTopics v5 was never refused past the rate")
			}

			// A WAL create past the rate: 429 with a Retry-After.
			walRefused := false
			for i := 0; i < 10 && !walRefused; i++ {
				resp, err := http.Post("http://"+n.WALAddr().String()+"/v1/create", "application/json", strings.NewReader(fmt.Sprintf(`{"name":"wal-%d"}`, i)))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK:
					created++
				case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
					walRefused = true
				default:
					t.Fatalf("WAL create past the rate: %s, Retry-After %q, %s", resp.Status, resp.Header.Get("Retry-After"), body)
				}
			}
			if !walRefused {
				t.Error("WAL create was never refused past the rate")
			}

			topics, err := n.store.ListTopics(t.Context(), "", "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(topics) != 1+created {
				t.Errorf("%d topics exist, want the bystander's and the %d created", len(topics), created)
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "request_topics"); got != 1 {
				t.Errorf("refusals for request_topics = %v, want 1", got)
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "create_rate"); got != float64(throttled+2) {
				t.Errorf("refusals for create_rate = %v, want %d", got, throttled+2)
			}
			by.check()
		})
	}
}

// F3: one Metadata request naming 20,000 unknown topics auto-created all of
// them. Now it creates limits.max_auto_create_per_request of them and
// answers the others UNKNOWN_TOPIC_OR_PARTITION; asking again creates the
// next few. Another client is served throughout.
func TestLimitsF3MetadataAutoCreate(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			cfg := d.config(t)
			const allowance = 5
			cfg.Limits.MaxAutoCreatePerRequest = allowance
			n, _, _ := runNode(t, cfg)
			by := startBystander(t, n, "bystander")
			cl := kafkaClient(t, n)

			metadata := func(names []string) map[string]int16 {
				t.Helper()
				req := kmsg.NewPtrMetadataRequest()
				req.AllowAutoTopicCreation = true
				for _, name := range names {
					rt := kmsg.NewMetadataRequestTopic()
					rt.Topic = kmsg.StringPtr(name)
					req.Topics = append(req.Topics, rt)
				}
				resp, err := req.RequestWith(t.Context(), cl)
				if err != nil {
					t.Fatalf("Metadata: %v", err)
				}
				codes := map[string]int16{}
				for _, mt := range resp.Topics {
					codes[deref(mt.Topic)] = mt.ErrorCode
				}
				return codes
			}
			names := make([]string, 20_000)
			for i := range names {
				names[i] = fmt.Sprintf("auto-%05d", i)
			}
			for round := 1; round <= 2; round++ {
				start := time.Now()
				codes := metadata(names)
				t.Logf("round %d: Metadata naming %d unknown topics answered in %s", round, len(names), time.Since(start))
				created := 0
				for _, name := range names {
					switch codes[name] {
					case 0:
						created++
					case kerr.UnknownTopicOrPartition.Code:
					default:
						t.Fatalf("%s: %v", name, kerr.ErrorForCode(codes[name]))
					}
				}
				if created != round*allowance {
					t.Errorf("round %d: %d topics known, want %d", round, created, round*allowance)
				}
			}
			topics, err := n.store.ListTopics(t.Context(), "auto-", "", 0)
			if err != nil || len(topics) != 2*allowance {
				t.Errorf("%d auto-created topics exist (%v), want %d", len(topics), err, 2*allowance)
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "auto_create_per_request"); got != float64(2*(len(names))-3*allowance) {
				t.Errorf("refusals for auto_create_per_request = %v, want %d", got, 2*len(names)-3*allowance)
			}
			by.check()
		})
	}
}

// F3 with the creation rate used up: a Metadata request naming 20,000
// unknown topics creates what the bucket holds, and stops at the first
// creation the rate refuses instead of trying (and being refused) once per
// name.
func TestLimitsF3AutoCreateThrottled(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			cfg := d.config(t)
			const burst = 3
			cfg.Limits.CreateRate, cfg.Limits.CreateBurst = 1, burst
			n, _, _ := runNode(t, cfg)
			cl := kafkaClient(t, n)
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = true
			for i := range 20_000 {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(fmt.Sprintf("auto-%05d", i))
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(t.Context(), cl)
			if err != nil {
				t.Fatalf("Metadata: %v", err)
			}
			known := 0
			for _, mt := range resp.Topics {
				switch mt.ErrorCode {
				case 0:
					known++
				case kerr.UnknownTopicOrPartition.Code:
				default:
					t.Fatalf("%s: %v", deref(mt.Topic), kerr.ErrorForCode(mt.ErrorCode))
				}
			}
			// A token may come back while the request runs.
			if known < burst {
				t.Errorf("%d topics created, want at least the burst, %d", known, burst)
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "create_rate"); got != 1 {
				t.Errorf("refusals for create_rate = %v, want 1: the request stops creating at the first", got)
			}
			if got := counter(t, n.reg, "morax_limit_refusals_total", "auto_create_per_request"); got != float64(20_000-known-1) {
				t.Errorf("refusals for auto_create_per_request = %v, want %d", got, 20_000-known-1)
			}
		})
	}
}

// A node restarted on data holding more partitions than
// limits.max_node_partitions serves (healthy, its partitions usable),
// starts no more than its limit, logs the refusal once instead of once per
// partition, and reports it: morax_partitions_refused and GET /v1/status.
func TestLimitsRestartOverNodeCap(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			cfg := d.config(t)
			n, _, stop := runNode(t, cfg)
			cl := kafkaClient(t, n)
			for _, topic := range []string{"a", "b", "c"} {
				res, _ := createTopics(t, cl, 20, topic)
				wantCode(t, "create "+topic, res[topic].ErrorCode, &kerr.Error{Code: 0}, res[topic].ErrorMessage)
			}
			cl.Close()
			stop()

			cfg.Limits.MaxNodePartitions = 25
			if !cfg.Embedded() {
				// A fresh remote port: the old one may linger a moment.
				cfg.Cluster.RemoteListenAddr = unusedAddr(t)
			}
			n, logs, _ := runNode(t, cfg)
			itest.WaitForGauge(t, n.reg, "morax_partitions_refused", 35)
			itest.WaitForGauge(t, n.reg, "morax_partition_actors", 25)

			// Topics in name order, partitions in order: a's 20 and b's
			// first 5 are served.
			p := kafkaClient(t, n, kgo.DefaultProduceTopic("b"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := p.ProduceSync(t.Context(), &kgo.Record{Partition: 4, Value: []byte("x")}).FirstErr(); err != nil {
				t.Errorf("produce to a partition the node serves: %v", err)
			}
			// A partition past the limit has no leader: Metadata says
			// LEADER_NOT_AVAILABLE, and a produce to it fails once the
			// client's delivery timeout passes.
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("c")
			req.Topics = append(req.Topics, rt)
			md, err := req.RequestWith(t.Context(), kafkaClient(t, n))
			if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 20 {
				t.Fatalf("Metadata of c: %v", err)
			}
			if c := md.Topics[0].Partitions[0].ErrorCode; c != kerr.LeaderNotAvailable.Code {
				t.Errorf("c/0, past the node's limit: %v, want LEADER_NOT_AVAILABLE", kerr.ErrorForCode(c))
			}
			refusedP := kafkaClient(t, n, kgo.DefaultProduceTopic("c"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.RecordDeliveryTimeout(2*time.Second))
			if err := refusedP.ProduceSync(t.Context(), &kgo.Record{Partition: 0, Value: []byte("x")}).FirstErr(); err == nil {
				t.Error("produce to a partition past the node's limit succeeded")
			}
			if got := gauge(t, n.reg, "morax_partition_actors"); got != 25 {
				t.Errorf("%v partition actors run, want the limit, 25", got)
			}

			resp, err := http.Get("http://" + n.WALAddr().String() + "/v1/status")
			if err != nil {
				t.Fatal(err)
			}
			var st nodeStatusBody
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !st.Healthy || st.Partitions.Serving != 25 || st.Partitions.Limit != 25 || st.Partitions.Refused != 35 {
				t.Errorf("status = %+v, want healthy, serving 25 of 25, refusing 35", st)
			}
			out := logs.String()
			if c := strings.Count(out, "node is at its partition limit"); c != 1 {
				t.Errorf("the refusal was logged %d times, want once:\n%s", c, out)
			}
			if strings.Contains(out, "partition failed to start") {
				t.Errorf("the node tried to start partitions past its limit:\n%s", out)
			}
		})
	}
}

// nodeStatusBody is what GET /v1/status answers.
type nodeStatusBody struct {
	Healthy    bool     `json:"healthy"`
	Problems   []string `json:"problems"`
	Partitions struct {
		Serving, Limit, Refused int
	} `json:"partitions"`
}

// cuttableProxy forwards TCP connections to a server until cut, which
// closes its listener and every connection: the server looks unreachable
// to whoever dials the proxy, as after a network partition. restore
// listens again on the same address.
type cuttableProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	p := &cuttableProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *cuttableProxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cuttableProxy) restore() { p.listen(p.addr) }

// health is the status and body of GET /v1/health.
func health(t *testing.T, n *Node) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + n.WALAddr().String() + "/v1/health")
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitHealth polls the health check until it answers status, and returns
// the body. The deadline only bounds a failing test: the node reports a
// failing poll within one poll's timeout.
func waitHealth(t *testing.T, n *Node, status int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, body := health(t, n)
		if got == status {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("health still %d %q, want %d", got, body, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The health check fails, 503 with a reason, while the node cannot reach
// its metadata store (here PostgreSQL behind a proxy the test cuts), and
// recovers when the store is back; meanwhile /v1/status says why.
func TestLimitsHealthFailsWithoutMetadataStore(t *testing.T) {
	cfg := clusteredConfig(t)
	u, err := url.Parse(cfg.Server.Meta.ServiceURL.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCuttableProxy(t, u.Host)
	u.Host = proxy.addr
	cfg.Server.Meta.ServiceURL = config.SecretURL(u.String())
	n, _, _ := runNode(t, cfg)
	cl := kafkaClient(t, n)
	res, _ := createTopics(t, cl, 3, "t")
	wantCode(t, "create t", res["t"].ErrorCode, &kerr.Error{Code: 0}, res["t"].ErrorMessage)
	if status, body := health(t, n); status != http.StatusOK || body != "OK" {
		t.Fatalf("health before the cut: %d %q", status, body)
	}

	proxy.cut()
	body := waitHealth(t, n, http.StatusServiceUnavailable)
	if !strings.Contains(body, `"code":"Unavailable"`) || !strings.Contains(body, "metadata store") {
		t.Errorf("unhealthy body %q names no reason", body)
	}
	if strings.Contains(body, proxy.addr) {
		t.Errorf("unhealthy body %q shows the store's address", body)
	}
	resp, err := http.Get("http://" + n.WALAddr().String() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st nodeStatusBody
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || st.Healthy || len(st.Problems) == 0 {
		t.Errorf("status while cut: %d %+v (%v), want 200, unhealthy, with problems", resp.StatusCode, st, err)
	}

	proxy.restore()
	if body := waitHealth(t, n, http.StatusOK); body != "OK" {
		t.Errorf("health after the store came back: %q", body)
	}
}
