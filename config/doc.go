// Package config is a Morax node's configuration: the TOML file, its
// defaults, environment overrides and validation.
//
// A configuration is built in layers, each overriding the one before:
//
//  1. Default(), the embedded single-node mode: metadata in SQLite and
//     objects as files under ./data, listeners on 127.0.0.1.
//  2. The TOML file, decoded strictly: a key this package does not know is an
//     error, never silently ignored.
//  3. Environment variables, one per key (table below).
//
// Load then validates the result and reports every problem at once, each
// with its key path and the file:line:col or variable that set it, so an
// operator fixes a broken file in one pass. Durations are strings in
// time.ParseDuration syntax ("5ms", "30s", "10m"); byte sizes are integers.
//
// Secrets (storage.secret_access_key and the password inside
// server.meta.service_url) have their own types, Secret and SecretURL, which
// print, log and encode as "REDACTED"; code that needs them calls Reveal.
//
// # Environment variables
//
// The variable for a key is MORAX_ followed by its key path in upper case
// with dots replaced by underscores. The names are derived from the struct
// tags (EnvVars lists them) and a test keeps this table in step:
//
//	data_dir                                         MORAX_DATA_DIR
//	server.meta.service_url                          MORAX_SERVER_META_SERVICE_URL
//	server.kafka_broker.listen_addr                  MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR
//	server.kafka_broker.advertised_addr              MORAX_SERVER_KAFKA_BROKER_ADVERTISED_ADDR
//	server.kafka_broker.max_frame_bytes              MORAX_SERVER_KAFKA_BROKER_MAX_FRAME_BYTES
//	server.kafka_broker.idle_timeout                 MORAX_SERVER_KAFKA_BROKER_IDLE_TIMEOUT
//	server.kafka_broker.auto_create_topics           MORAX_SERVER_KAFKA_BROKER_AUTO_CREATE_TOPICS
//	server.kafka_broker.default_partitions           MORAX_SERVER_KAFKA_BROKER_DEFAULT_PARTITIONS
//	server.kafka_broker.max_inflight_requests        MORAX_SERVER_KAFKA_BROKER_MAX_INFLIGHT_REQUESTS
//	server.kafka_broker.max_connections              MORAX_SERVER_KAFKA_BROKER_MAX_CONNECTIONS
//	server.kafka_broker.max_connections_per_ip       MORAX_SERVER_KAFKA_BROKER_MAX_CONNECTIONS_PER_IP
//	server.kafka_broker.max_inflight_response_bytes  MORAX_SERVER_KAFKA_BROKER_MAX_INFLIGHT_RESPONSE_BYTES
//	server.wal_broker.listen_addr                    MORAX_SERVER_WAL_BROKER_LISTEN_ADDR
//	server.wal_broker.max_body_bytes                 MORAX_SERVER_WAL_BROKER_MAX_BODY_BYTES
//	server.wal_broker.max_wait                       MORAX_SERVER_WAL_BROKER_MAX_WAIT
//	server.wal_broker.allow_per_log_storage          MORAX_SERVER_WAL_BROKER_ALLOW_PER_LOG_STORAGE
//	server.wal_broker.request_timeout                MORAX_SERVER_WAL_BROKER_REQUEST_TIMEOUT
//	server.wal_broker.tail_heartbeat                 MORAX_SERVER_WAL_BROKER_TAIL_HEARTBEAT
//	server.wal_broker.max_connections                MORAX_SERVER_WAL_BROKER_MAX_CONNECTIONS
//	server.wal_broker.max_connections_per_ip         MORAX_SERVER_WAL_BROKER_MAX_CONNECTIONS_PER_IP
//	server.wal_broker.read_timeout                   MORAX_SERVER_WAL_BROKER_READ_TIMEOUT
//	server.wal_broker.idle_timeout                   MORAX_SERVER_WAL_BROKER_IDLE_TIMEOUT
//	server.wal_broker.read_buffer_bytes              MORAX_SERVER_WAL_BROKER_READ_BUFFER_BYTES
//	server.shutdown_timeout                          MORAX_SERVER_SHUTDOWN_TIMEOUT
//	storage.scheme                                   MORAX_STORAGE_SCHEME
//	storage.dir                                      MORAX_STORAGE_DIR
//	storage.bucket                                   MORAX_STORAGE_BUCKET
//	storage.region                                   MORAX_STORAGE_REGION
//	storage.endpoint                                 MORAX_STORAGE_ENDPOINT
//	storage.access_key_id                            MORAX_STORAGE_ACCESS_KEY_ID
//	storage.secret_access_key                        MORAX_STORAGE_SECRET_ACCESS_KEY
//	storage.path_style                               MORAX_STORAGE_PATH_STYLE
//	storage.prefix                                   MORAX_STORAGE_PREFIX
//	storage.request_timeout                          MORAX_STORAGE_REQUEST_TIMEOUT
//	storage.object_bytes                             MORAX_STORAGE_OBJECT_BYTES
//	storage.object_linger                            MORAX_STORAGE_OBJECT_LINGER
//	storage.max_uploads                              MORAX_STORAGE_MAX_UPLOADS
//	partition.flush_bytes                            MORAX_PARTITION_FLUSH_BYTES
//	partition.linger                                 MORAX_PARTITION_LINGER
//	partition.max_buffer_bytes                       MORAX_PARTITION_MAX_BUFFER_BYTES
//	partition.node_buffer_bytes                      MORAX_PARTITION_NODE_BUFFER_BYTES
//	partition.tail_cache_bytes                       MORAX_PARTITION_TAIL_CACHE_BYTES
//	partition.block_cache_bytes                      MORAX_PARTITION_BLOCK_CACHE_BYTES
//	partition.max_message_bytes                      MORAX_PARTITION_MAX_MESSAGE_BYTES
//	partition.max_decompressed_batch_bytes           MORAX_PARTITION_MAX_DECOMPRESSED_BATCH_BYTES
//	partition.retention_check_interval               MORAX_PARTITION_RETENTION_CHECK_INTERVAL
//	partition.orphan_min_age                         MORAX_PARTITION_ORPHAN_MIN_AGE
//	partition.max_inflight_flushes                   MORAX_PARTITION_MAX_INFLIGHT_FLUSHES
//	partition.read_block_bytes                       MORAX_PARTITION_READ_BLOCK_BYTES
//	partition.io_timeout                             MORAX_PARTITION_IO_TIMEOUT
//	partition.mailbox_requests                       MORAX_PARTITION_MAILBOX_REQUESTS
//	group.min_session_timeout                        MORAX_GROUP_MIN_SESSION_TIMEOUT
//	group.max_session_timeout                        MORAX_GROUP_MAX_SESSION_TIMEOUT
//	group.initial_rebalance_delay                    MORAX_GROUP_INITIAL_REBALANCE_DELAY
//	group.max_size                                   MORAX_GROUP_MAX_SIZE
//	group.max_offset_metadata_bytes                  MORAX_GROUP_MAX_OFFSET_METADATA_BYTES
//	group.idle_timeout                               MORAX_GROUP_IDLE_TIMEOUT
//	group.max_pending_bytes                          MORAX_GROUP_MAX_PENDING_BYTES
//	group.mailbox_requests                           MORAX_GROUP_MAILBOX_REQUESTS
//	cluster.node_id                                  MORAX_CLUSTER_NODE_ID
//	cluster.lease_ttl                                MORAX_CLUSTER_LEASE_TTL
//	cluster.heartbeat_interval                       MORAX_CLUSTER_HEARTBEAT_INTERVAL
//	cluster.remote_listen_addr                       MORAX_CLUSTER_REMOTE_LISTEN_ADDR
//	cluster.remote_max_inflight                      MORAX_CLUSTER_REMOTE_MAX_INFLIGHT
//	cluster.remote_max_inflight_bytes                MORAX_CLUSTER_REMOTE_MAX_INFLIGHT_BYTES
//	cluster.poll_interval                            MORAX_CLUSTER_POLL_INTERVAL
//	cluster.refresh_interval                         MORAX_CLUSTER_REFRESH_INTERVAL
//	cluster.max_moves_per_poll                       MORAX_CLUSTER_MAX_MOVES_PER_POLL
//	telemetry.log.level                              MORAX_TELEMETRY_LOG_LEVEL
//	telemetry.log.format                             MORAX_TELEMETRY_LOG_FORMAT
//	telemetry.metrics.enabled                        MORAX_TELEMETRY_METRICS_ENABLED
//	telemetry.pprof_listen_addr                      MORAX_TELEMETRY_PPROF_LISTEN_ADDR
//	limits.max_partitions_per_topic                  MORAX_LIMITS_MAX_PARTITIONS_PER_TOPIC
//	limits.max_cluster_partitions                    MORAX_LIMITS_MAX_CLUSTER_PARTITIONS
//	limits.max_node_partitions                       MORAX_LIMITS_MAX_NODE_PARTITIONS
//	limits.max_topics_per_request                    MORAX_LIMITS_MAX_TOPICS_PER_REQUEST
//	limits.max_auto_create_per_request               MORAX_LIMITS_MAX_AUTO_CREATE_PER_REQUEST
//	limits.create_rate                               MORAX_LIMITS_CREATE_RATE
//	limits.create_burst                              MORAX_LIMITS_CREATE_BURST
//	limits.partition_starts_per_poll                 MORAX_LIMITS_PARTITION_STARTS_PER_POLL
//
// Values are read as the TOML value would be: durations as above, integers
// in decimal, booleans as strconv.ParseBool reads them; an empty value sets a
// string key to "". Any other variable starting with MORAX_ is an error (a
// misspelt override must not be ignored), except those the test harness and
// dev scripts use: MORAX_TEST_*, MORAX_DEV_*, MORAX_TOOLS_*,
// MORAX_REQUIRE_INTEGRATION and MORAX_PG_BIN.
//
// # Defaults, and which component reads which key
//
// Default holds the default of every key, and the components fill zero
// option fields from it rather than from constants of their own
// (actors.DefaultOptions, actors.DefaultGroupOptions,
// actors.DefaultClusterOptions, kafka.DefaultConfig, wal.DefaultConfig), so a
// component built from zero options in a test runs as a node started
// without a config file. What the components still define is not tunable:
// protocol limits, values all nodes must share, internal grace periods. The
// stores under persistence do not import this package; the node passes
// them the configured values. Package internal/node, which builds a node
// from a Config, maps each key onto the component that uses it:
//
//	data_dir                     the node: node_id file, data-dir lock, meta.db, objects
//	server.meta.service_url      the metadata store (pgmeta; embedded litemeta when empty)
//	server.kafka_broker.*        kafka.Config (the Kafka listener)
//	server.wal_broker.*          wal.Config (the WAL HTTP listener and /metrics);
//	                             max_body_bytes also sizes the node-to-node remote
//	server.shutdown_timeout      the node's stop, and the unloading of a lost group slot
//	storage.scheme .. prefix     the object store (objstore.FS or objstore.S3Config)
//	storage.request_timeout      objstore.S3Config.RequestTimeout
//	storage.object_bytes,
//	object_linger, max_uploads   actors.Options (the node's flusher)
//	partition.*                  actors.Options (partitions, caches, background loops)
//	group.*                      actors.GroupOptions (the group coordinator)
//	cluster.node_id              actors.Options.NodeID and the nodes table
//	cluster.lease_ttl            actors.Options.LeaseTTL; also how recent a heartbeat
//	                             must be for a node to count as live
//	cluster.heartbeat_interval   actors.Membership
//	cluster.remote_listen_addr,
//	remote_max_inflight(_bytes)  actors.RemoteConfig (clustered nodes only)
//	cluster.poll_interval,
//	refresh_interval,
//	max_moves_per_poll           actors.ClusterOptions (the ownership loop)
//	telemetry.*                  the logger, /metrics on the WAL listener, pprof
//	limits.*                     actors.Limits (creation caps and rate, the node's
//	                             partition cap); the per-request caps are
//	                             checked by the Kafka server through the broker
package config
