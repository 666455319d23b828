package config

import (
	"log/slog"
	"path/filepath"
	"time"
)

// Storage schemes accepted in storage.scheme.
const (
	// SchemeFS keeps objects as files under storage.dir: the embedded,
	// single-node default.
	SchemeFS = "fs"
	// SchemeS3 keeps objects in an S3-compatible bucket (AWS S3, MinIO):
	// what a diskless cluster uses.
	SchemeS3 = "s3"
)

// Log formats accepted in telemetry.log.format.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Linger defaults. Default() is the embedded mode, where a flush is a local
// file write and a short linger buys latency cheaply. With S3 every flush is
// a PUT that costs money and tens of milliseconds anyway, so Load uses the
// longer default when storage.scheme is "s3" and partition.linger was not
// set in the file or the environment.
const (
	defaultLinger   = 2 * time.Millisecond
	defaultS3Linger = 5 * time.Millisecond
)

// Config is the whole configuration of a Morax node. Field tags name the TOML
// keys; the environment variable for each key is derived from them (see the
// package documentation).
type Config struct {
	// DataDir holds node-local state: the node_id file, the embedded
	// metadata database and, with scheme "fs", the objects. Relative paths
	// are relative to the working directory.
	DataDir string `toml:"data_dir"`
	// Server configures the client-facing listeners and the metadata store.
	Server ServerConfig `toml:"server"`
	// Storage says where segment objects live.
	Storage StorageConfig `toml:"storage"`
	// Partition sets the per-partition write path and the memory bounds
	// that keep it from growing without limit.
	Partition PartitionConfig `toml:"partition"`
	// Group sets the consumer-group coordinator's limits.
	Group GroupConfig `toml:"group"`
	// Cluster sets node identity, lease timing and the node-to-node
	// listener.
	Cluster ClusterConfig `toml:"cluster"`
	// Telemetry sets logging and metrics.
	Telemetry TelemetryConfig `toml:"telemetry"`
	// Limits bound what clients may make the cluster create and what one
	// node takes on, so a single request cannot exhaust a node.
	Limits LimitsConfig `toml:"limits"`
}

// ServerConfig groups the metadata store and the two client protocols.
type ServerConfig struct {
	// Meta chooses the metadata store.
	Meta MetaConfig `toml:"meta"`
	// KafkaBroker is the Kafka protocol listener.
	KafkaBroker KafkaBrokerConfig `toml:"kafka_broker"`
	// WALBroker is the HTTP WAL API listener, which also serves /metrics.
	WALBroker WALBrokerConfig `toml:"wal_broker"`
	// ShutdownTimeout bounds a graceful stop: listeners drain, partitions
	// commit what they buffered, leases are released. Past it the node
	// stops anyway; what it had not committed was never acknowledged.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// MetaConfig chooses the metadata store.
type MetaConfig struct {
	// ServiceURL is a postgres:// or postgresql:// URL of the PostgreSQL
	// database that a cluster shares. Empty means the embedded metadata
	// store, an SQLite file under DataDir, which only a single node can use.
	ServiceURL SecretURL `toml:"service_url"`
}

// KafkaBrokerConfig is the Kafka protocol listener.
type KafkaBrokerConfig struct {
	// ListenAddr is the host:port to accept Kafka connections on.
	ListenAddr string `toml:"listen_addr"`
	// AdvertisedAddr is the host:port that Metadata responses tell clients
	// to connect to. Empty means ListenAddr, which must then name a host
	// clients can reach (not 0.0.0.0).
	AdvertisedAddr string `toml:"advertised_addr"`
	// MaxFrameBytes bounds one request frame; larger frames close the
	// connection before the body is read, so a client cannot make the
	// broker allocate without limit.
	MaxFrameBytes int64 `toml:"max_frame_bytes"`
	// IdleTimeout closes connections that send nothing and are owed
	// nothing for this long (Kafka connections.max.idle.ms).
	IdleTimeout Duration `toml:"idle_timeout"`
	// AutoCreateTopics creates a topic on first Metadata or Produce for it,
	// as Kafka's auto.create.topics.enable does.
	AutoCreateTopics bool `toml:"auto_create_topics"`
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that ask for the default (-1). int32 because
	// that is what the Kafka protocol carries.
	DefaultPartitions int32 `toml:"default_partitions"`
	// MaxInflightRequests bounds the requests one connection may have
	// awaiting responses; the connection stops reading while it is reached.
	// Clients keep a handful in flight (five for idempotent producers), so
	// this only bites on abuse.
	MaxInflightRequests int64 `toml:"max_inflight_requests"`
	// MaxConnections bounds the Kafka connections open at once; past it a
	// new connection is closed as soon as it is accepted, so idle sockets
	// cannot use up the node's file descriptors and memory (Kafka
	// max.connections).
	MaxConnections int64 `toml:"max_connections"`
	// MaxConnectionsPerIP bounds the Kafka connections open at once from
	// one source address, so one client cannot take every slot of
	// MaxConnections (Kafka max.connections.per.ip).
	MaxConnectionsPerIP int64 `toml:"max_connections_per_ip"`
	// MaxInflightResponseBytes bounds the encoded responses one connection
	// may have waiting to be written: past it the connection reads no
	// further request until the client reads what it is owed, so a client
	// that pipelines requests and never reads holds this much (plus one
	// response), however large each response is.
	MaxInflightResponseBytes int64 `toml:"max_inflight_response_bytes"`
}

// WALBrokerConfig is the HTTP WAL API listener.
type WALBrokerConfig struct {
	// ListenAddr is the host:port of the HTTP listener.
	ListenAddr string `toml:"listen_addr"`
	// MaxBodyBytes bounds one request body; larger bodies are refused with
	// 413 before they are read.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// MaxWait caps the wait_ms a long-polling reader may ask for, so a
	// parked reader cannot hold a connection forever.
	MaxWait Duration `toml:"max_wait"`
	// AllowPerLogStorage lets a WAL client choose storage settings per log
	// when creating it; off by default so operators decide where data goes.
	AllowPerLogStorage bool `toml:"allow_per_log_storage"`
	// RequestTimeout bounds the broker work of one request, on top of the
	// wait a long-polling read asked for.
	RequestTimeout Duration `toml:"request_timeout"`
	// TailHeartbeat is how often an idle tail stream sends a keep-alive
	// comment, which is also how the node notices a tail's client left.
	TailHeartbeat Duration `toml:"tail_heartbeat"`
	// MaxConnections bounds the HTTP connections open at once; past it a
	// new connection is closed as soon as it is accepted.
	MaxConnections int64 `toml:"max_connections"`
	// MaxConnectionsPerIP bounds the HTTP connections open at once from one
	// source address.
	MaxConnectionsPerIP int64 `toml:"max_connections_per_ip"`
	// ReadTimeout bounds reading one request, headers and body, so a client
	// that trickles a request (slowloris) cannot hold a connection longer.
	ReadTimeout Duration `toml:"read_timeout"`
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ReadBufferBytes is each connection's read buffer, allocated while a
	// request is read; it also bounds the size of a request's headers.
	ReadBufferBytes int64 `toml:"read_buffer_bytes"`
}

// StorageConfig says where segment objects live. Keys that apply to one
// scheme only are rejected under the other, so a forgotten scheme = "s3"
// cannot silently put a "diskless" node's data on its local disk.
type StorageConfig struct {
	// Scheme is "fs" (files under Dir) or "s3".
	Scheme string `toml:"scheme"`
	// Dir is where "fs" keeps objects; empty means <data_dir>/objects.
	// fs only.
	Dir string `toml:"dir"`
	// Bucket is the S3 bucket. s3 only; required.
	Bucket string `toml:"bucket"`
	// Region is the S3 region (MinIO accepts any, conventionally
	// "us-east-1"). s3 only; required.
	Region string `toml:"region"`
	// Endpoint is an http(s) URL of an S3-compatible service; empty means
	// AWS. s3 only.
	Endpoint string `toml:"endpoint"`
	// AccessKeyID and SecretAccessKey are static credentials; set both or
	// neither (neither means the AWS default credential chain). s3 only.
	AccessKeyID string `toml:"access_key_id"`
	// SecretAccessKey pairs with AccessKeyID. s3 only.
	SecretAccessKey Secret `toml:"secret_access_key"`
	// PathStyle addresses objects as endpoint/bucket/key instead of
	// bucket.endpoint/key, which MinIO and most self-hosted stores need.
	// s3 only.
	PathStyle bool `toml:"path_style"`
	// Prefix is prepended to every object key, so several clusters can
	// share a bucket or directory.
	Prefix string `toml:"prefix"`
	// RequestTimeout bounds one object store request.
	RequestTimeout Duration `toml:"request_timeout"`
	// ObjectBytes is the object size at which a node uploads the object it
	// packs its partitions' flushes into (all partitions share objects, so
	// PUTs grow with the node's throughput, not its partition count).
	ObjectBytes int64 `toml:"object_bytes"`
	// ObjectLinger is how long a partly filled object waits for no other
	// partition's flush to join it before it uploads (at most 8 times
	// this after its first flush); 0 uploads at once.
	ObjectLinger Duration `toml:"object_linger"`
	// MaxUploads bounds the objects a node uploads at once.
	MaxUploads int64 `toml:"max_uploads"`
}

// PartitionConfig sets the per-partition write path and the byte limits that
// keep memory bounded (docs/ARCHITECTURE.md, invariant 5).
type PartitionConfig struct {
	// FlushBytes flushes a partition's buffer once it holds this much.
	FlushBytes int64 `toml:"flush_bytes"`
	// Linger flushes a partition's buffer once its oldest byte is this old,
	// while an earlier flush of the partition is still in flight; an idle
	// partition hands its first append to the node's flusher at once, and
	// storage.object_linger gathers partitions into one object. Default
	// 2ms, or 5ms when storage.scheme is "s3" and linger is not set.
	Linger Duration `toml:"linger"`
	// MaxBufferBytes bounds one partition's append buffer, counting bytes
	// in flight to storage as well as bytes buffered; appends beyond it are
	// pushed back.
	MaxBufferBytes int64 `toml:"max_buffer_bytes"`
	// NodeBufferBytes bounds the append buffers of all partitions on the
	// node together.
	NodeBufferBytes int64 `toml:"node_buffer_bytes"`
	// TailCacheBytes bounds each partition's cache of recent data; 0
	// disables it.
	TailCacheBytes int64 `toml:"tail_cache_bytes"`
	// BlockCacheBytes bounds the node-wide cache of blocks read from
	// storage; 0 disables it.
	BlockCacheBytes int64 `toml:"block_cache_bytes"`
	// MaxMessageBytes is the default max.message.bytes of a topic: the
	// largest record batch a producer may send.
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxDecompressedBatchBytes bounds what one compressed record batch may
	// decompress to. Appends are checked while decompressing (decompression
	// stops at the bound), so a small batch that expands to gigabytes (a
	// compression bomb) is refused and never stored; reads of stored data
	// stop at the same bound.
	MaxDecompressedBatchBytes int64 `toml:"max_decompressed_batch_bytes"`
	// RetentionCheckInterval is how often retention deletes old segments.
	RetentionCheckInterval Duration `toml:"retention_check_interval"`
	// OrphanMinAge is how old an uncommitted object must be before the
	// orphan sweep deletes it; it must outlast any upload that may still
	// commit.
	OrphanMinAge Duration `toml:"orphan_min_age"`
	// MaxInflightFlushes bounds the flushes of one partition that are
	// uploading or committing at once; past it the partition buffers.
	MaxInflightFlushes int64 `toml:"max_inflight_flushes"`
	// ReadBlockBytes is the unit of ranged reads from object storage, and
	// so of the block cache.
	ReadBlockBytes int64 `toml:"read_block_bytes"`
	// IOTimeout bounds one upload, metadata commit or storage read that a
	// partition, the flusher or a group coordinator issues.
	IOTimeout Duration `toml:"io_timeout"`
	// MailboxRequests bounds the requests queued for one partition actor
	// (and for the node's partition registry); past it requests are
	// refused as retriable rather than queued.
	MailboxRequests int64 `toml:"mailbox_requests"`
}

// GroupConfig sets the consumer-group coordinator's limits. The defaults
// are Kafka's (group.min.session.timeout.ms and so on), so clients tuned
// for Kafka behave the same here.
type GroupConfig struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// joining member may ask for (Kafka group.min/max.session.timeout.ms).
	MinSessionTimeout Duration `toml:"min_session_timeout"`
	// MaxSessionTimeout: see MinSessionTimeout.
	MaxSessionTimeout Duration `toml:"max_session_timeout"`
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members to join (Kafka
	// group.initial.rebalance.delay.ms); 0 rebalances at once.
	InitialRebalanceDelay Duration `toml:"initial_rebalance_delay"`
	// MaxSize bounds the members of one group (Kafka group.max.size).
	MaxSize int64 `toml:"max_size"`
	// MaxOffsetMetadataBytes bounds the metadata string of a committed
	// offset (Kafka offset.metadata.max.bytes).
	MaxOffsetMetadataBytes int64 `toml:"max_offset_metadata_bytes"`
	// IdleTimeout is how long an empty group's actor stays in memory
	// without requests; its state is in the metadata store either way.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxPendingBytes bounds the bytes of group requests queued or parked
	// in the coordinator (join metadata, assignments, commits); past it new
	// requests are refused as retriable.
	MaxPendingBytes int64 `toml:"max_pending_bytes"`
	// MailboxRequests bounds the requests queued for one group actor (and
	// for the coordinator's manager, which routes them); past it requests
	// are refused as retriable rather than queued.
	MailboxRequests int64 `toml:"mailbox_requests"`
}

// ClusterConfig sets node identity, lease timing and the node-to-node
// listener.
type ClusterConfig struct {
	// NodeID names this node in the nodes table and in leases. Empty means
	// a random id generated once and kept in <data_dir>/node_id, so a
	// restarted node keeps its identity.
	NodeID string `toml:"node_id"`
	// LeaseTTL is how long a partition lease lasts without renewal: the
	// time before a crashed node's partitions are taken over.
	LeaseTTL Duration `toml:"lease_ttl"`
	// HeartbeatInterval is how often the node renews its registration and
	// leases; it must fit more than twice into LeaseTTL so one late
	// heartbeat does not cost the node its leases.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	// RemoteListenAddr is the host:port other nodes reach this node on to
	// send requests for the partitions it owns (WAL requests through other
	// nodes reach their logs this way).
	RemoteListenAddr string `toml:"remote_listen_addr"`
	// RemoteMaxInflight bounds the requests from other nodes this node
	// holds at once (mostly parked long polls); beyond it, and beyond
	// RemoteMaxInflightBytes of appends, they are refused as retriable
	// backpressure without being acted on.
	RemoteMaxInflight int64 `toml:"remote_max_inflight"`
	// RemoteMaxInflightBytes bounds the append bytes of those requests.
	RemoteMaxInflightBytes int64 `toml:"remote_max_inflight_bytes"`
	// PollInterval is how often the ownership loop reads nodes, leases and
	// topics: it bounds how stale routes are and how soon a released lease
	// is taken up.
	PollInterval Duration `toml:"poll_interval"`
	// RefreshInterval is how often the ownership loop rereads every lease
	// and topic even though nothing it polls says they changed. Between
	// refreshes a poll reads only the live nodes and the catalog version,
	// so an idle node's cost does not grow with its partitions; while
	// partitions are moving, every poll rereads. Zero (the default) means
	// half of lease_ttl; a value set must be at least poll_interval and at
	// most half of lease_ttl, so the lease expiries the node routes by are
	// never older than half a lease. See Refresh.
	RefreshInterval Duration `toml:"refresh_interval"`
	// MaxMovesPerPoll bounds the partitions a node hands over per poll, so
	// a joining node takes its share gradually.
	MaxMovesPerPoll int64 `toml:"max_moves_per_poll"`
}

// Refresh is the ownership loop's refresh interval: RefreshInterval, or
// half of LeaseTTL when it is zero, and never below PollInterval.
func (c ClusterConfig) Refresh() time.Duration {
	r := c.RefreshInterval.Duration()
	if r <= 0 {
		r = c.LeaseTTL.Duration() / 2
	}
	return max(r, c.PollInterval.Duration())
}

// TelemetryConfig sets logging and metrics.
type TelemetryConfig struct {
	// Log configures the process logger.
	Log LogConfig `toml:"log"`
	// Metrics configures the Prometheus endpoint.
	Metrics MetricsConfig `toml:"metrics"`
	// PprofListenAddr serves Go's runtime profiles (/debug/pprof/) on
	// their own HTTP listener at this host:port; empty (the default) serves
	// none. Profiles expose internals: keep it on a loopback address.
	PprofListenAddr string `toml:"pprof_listen_addr"`
}

// LogConfig configures the process logger.
type LogConfig struct {
	// Level is the minimum level logged: debug, info, warn or error.
	Level string `toml:"level"`
	// Format is "text" (logfmt-like, for people) or "json" (for collectors).
	Format string `toml:"format"`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Enabled serves /metrics on the WAL listener.
	Enabled bool `toml:"enabled"`
}

// LimitsConfig bounds what clients may create and what one node serves.
// Without them one CreateTopics request for a million partitions is
// accepted, and the node then spends everything trying to start them.
// Every refusal is counted in morax_limit_refusals_total{reason}.
type LimitsConfig struct {
	// MaxPartitionsPerTopic bounds the partition count of one topic, at
	// creation and when it grows; larger counts are refused with
	// INVALID_PARTITIONS. It must be at least
	// server.kafka_broker.default_partitions.
	MaxPartitionsPerTopic int32 `toml:"max_partitions_per_topic"`
	// MaxClusterPartitions bounds the partitions of all topics together, as
	// the metadata store counts them; a create or grow past it is refused
	// with POLICY_VIOLATION (WAL: 403 PermissionDenied). A node checks it
	// under a lock of its own, so nodes creating at the same moment may
	// together pass it by what they were creating.
	MaxClusterPartitions int64 `toml:"max_cluster_partitions"`
	// MaxNodePartitions bounds the partitions one node serves. Past it the
	// node starts no more partition actors: requests for the others are
	// answered as not led here, and a node restarted on data holding more
	// serves this many and reports how many it refuses (log, metric
	// morax_partitions_refused, GET /v1/status).
	MaxNodePartitions int64 `toml:"max_node_partitions"`
	// MaxTopicsPerRequest bounds the topics one CreateTopics or
	// CreatePartitions request may name; a larger request is refused whole
	// with POLICY_VIOLATION.
	MaxTopicsPerRequest int64 `toml:"max_topics_per_request"`
	// MaxAutoCreatePerRequest bounds the topics one Metadata request may
	// auto-create; the others are answered UNKNOWN_TOPIC_OR_PARTITION, as
	// if auto-creation were off, and a client asking again gets more.
	MaxAutoCreatePerRequest int64 `toml:"max_auto_create_per_request"`
	// CreateRate is how many creations per second a node admits, over all
	// clients: a topic (however made: CreateTopics, auto-creation, WAL
	// create) or a CreatePartitions growth counts one. Past the burst,
	// creations are refused with THROTTLING_QUOTA_EXCEEDED and a throttle
	// time (CreateTopics v6+, CreatePartitions v3+, as KIP-599 does;
	// POLICY_VIOLATION and a throttle time before), HTTP 429 with
	// Retry-After for WAL creates.
	CreateRate int64 `toml:"create_rate"`
	// CreateBurst is how many creations a node admits at once after a
	// quiet spell (the token bucket's size).
	CreateBurst int64 `toml:"create_burst"`
	// PartitionStartsPerPoll bounds the partitions a node's ownership
	// loop starts per cluster.poll_interval. Each start takes a lease and
	// reads the partition's state from the metadata store, which the
	// node's lease renewals share: a node restarted on tens of thousands
	// of partitions, or given a burst of new ones, starts them over a few
	// seconds instead of at once (F2 saw renewals time out in such a
	// burst). Partitions a request reaches first start at once.
	PartitionStartsPerPoll int64 `toml:"partition_starts_per_poll"`
}

// Default returns the embedded single-node configuration: metadata in SQLite
// and objects as files, both under ./data, listeners on localhost. It is
// what `morax start` runs with and no config file, and it validates.
//
// It is the one place default values live: the components' own defaults
// for zero option fields (actors.DefaultOptions, kafka.DefaultConfig and
// the like) are read from it, so a node run without a config file and a
// component built in a test agree.
func Default() Config {
	const mib = 1 << 20
	return Config{
		DataDir: "./data",
		Server: ServerConfig{
			KafkaBroker: KafkaBrokerConfig{
				ListenAddr:        "127.0.0.1:9092",
				MaxFrameBytes:     100 * mib,
				IdleTimeout:       Duration(10 * time.Minute),
				AutoCreateTopics:  true,
				DefaultPartitions: 1,
				// Clients keep five or so requests in flight; 64 leaves
				// room for pipelining tools without letting one socket
				// queue without bound.
				MaxInflightRequests: 64,
				// Kafka's own defaults are unlimited; these keep a flood
				// of idle sockets (each a file descriptor and a few KiB)
				// well below the usual 65536 descriptor limit, and leave
				// room for the NAT gateways many clients share.
				MaxConnections:      10000,
				MaxConnectionsPerIP: 1000,
				// Twice the largest fetch response (55 MiB) would let a
				// non-reading client hold over 100 MiB; 16 MiB is many
				// times a normal client's backlog (it reads as it goes)
				// and one fetch response past it is still written.
				MaxInflightResponseBytes: 16 * mib,
			},
			WALBroker: WALBrokerConfig{
				ListenAddr:     "127.0.0.1:8848",
				MaxBodyBytes:   16 * mib,
				MaxWait:        Duration(30 * time.Second),
				RequestTimeout: Duration(30 * time.Second),
				// Well inside the 60 s idle timeouts of common proxies
				// and load balancers, so they do not cut a quiet tail.
				TailHeartbeat:       Duration(15 * time.Second),
				MaxConnections:      10000,
				MaxConnectionsPerIP: 1000,
				// A request, body included, arrives within 30 s from any
				// client not trickling it on purpose; long polls wait
				// after the request is read, so this does not cut them.
				ReadTimeout: Duration(30 * time.Second),
				IdleTimeout: Duration(2 * time.Minute),
				// fasthttp's own default: enough for any real header set.
				ReadBufferBytes: 4096,
			},
			ShutdownTimeout: Duration(8 * time.Second),
		},
		Storage: StorageConfig{
			Scheme:         SchemeFS,
			RequestTimeout: Duration(30 * time.Second),
			ObjectBytes:    8 * mib,
			ObjectLinger:   Duration(time.Millisecond),
			MaxUploads:     4,
		},
		Partition: PartitionConfig{
			FlushBytes:      4 * mib,
			Linger:          Duration(defaultLinger),
			MaxBufferBytes:  16 * mib,
			NodeBufferBytes: 256 * mib,
			TailCacheBytes:  8 * mib,
			BlockCacheBytes: 256 * mib,
			// Kafka's own default: 1 MiB plus the 12-byte batch header
			// overhead, so a 1 MiB message fits.
			MaxMessageBytes: mib + 12,
			// The bound reads already applied to stored batches (so
			// anything accepted stays readable), 64 times the default
			// max.message.bytes: producers size batches before
			// compression (batch.size, max.request.size), so a real
			// batch decompresses to about its own limit.
			MaxDecompressedBatchBytes: 64 * mib,
			RetentionCheckInterval:    Duration(time.Minute),
			OrphanMinAge:              Duration(time.Hour),
			MaxInflightFlushes:        4,
			ReadBlockBytes:            mib,
			IOTimeout:                 Duration(30 * time.Second),
			MailboxRequests:           4096,
		},
		Group: GroupConfig{
			MinSessionTimeout:      Duration(6 * time.Second),
			MaxSessionTimeout:      Duration(30 * time.Minute),
			InitialRebalanceDelay:  Duration(3 * time.Second),
			MaxSize:                1 << 30,
			MaxOffsetMetadataBytes: 4096,
			IdleTimeout:            Duration(5 * time.Minute),
			MaxPendingBytes:        64 * mib,
			MailboxRequests:        4096,
		},
		Cluster: ClusterConfig{
			LeaseTTL:               Duration(10 * time.Second),
			HeartbeatInterval:      Duration(2 * time.Second),
			RemoteListenAddr:       "127.0.0.1:8090",
			RemoteMaxInflight:      10000,
			RemoteMaxInflightBytes: 256 * mib,
			PollInterval:           Duration(250 * time.Millisecond),
			MaxMovesPerPoll:        32,
		},
		Telemetry: TelemetryConfig{
			Log:     LogConfig{Level: "info", Format: LogFormatText},
			Metrics: MetricsConfig{Enabled: true},
		},
		Limits: LimitsConfig{
			// Large topics of a few thousand partitions exist; a million
			// (issue #12, F1) is abuse.
			MaxPartitionsPerTopic: 2048,
			// Each partition costs a metadata row, a lease renewed every
			// lease_ttl/3 and an actor: tens of thousands keep renewals
			// and the ownership poll well inside their time.
			MaxClusterPartitions: 50000,
			MaxNodePartitions:    50000,
			// Tools create a handful of topics per request; 100 leaves
			// room for scripted setups.
			MaxTopicsPerRequest: 100,
			// A producer asks for the topics it writes to; a score is
			// plenty, and asking again creates more.
			MaxAutoCreatePerRequest: 20,
			// Creation costs metadata writes and partition starts that
			// share the store with lease renewals (F2): tens per second.
			CreateRate:  20,
			CreateBurst: 100,
			// With the default 250ms poll, about a thousand starts a
			// second: 50,000 partitions in under a minute.
			PartitionStartsPerPoll: 256,
		},
	}
}

// Embedded reports whether the node uses the embedded metadata store (no
// server.meta.service_url), which limits it to a single node.
func (c Config) Embedded() bool { return c.Server.Meta.ServiceURL == "" }

// MetaPath is the embedded metadata database file, <data_dir>/meta.db.
func (c Config) MetaPath() string { return filepath.Join(c.DataDir, "meta.db") }

// ObjectsDir is where scheme "fs" keeps objects: storage.dir, or
// <data_dir>/objects when that is empty.
func (c Config) ObjectsDir() string {
	if c.Storage.Dir != "" {
		return c.Storage.Dir
	}
	return filepath.Join(c.DataDir, "objects")
}

// NodeIDPath is the file that keeps a generated node id across restarts
// when cluster.node_id is empty.
func (c Config) NodeIDPath() string { return filepath.Join(c.DataDir, "node_id") }

// KafkaAdvertised is the address Kafka clients are told to connect to:
// advertised_addr, or listen_addr when that is empty. When the listen port is
// 0 the broker must substitute the port it actually bound.
func (c Config) KafkaAdvertised() string {
	if c.Server.KafkaBroker.AdvertisedAddr != "" {
		return c.Server.KafkaBroker.AdvertisedAddr
	}
	return c.Server.KafkaBroker.ListenAddr
}

// SlogLevel returns the slog level for Level; an unknown level (which
// Validate rejects) is treated as info.
func (l LogConfig) SlogLevel() slog.Level {
	lv, _ := parseLevel(l.Level)
	return lv
}

// logLevelList is how errors name the accepted telemetry.log.level values;
// keep it in step with parseLevel.
const logLevelList = "debug, info, warn, error"

// parseLevel maps a telemetry.log.level value to its slog level; ok is false
// for anything but the lower-case names in logLevelList.
func parseLevel(s string) (lv slog.Level, ok bool) {
	switch s {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}
