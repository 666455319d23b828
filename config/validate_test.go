package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

// validS3 is a configuration every case below starts from when it needs S3.
func validS3() Config {
	c := Default()
	c.Server.Meta.ServiceURL = "postgres://morax:secret@127.0.0.1:5432/morax_meta?sslmode=disable"
	c.Storage = StorageConfig{
		Scheme:          SchemeS3,
		Bucket:          "morax",
		Region:          "us-east-1",
		Endpoint:        "http://127.0.0.1:9000",
		AccessKeyID:     "minioadmin",
		SecretAccessKey: "minioadmin",
		PathStyle:       true,
		RequestTimeout:  Duration(30 * time.Second),
		ObjectBytes:     8 << 20,
		ObjectLinger:    Duration(time.Millisecond),
		MaxUploads:      4,
	}
	return c
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  func() Config
		edit  func(c *Config)
		wants []string // one substring per expected problem; none means valid
	}{
		{name: "s3 valid", base: validS3, edit: func(c *Config) {}},
		{name: "s3 on AWS: no endpoint, no static keys", base: validS3, edit: func(c *Config) {
			c.Storage.Endpoint, c.Storage.AccessKeyID, c.Storage.SecretAccessKey, c.Storage.PathStyle = "", "", "", false
		}},
		{name: "listen on port 0", edit: func(c *Config) { c.Server.KafkaBroker.ListenAddr = "127.0.0.1:0" }},
		{name: "listen on all interfaces with advertised", edit: func(c *Config) {
			c.Server.KafkaBroker.ListenAddr = ":9092"
			c.Server.KafkaBroker.AdvertisedAddr = "broker-1:9092"
		}},
		{name: "ipv6 addresses", edit: func(c *Config) {
			c.Server.KafkaBroker.ListenAddr = "[::1]:9092"
			c.Cluster.RemoteListenAddr = "[::]:8090"
		}},
		{name: "postgresql scheme and socket host", edit: func(c *Config) {
			c.Server.Meta.ServiceURL = "postgresql:///morax?host=/var/run/postgresql"
		}},
		{name: "caches disabled", edit: func(c *Config) { c.Partition.TailCacheBytes, c.Partition.BlockCacheBytes = 0, 0 }},
		{name: "node id", edit: func(c *Config) { c.Cluster.NodeID = "node-1.eu_west" }},
		{name: "limits at their smallest", edit: func(c *Config) {
			c.Limits = LimitsConfig{MaxPartitionsPerTopic: 1, MaxClusterPartitions: 1, MaxNodePartitions: 1,
				MaxTopicsPerRequest: 1, MaxAutoCreatePerRequest: 1, CreateRate: 1, CreateBurst: 1, PartitionStartsPerPoll: 1}
		}},
		{
			name: "limits not positive",
			edit: func(c *Config) {
				c.Limits = LimitsConfig{MaxPartitionsPerTopic: 1, MaxClusterPartitions: 1}
			},
			wants: []string{
				"limits.max_node_partitions: must be > 0 (got 0)",
				"limits.max_topics_per_request: must be > 0 (got 0)",
				"limits.max_auto_create_per_request: must be > 0 (got 0)",
				"limits.create_rate: must be > 0 (got 0)",
				"limits.create_burst: must be > 0 (got 0)",
				"limits.partition_starts_per_poll: must be > 0 (got 0)",
			},
		},
		{
			name:  "per-topic cap below the default partition count",
			edit:  func(c *Config) { c.Server.KafkaBroker.DefaultPartitions, c.Limits.MaxPartitionsPerTopic = 8, 4 },
			wants: []string{"limits.max_partitions_per_topic: 4 must be >= server.kafka_broker.default_partitions (8)"},
		},
		{
			name:  "per-topic cap above the cluster cap",
			edit:  func(c *Config) { c.Limits.MaxPartitionsPerTopic, c.Limits.MaxClusterPartitions = 100, 10 },
			wants: []string{"limits.max_partitions_per_topic: 100 must be <= limits.max_cluster_partitions (10)"},
		},
		{name: "refresh interval set within bounds", edit: func(c *Config) { c.Cluster.RefreshInterval = Duration(2 * time.Second) }},
		{
			name:  "refresh interval negative",
			edit:  func(c *Config) { c.Cluster.RefreshInterval = Duration(-time.Second) },
			wants: []string{"cluster.refresh_interval: must be >= 0 (got -1s; 0 means half of cluster.lease_ttl)"},
		},
		{
			name:  "refresh interval over half the lease",
			edit:  func(c *Config) { c.Cluster.RefreshInterval = Duration(6 * time.Second) },
			wants: []string{"cluster.refresh_interval: 6s must be at most half of cluster.lease_ttl (10s), or the lease expiries routes use go stale"},
		},
		{
			name:  "refresh interval under the poll",
			edit:  func(c *Config) { c.Cluster.RefreshInterval = Duration(100 * time.Millisecond) },
			wants: []string{"cluster.refresh_interval: 100ms must be at least cluster.poll_interval (250ms)"},
		},
		{
			name:  "s3 missing bucket",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.Bucket = "" },
			wants: []string{`storage.bucket: required when storage.scheme = "s3"`},
		},
		{
			name:  "s3 missing region",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.Region = "" },
			wants: []string{`storage.region: required when storage.scheme = "s3"`},
		},
		{
			name:  "s3 endpoint without scheme",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.Endpoint = "127.0.0.1:9000" },
			wants: []string{`storage.endpoint: "127.0.0.1:9000"`},
		},
		{
			name:  "s3 endpoint without host",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.Endpoint = "http://" },
			wants: []string{`storage.endpoint: "http://" names no host`},
		},
		{
			name:  "secret without key id",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.AccessKeyID = "" },
			wants: []string{"storage.access_key_id: required when storage.secret_access_key is set"},
		},
		{
			name:  "bucket too short",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.Bucket = "ab" },
			wants: []string{`storage.bucket: "ab" must be 3 to 63 characters long`},
		},
		{
			name:  "bucket edge",
			base:  validS3,
			edit:  func(c *Config) { c.Storage.Bucket = "-morax" },
			wants: []string{`storage.bucket: "-morax" must start and end with a letter or digit`},
		},
		{
			name:  "service url without host",
			edit:  func(c *Config) { c.Server.Meta.ServiceURL = "postgres:///morax" },
			wants: []string{"server.meta.service_url: postgres:///morax: names no host"},
		},
		{
			name:  "service url keyword form",
			edit:  func(c *Config) { c.Server.Meta.ServiceURL = "host=db password=hunter2" },
			wants: []string{"server.meta.service_url: REDACTED: must be a postgres:// or postgresql:// URL"},
		},
		{
			name:  "advertised port 0",
			edit:  func(c *Config) { c.Server.KafkaBroker.AdvertisedAddr = "broker:0" },
			wants: []string{`server.kafka_broker.advertised_addr: "broker:0": port "0" is not a number from 1 to 65535`},
		},
		{
			name:  "advertised required for empty host",
			edit:  func(c *Config) { c.Server.KafkaBroker.ListenAddr = ":9092" },
			wants: []string{"server.kafka_broker.advertised_addr: required when"},
		},
		{
			name:  "listen addr empty",
			edit:  func(c *Config) { c.Server.WALBroker.ListenAddr = "" },
			wants: []string{"server.wal_broker.listen_addr: required (host:port)"},
		},
		{
			name:  "listen addr too many colons",
			edit:  func(c *Config) { c.Cluster.RemoteListenAddr = "http://127.0.0.1:8090" },
			wants: []string{`cluster.remote_listen_addr: "http://127.0.0.1:8090": too many colons`},
		},
		{
			name:  "frame bigger than int32",
			edit:  func(c *Config) { c.Server.KafkaBroker.MaxFrameBytes = 1 << 31 },
			wants: []string{"server.kafka_broker.max_frame_bytes: 2147483648 is more than the Kafka protocol's limit"},
		},
		{
			name: "negative and zero everywhere",
			edit: func(c *Config) {
				c.Partition.FlushBytes = 0
				c.Partition.MaxBufferBytes = -1
				c.Partition.NodeBufferBytes = 0
				c.Partition.MaxMessageBytes = 0
				c.Partition.BlockCacheBytes = -5
				c.Partition.Linger = 0
				c.Partition.RetentionCheckInterval = Duration(-time.Second)
				c.Partition.OrphanMinAge = 0
				c.Storage.RequestTimeout = 0
				c.Storage.ObjectBytes = 0
				c.Storage.ObjectLinger = Duration(-time.Millisecond)
				c.Storage.MaxUploads = 0
				c.Cluster.HeartbeatInterval = 0
				c.Cluster.LeaseTTL = 0
			},
			// No cross-field complaints pile up on top of values that are
			// wrong on their own.
			wants: []string{
				"partition.flush_bytes: must be > 0 (got 0)",
				"partition.max_buffer_bytes: must be > 0 (got -1)",
				"partition.node_buffer_bytes: must be > 0 (got 0)",
				"partition.max_message_bytes: must be > 0 (got 0)",
				"partition.block_cache_bytes: must be >= 0 (got -5)",
				"partition.linger: must be > 0 (got 0s)",
				"partition.retention_check_interval: must be > 0 (got -1s)",
				"partition.orphan_min_age: must be > 0 (got 0s)",
				"storage.request_timeout: must be > 0 (got 0s)",
				"storage.object_bytes: must be > 0 (got 0)",
				"storage.object_linger: must be >= 0 (got -1ms)",
				"storage.max_uploads: must be > 0 (got 0)",
				"cluster.heartbeat_interval: must be > 0 (got 0s)",
				"cluster.lease_ttl: must be > 0 (got 0s)",
			},
		},
		{
			name: "new tunables zero or negative",
			edit: func(c *Config) {
				c.Server.ShutdownTimeout = 0
				c.Server.KafkaBroker.MaxInflightRequests = 0
				c.Server.WALBroker.RequestTimeout = 0
				c.Server.WALBroker.TailHeartbeat = Duration(-time.Second)
				c.Partition.MaxInflightFlushes = 0
				c.Partition.ReadBlockBytes = -1
				c.Partition.IOTimeout = 0
				c.Partition.MailboxRequests = 0
				c.Group.MinSessionTimeout = 0
				c.Group.InitialRebalanceDelay = Duration(-time.Second)
				c.Group.MaxSize = 0
				c.Group.MaxOffsetMetadataBytes = 0
				c.Group.IdleTimeout = 0
				c.Group.MaxPendingBytes = 0
				c.Group.MailboxRequests = 0
				c.Cluster.PollInterval = 0
				c.Cluster.MaxMovesPerPoll = -1
			},
			wants: []string{
				"server.shutdown_timeout: must be > 0 (got 0s)",
				"server.kafka_broker.max_inflight_requests: must be > 0 (got 0)",
				"server.wal_broker.request_timeout: must be > 0 (got 0s)",
				"server.wal_broker.tail_heartbeat: must be > 0 (got -1s)",
				"partition.max_inflight_flushes: must be > 0 (got 0)",
				"partition.read_block_bytes: must be > 0 (got -1)",
				"partition.io_timeout: must be > 0 (got 0s)",
				"partition.mailbox_requests: must be > 0 (got 0)",
				"group.min_session_timeout: must be > 0 (got 0s)",
				"group.initial_rebalance_delay: must be >= 0 (got -1s)",
				"group.max_size: must be > 0 (got 0)",
				"group.max_offset_metadata_bytes: must be > 0 (got 0)",
				"group.idle_timeout: must be > 0 (got 0s)",
				"group.max_pending_bytes: must be > 0 (got 0)",
				"group.mailbox_requests: must be > 0 (got 0)",
				"cluster.poll_interval: must be > 0 (got 0s)",
				"cluster.max_moves_per_poll: must be > 0 (got -1)",
			},
		},
		{
			name: "connection and decompression limits",
			edit: func(c *Config) {
				c.Server.KafkaBroker.MaxConnections = 0
				c.Server.KafkaBroker.MaxConnectionsPerIP = 0
				c.Server.KafkaBroker.MaxInflightResponseBytes = -1
				c.Server.WALBroker.MaxConnections = 10
				c.Server.WALBroker.MaxConnectionsPerIP = 11
				c.Server.WALBroker.ReadTimeout = 0
				c.Server.WALBroker.IdleTimeout = Duration(-time.Second)
				c.Server.WALBroker.ReadBufferBytes = 2 << 20
				c.Partition.MaxDecompressedBatchBytes = 1 << 10
			},
			wants: []string{
				"server.kafka_broker.max_connections: must be > 0 (got 0)",
				"server.kafka_broker.max_connections_per_ip: must be > 0 (got 0)",
				"server.kafka_broker.max_inflight_response_bytes: must be > 0 (got -1)",
				"server.wal_broker.max_connections_per_ip: 11 must be <= server.wal_broker.max_connections (10)",
				"server.wal_broker.read_timeout: must be > 0 (got 0s)",
				"server.wal_broker.idle_timeout: must be > 0 (got -1s)",
				"server.wal_broker.read_buffer_bytes: 2097152 must be <= 1048576",
				"partition.max_decompressed_batch_bytes: 1024 must be >= partition.max_message_bytes (1048588)",
			},
		},
		{
			name:  "decompressed batch bound beyond the record format",
			edit:  func(c *Config) { c.Partition.MaxDecompressedBatchBytes = 1 << 31 },
			wants: []string{"partition.max_decompressed_batch_bytes: 2147483648 is more than the record format's limit"},
		},
		{name: "no initial rebalance delay", edit: func(c *Config) { c.Group.InitialRebalanceDelay = 0 }},
		{
			name:  "session timeout range upside down",
			edit:  func(c *Config) { c.Group.MaxSessionTimeout = Duration(time.Second) },
			wants: []string{"group.max_session_timeout: 1s must be >= group.min_session_timeout (6s)"},
		},
		{
			name:  "group bigger than int32",
			edit:  func(c *Config) { c.Group.MaxSize = 1 << 31 },
			wants: []string{"group.max_size: 2147483648 is more than the Kafka protocol's limit"},
		},
		{
			name:  "lease exactly twice heartbeat",
			edit:  func(c *Config) { c.Cluster.LeaseTTL = 2 * c.Cluster.HeartbeatInterval },
			wants: []string{"cluster.lease_ttl: 4s must be more than twice cluster.heartbeat_interval (2s)"},
		},
		{
			name:  "node id too long",
			edit:  func(c *Config) { c.Cluster.NodeID = strings.Repeat("n", 65) },
			wants: []string{"cluster.node_id: \"nnnn"},
		},
		{
			name:  "log level upper case",
			edit:  func(c *Config) { c.Telemetry.Log.Level = "INFO" },
			wants: []string{`telemetry.log.level: "INFO" is not one of debug, info, warn, error`},
		},
		{
			name:  "prefix absolute",
			edit:  func(c *Config) { c.Storage.Prefix = "/abs" },
			wants: []string{`storage.prefix: "/abs" must be a relative key prefix`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			if tc.base != nil {
				c = tc.base()
			}
			tc.edit(&c)
			err := c.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q", w)
				}
			}
			if len(verr.Errors) != len(tc.wants) {
				t.Errorf("got %d problems, want %d", len(verr.Errors), len(tc.wants))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("error shows a password")
			}
			if t.Failed() {
				t.Logf("error:\n%v", err)
			}
		})
	}
}

func TestValidationErrorShape(t *testing.T) {
	c := Default()
	c.Partition.FlushBytes = 0
	c.Telemetry.Log.Level = "loud"
	err := c.Validate()
	want := "partition.flush_bytes: must be > 0 (got 0)\n" +
		`telemetry.log.level: "loud" is not one of debug, info, warn, error`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate =\n%v\nwant\n%s", err, want)
	}
	var fe FieldError
	if !errors.As(err, &fe) || fe.Path != "partition.flush_bytes" {
		t.Errorf("errors.As FieldError = %+v", fe)
	}
	withSource := FieldError{Path: "a.b", Source: "f.toml:1:2", Msg: "bad"}
	if got := withSource.Error(); got != "f.toml:1:2: a.b: bad" {
		t.Errorf("FieldError.Error = %q", got)
	}
	if got := (FieldError{Source: "env MORAX_X", Msg: "bad"}).Error(); got != "env MORAX_X: bad" {
		t.Errorf("FieldError.Error without path = %q", got)
	}
}
