package node

import (
	"net"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/wal"
)

// The functions below map a configuration onto each component's options,
// one function per component, so each can be checked key by key. They set
// the tunables only; New adds what the node itself provides (node id,
// logger, metrics registry, the other components).

// brokerOptions maps cfg onto the broker: the partition keys, the flusher's
// storage keys and the lease TTL.
func brokerOptions(cfg config.Config) actors.Options {
	p, s := cfg.Partition, cfg.Storage
	return actors.Options{
		FlushBytes:         int(p.FlushBytes),
		Linger:             p.Linger.Duration(),
		ObjectBytes:        int(s.ObjectBytes),
		ObjectLinger:       explicitZero(s.ObjectLinger.Duration()),
		MaxUploads:         int(s.MaxUploads),
		MaxBufferBytes:     p.MaxBufferBytes,
		NodeBufferBytes:    p.NodeBufferBytes,
		TailCacheBytes:     explicitZero(p.TailCacheBytes),
		BlockCacheBytes:    explicitZero(p.BlockCacheBytes),
		BlockSize:          p.ReadBlockBytes,
		MaxMessageBytes:    int(p.MaxMessageBytes),
		MaxInflightFlushes: int(p.MaxInflightFlushes),
		LeaseTTL:           cfg.Cluster.LeaseTTL.Duration(),
		RetentionInterval:  p.RetentionCheckInterval.Duration(),
		OrphanMinAge:       p.OrphanMinAge.Duration(),
		IOTimeout:          p.IOTimeout.Duration(),
		MailboxRequests:    int(p.MailboxRequests),

		MaxDecompressedBatchBytes: int(p.MaxDecompressedBatchBytes),
		Limits:                    limits(cfg),
	}
}

// limits maps the limits section onto the broker's limits.
func limits(cfg config.Config) actors.Limits {
	l := cfg.Limits
	return actors.Limits{
		MaxPartitionsPerTopic:   l.MaxPartitionsPerTopic,
		MaxClusterPartitions:    l.MaxClusterPartitions,
		MaxNodePartitions:       int(l.MaxNodePartitions),
		MaxTopicsPerRequest:     int(l.MaxTopicsPerRequest),
		MaxAutoCreatePerRequest: int(l.MaxAutoCreatePerRequest),
		CreateRate:              float64(l.CreateRate),
		CreateBurst:             int(l.CreateBurst),
		StartsPerPoll:           int(l.PartitionStartsPerPoll),
	}
}

// groupOptions maps the group section onto the group coordinator.
func groupOptions(cfg config.Config) actors.GroupOptions {
	g := cfg.Group
	return actors.GroupOptions{
		Slots:                 actors.DefaultGroupSlots,
		MinSessionTimeout:     g.MinSessionTimeout.Duration(),
		MaxSessionTimeout:     g.MaxSessionTimeout.Duration(),
		InitialRebalanceDelay: explicitZero(g.InitialRebalanceDelay.Duration()),
		MaxSize:               int(g.MaxSize),
		MaxOffsetMetadata:     int(g.MaxOffsetMetadataBytes),
		IdleTimeout:           g.IdleTimeout.Duration(),
		MaxPendingBytes:       g.MaxPendingBytes,
		MailboxRequests:       int(g.MailboxRequests),
	}
}

// clusterOptions maps the cluster section onto the ownership loop. A node
// counts as live while its heartbeat is younger than the lease TTL, so a
// crashed node stops being chosen about when its leases expire.
func clusterOptions(cfg config.Config) actors.ClusterOptions {
	c := cfg.Cluster
	return actors.ClusterOptions{
		LiveWithin:      c.LeaseTTL.Duration(),
		Poll:            c.PollInterval.Duration(),
		Refresh:         c.Refresh(),
		Slots:           actors.DefaultGroupSlots,
		MaxMovesPerPoll: int(c.MaxMovesPerPoll),
	}
}

// kafkaConfig maps server.kafka_broker onto the Kafka server.
func kafkaConfig(cfg config.Config) kafka.Config {
	k := cfg.Server.KafkaBroker
	return kafka.Config{
		ListenAddr:        k.ListenAddr,
		AdvertisedAddr:    kafkaAdvertised(cfg),
		MaxFrameBytes:     int32(k.MaxFrameBytes),
		IdleTimeout:       k.IdleTimeout.Duration(),
		MaxInflight:       int(k.MaxInflightRequests),
		AutoCreateTopics:  k.AutoCreateTopics,
		DefaultPartitions: k.DefaultPartitions,

		MaxConnections:           int(k.MaxConnections),
		MaxConnectionsPerIP:      int(k.MaxConnectionsPerIP),
		MaxInflightResponseBytes: k.MaxInflightResponseBytes,
	}
}

// kafkaAdvertised is the address Kafka clients are told, or "" when the
// listen port is 0 and nothing is advertised: the server then advertises
// the port it bound, which no configuration can name in advance.
func kafkaAdvertised(cfg config.Config) string {
	addr := cfg.KafkaAdvertised()
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return ""
	}
	return addr
}

// walConfig maps server.wal_broker and the storage identity onto the WAL
// server.
func walConfig(cfg config.Config) wal.Config {
	w, s := cfg.Server.WALBroker, cfg.Storage
	return wal.Config{
		ListenAddr:         w.ListenAddr,
		MaxBodyBytes:       int(w.MaxBodyBytes),
		MaxWait:            w.MaxWait.Duration(),
		AllowPerLogStorage: w.AllowPerLogStorage,
		Storage: wal.StorageIdentity{
			Scheme:   s.Scheme,
			Bucket:   s.Bucket,
			Endpoint: s.Endpoint,
			Region:   s.Region,
		},
		RequestTimeout: w.RequestTimeout.Duration(),
		TailHeartbeat:  w.TailHeartbeat.Duration(),

		MaxConnections:      int(w.MaxConnections),
		MaxConnectionsPerIP: int(w.MaxConnectionsPerIP),
		ReadTimeout:         w.ReadTimeout.Duration(),
		IdleTimeout:         w.IdleTimeout.Duration(),
		ReadBufferBytes:     int(w.ReadBufferBytes),
	}
}

// remoteConfig maps cluster.remote_* onto the node's remote. Its message
// limit follows from the largest append the WAL API takes (its body limit)
// and the largest batch (partition.max_message_bytes).
func remoteConfig(cfg config.Config) actors.RemoteConfig {
	cl := cfg.Cluster
	return actors.RemoteConfig{
		ListenAddr:       cl.RemoteListenAddr,
		MaxMessageBytes:  actors.RemoteMessageLimit(int(cfg.Server.WALBroker.MaxBodyBytes), int(cfg.Partition.MaxMessageBytes)),
		MaxInflight:      int(cl.RemoteMaxInflight),
		MaxInflightBytes: cl.RemoteMaxInflightBytes,
	}
}

// s3Config maps the storage section onto the S3 object store.
func s3Config(cfg config.Config) objstore.S3Config {
	s := cfg.Storage
	return objstore.S3Config{
		Bucket:          s.Bucket,
		Region:          s.Region,
		Endpoint:        s.Endpoint,
		AccessKeyID:     s.AccessKeyID,
		SecretAccessKey: s.SecretAccessKey.Reveal(),
		PathStyle:       s.PathStyle,
		Prefix:          s.Prefix,
		RequestTimeout:  s.RequestTimeout.Duration(),
	}
}

// explicitZero passes a value whose zero means "none" (no linger, no
// cache, no delay) to options that read zero as "the default": those take
// a negative value for zero.
func explicitZero[T int64 | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
