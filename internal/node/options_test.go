package node

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/teststores"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/wal"
)

// custom sets every key the mappings read to a value unlike its default,
// so a key mapped onto the wrong field, or not at all, shows.
func custom() config.Config {
	c := config.Default()
	c.Server.Meta.ServiceURL = "postgres://morax:pw@db:5432/meta"
	k := &c.Server.KafkaBroker
	k.ListenAddr, k.AdvertisedAddr = "0.0.0.0:19092", "broker-7:19092"
	k.MaxFrameBytes, k.IdleTimeout, k.AutoCreateTopics = 50<<20, config.Duration(7*time.Minute), false
	k.DefaultPartitions, k.MaxInflightRequests = 6, 17
	k.MaxConnections, k.MaxConnectionsPerIP, k.MaxInflightResponseBytes = 501, 51, 5<<20
	w := &c.Server.WALBroker
	w.ListenAddr, w.MaxBodyBytes, w.MaxWait, w.AllowPerLogStorage = "127.0.0.1:18848", 3<<20, config.Duration(11*time.Second), true
	w.RequestTimeout, w.TailHeartbeat = config.Duration(13*time.Second), config.Duration(9*time.Second)
	w.MaxConnections, w.MaxConnectionsPerIP, w.ReadBufferBytes = 301, 31, 8192
	w.ReadTimeout, w.IdleTimeout = config.Duration(19*time.Second), config.Duration(3*time.Minute)
	s := &c.Storage
	s.Scheme, s.Bucket, s.Region, s.Endpoint = config.SchemeS3, "bkt", "eu-west-3", "http://minio:9000"
	s.AccessKeyID, s.SecretAccessKey, s.PathStyle, s.Prefix = "ak", "sk", true, "pre/"
	s.RequestTimeout, s.ObjectBytes, s.ObjectLinger, s.MaxUploads = config.Duration(21*time.Second), 5<<20, config.Duration(3*time.Millisecond), 7
	p := &c.Partition
	p.FlushBytes, p.Linger, p.MaxBufferBytes, p.NodeBufferBytes = 3<<20, config.Duration(4*time.Millisecond), 12<<20, 100<<20
	p.TailCacheBytes, p.BlockCacheBytes, p.MaxMessageBytes = 5<<20, 70<<20, 2<<20
	p.RetentionCheckInterval, p.OrphanMinAge = config.Duration(2*time.Minute), config.Duration(3*time.Hour)
	p.MaxInflightFlushes, p.ReadBlockBytes, p.IOTimeout = 3, 512<<10, config.Duration(17*time.Second)
	p.MailboxRequests, p.MaxDecompressedBatchBytes = 300, 32<<20
	g := &c.Group
	g.MinSessionTimeout, g.MaxSessionTimeout = config.Duration(2*time.Second), config.Duration(time.Minute)
	g.InitialRebalanceDelay, g.MaxSize, g.MaxOffsetMetadataBytes = config.Duration(time.Second), 99, 2048
	g.IdleTimeout, g.MaxPendingBytes, g.MailboxRequests = config.Duration(time.Minute), 8<<20, 500
	cl := &c.Cluster
	cl.LeaseTTL, cl.HeartbeatInterval = config.Duration(15*time.Second), config.Duration(3*time.Second)
	cl.PollInterval, cl.MaxMovesPerPoll = config.Duration(400*time.Millisecond), 5
	cl.RemoteListenAddr, cl.RemoteMaxInflight, cl.RemoteMaxInflightBytes = "127.0.0.1:18090", 77, 9<<20
	c.Limits = config.LimitsConfig{MaxPartitionsPerTopic: 101, MaxClusterPartitions: 1002, MaxNodePartitions: 503,
		MaxTopicsPerRequest: 14, MaxAutoCreatePerRequest: 6, CreateRate: 8, CreateBurst: 19, PartitionStartsPerPoll: 33}
	return c
}

func TestMappings(t *testing.T) {
	c := custom()
	if err := c.Validate(); err != nil {
		t.Fatalf("test config does not validate: %v", err)
	}
	b, g, cl, k, w, s3 := brokerOptions(c), groupOptions(c), clusterOptions(c), kafkaConfig(c), walConfig(c), s3Config(c)
	r := remoteConfig(c)
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"partition.flush_bytes", b.FlushBytes, 3 << 20},
		{"partition.linger", b.Linger, 4 * time.Millisecond},
		{"storage.object_bytes", b.ObjectBytes, 5 << 20},
		{"storage.object_linger", b.ObjectLinger, 3 * time.Millisecond},
		{"storage.max_uploads", b.MaxUploads, 7},
		{"partition.max_buffer_bytes", b.MaxBufferBytes, int64(12 << 20)},
		{"partition.node_buffer_bytes", b.NodeBufferBytes, int64(100 << 20)},
		{"partition.tail_cache_bytes", b.TailCacheBytes, int64(5 << 20)},
		{"partition.block_cache_bytes", b.BlockCacheBytes, int64(70 << 20)},
		{"partition.read_block_bytes", b.BlockSize, int64(512 << 10)},
		{"partition.max_message_bytes", b.MaxMessageBytes, 2 << 20},
		{"partition.max_inflight_flushes", b.MaxInflightFlushes, 3},
		{"cluster.lease_ttl (broker)", b.LeaseTTL, 15 * time.Second},
		{"partition.retention_check_interval", b.RetentionInterval, 2 * time.Minute},
		{"partition.orphan_min_age", b.OrphanMinAge, 3 * time.Hour},
		{"partition.io_timeout", b.IOTimeout, 17 * time.Second},
		{"partition.mailbox_requests", b.MailboxRequests, 300},
		{"partition.max_decompressed_batch_bytes", b.MaxDecompressedBatchBytes, 32 << 20},
		{"limits.max_partitions_per_topic", b.Limits.MaxPartitionsPerTopic, int32(101)},
		{"limits.max_cluster_partitions", b.Limits.MaxClusterPartitions, int64(1002)},
		{"limits.max_node_partitions", b.Limits.MaxNodePartitions, 503},
		{"limits.max_topics_per_request", b.Limits.MaxTopicsPerRequest, 14},
		{"limits.max_auto_create_per_request", b.Limits.MaxAutoCreatePerRequest, 6},
		{"limits.create_rate", b.Limits.CreateRate, 8.0},
		{"limits.create_burst", b.Limits.CreateBurst, 19},
		{"limits.partition_starts_per_poll", b.Limits.StartsPerPoll, 33},

		{"group slots", g.Slots, actors.DefaultGroupSlots},
		{"group.min_session_timeout", g.MinSessionTimeout, 2 * time.Second},
		{"group.max_session_timeout", g.MaxSessionTimeout, time.Minute},
		{"group.initial_rebalance_delay", g.InitialRebalanceDelay, time.Second},
		{"group.max_size", g.MaxSize, 99},
		{"group.max_offset_metadata_bytes", g.MaxOffsetMetadata, 2048},
		{"group.idle_timeout", g.IdleTimeout, time.Minute},
		{"group.max_pending_bytes", g.MaxPendingBytes, int64(8 << 20)},
		{"group.mailbox_requests", g.MailboxRequests, 500},

		{"cluster.lease_ttl (liveness)", cl.LiveWithin, 15 * time.Second},
		{"cluster.poll_interval", cl.Poll, 400 * time.Millisecond},
		{"cluster.max_moves_per_poll", cl.MaxMovesPerPoll, 5},
		{"cluster slots", cl.Slots, actors.DefaultGroupSlots},
		{"cluster.remote_listen_addr", r.ListenAddr, "127.0.0.1:18090"},
		{"cluster.remote_max_inflight", r.MaxInflight, 77},
		{"cluster.remote_max_inflight_bytes", r.MaxInflightBytes, int64(9 << 20)},
		{"remote message limit", r.MaxMessageBytes, actors.RemoteMessageLimit(3<<20, 2<<20)},

		{"server.kafka_broker.listen_addr", k.ListenAddr, "0.0.0.0:19092"},
		{"server.kafka_broker.advertised_addr", k.AdvertisedAddr, "broker-7:19092"},
		{"server.kafka_broker.max_frame_bytes", k.MaxFrameBytes, int32(50 << 20)},
		{"server.kafka_broker.idle_timeout", k.IdleTimeout, 7 * time.Minute},
		{"server.kafka_broker.auto_create_topics", k.AutoCreateTopics, false},
		{"server.kafka_broker.default_partitions", k.DefaultPartitions, int32(6)},
		{"server.kafka_broker.max_inflight_requests", k.MaxInflight, 17},
		{"server.kafka_broker.max_connections", k.MaxConnections, 501},
		{"server.kafka_broker.max_connections_per_ip", k.MaxConnectionsPerIP, 51},
		{"server.kafka_broker.max_inflight_response_bytes", k.MaxInflightResponseBytes, int64(5 << 20)},

		{"server.wal_broker.listen_addr", w.ListenAddr, "127.0.0.1:18848"},
		{"server.wal_broker.max_body_bytes", w.MaxBodyBytes, 3 << 20},
		{"server.wal_broker.max_wait", w.MaxWait, 11 * time.Second},
		{"server.wal_broker.allow_per_log_storage", w.AllowPerLogStorage, true},
		{"server.wal_broker.request_timeout", w.RequestTimeout, 13 * time.Second},
		{"server.wal_broker.tail_heartbeat", w.TailHeartbeat, 9 * time.Second},
		{"server.wal_broker.max_connections", w.MaxConnections, 301},
		{"server.wal_broker.max_connections_per_ip", w.MaxConnectionsPerIP, 31},
		{"server.wal_broker.read_timeout", w.ReadTimeout, 19 * time.Second},
		{"server.wal_broker.idle_timeout", w.IdleTimeout, 3 * time.Minute},
		{"server.wal_broker.read_buffer_bytes", w.ReadBufferBytes, 8192},
		{"storage identity", w.Storage, wal.StorageIdentity{Scheme: "s3", Bucket: "bkt", Endpoint: "http://minio:9000", Region: "eu-west-3"}},

		{"storage.bucket", s3.Bucket, "bkt"},
		{"storage.region", s3.Region, "eu-west-3"},
		{"storage.endpoint", s3.Endpoint, "http://minio:9000"},
		{"storage.access_key_id", s3.AccessKeyID, "ak"},
		{"storage.secret_access_key", s3.SecretAccessKey, "sk"},
		{"storage.path_style", s3.PathStyle, true},
		{"storage.prefix", s3.Prefix, "pre/"},
		{"storage.request_timeout", s3.RequestTimeout, 21 * time.Second},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: mapped to %v, want %v", tc.key, tc.got, tc.want)
		}
	}
}

// Kafka clients must be told a port they can dial: with listen port 0 and
// nothing advertised, the server advertises the port it bound.
func TestKafkaAdvertised(t *testing.T) {
	for _, tc := range []struct{ listen, advertised, want string }{
		{"127.0.0.1:9092", "", "127.0.0.1:9092"},
		{"localhost:9092", "", "localhost:9092"},
		{"0.0.0.0:9092", "broker-1:9092", "broker-1:9092"},
		{"127.0.0.1:0", "", ""},
		{"127.0.0.1:0", "broker-1:9092", "broker-1:9092"},
	} {
		c := config.Default()
		c.Server.KafkaBroker.ListenAddr, c.Server.KafkaBroker.AdvertisedAddr = tc.listen, tc.advertised
		if got := kafkaAdvertised(c); got != tc.want {
			t.Errorf("listen %q, advertised %q: got %q, want %q", tc.listen, tc.advertised, got, tc.want)
		}
	}
}

// The components' own defaults (what a zero option takes) and the node's
// mapping of config.Default() must agree, or a test that builds a broker
// from zero options runs a different system than `morax start`.
func TestComponentDefaultsMatchConfig(t *testing.T) {
	def := config.Default()
	store, objects := teststores.OpenEmbedded(t)
	b, err := actors.New(actors.Options{}, store, objects)
	if err != nil {
		t.Fatal(err)
	}
	groups := actors.NewGroups(b, actors.GroupOptions{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = groups.Close(ctx)
		_ = b.Close(ctx)
	})

	got, want := b.Options(), brokerOptions(def)
	// What the node supplies itself rather than maps from config.
	got.NodeID, got.Logger, got.Metrics, got.Now = "", nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broker from zero Options:\n%+v\nmapping of config.Default():\n%+v", got, want)
	}
	if got, want := groups.Options(), groupOptions(def); !reflect.DeepEqual(got, want) {
		t.Errorf("groups from zero GroupOptions:\n%+v\nmapping of config.Default():\n%+v", got, want)
	}
	dc, mc := actors.DefaultClusterOptions(), clusterOptions(def)
	if dc.Poll != mc.Poll || dc.MaxMovesPerPoll != mc.MaxMovesPerPoll || b.Options().LeaseTTL != mc.LiveWithin {
		t.Errorf("ownership defaults poll %s, moves %d, live within the lease TTL %s; mapping of config.Default(): %s, %d, %s",
			dc.Poll, dc.MaxMovesPerPoll, b.Options().LeaseTTL, mc.Poll, mc.MaxMovesPerPoll, mc.LiveWithin)
	}
	// The servers' remaining fields have no default or are the node's.
	kd, km := kafka.DefaultConfig(), kafkaConfig(def)
	kd.ListenAddr, kd.AdvertisedAddr, kd.AutoCreateTopics = km.ListenAddr, km.AdvertisedAddr, km.AutoCreateTopics
	km.ClusterID = kd.ClusterID
	if !reflect.DeepEqual(kd, km) {
		t.Errorf("kafka.DefaultConfig():\n%+v\nmapping of config.Default():\n%+v", kd, km)
	}
	wd, wm := wal.DefaultConfig(), walConfig(def)
	wd.AllowPerLogStorage, wd.Storage = wm.AllowPerLogStorage, wm.Storage
	if !reflect.DeepEqual(wd, wm) {
		t.Errorf("wal.DefaultConfig():\n%+v\nmapping of config.Default():\n%+v", wd, wm)
	}
}

// A zero in config means none (no linger, no cache, no delay); the
// components read a zero option as "the default", so the mapping must get
// the zero through.
func TestZeroMeansNone(t *testing.T) {
	c := config.Default()
	c.Storage.ObjectLinger, c.Partition.TailCacheBytes, c.Partition.BlockCacheBytes = 0, 0, 0
	c.Group.InitialRebalanceDelay = 0
	store, objects := teststores.OpenEmbedded(t)
	b, err := actors.New(brokerOptions(c), store, objects)
	if err != nil {
		t.Fatal(err)
	}
	groups := actors.NewGroups(b, groupOptions(c))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = groups.Close(ctx)
		_ = b.Close(ctx)
	})
	o := b.Options()
	if o.ObjectLinger != 0 || o.TailCacheBytes != 0 || o.BlockCacheBytes != 0 {
		t.Errorf("object linger %s, tail cache %d, block cache %d; want all 0", o.ObjectLinger, o.TailCacheBytes, o.BlockCacheBytes)
	}
	if d := groups.Options().InitialRebalanceDelay; d != 0 {
		t.Errorf("initial rebalance delay %s, want 0", d)
	}
}
