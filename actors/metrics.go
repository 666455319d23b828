package actors

import "github.com/prometheus/client_golang/prometheus"

// metrics are the broker's Prometheus instruments, registered on the
// Registerer given in Options (never the global default).
type metrics struct {
	appends        prometheus.Counter
	appendBytes    prometheus.Counter
	appendErrors   *prometheus.CounterVec
	flushes        prometheus.Counter
	flushBytes     prometheus.Histogram
	flushSegments  prometheus.Histogram
	segments       prometheus.Counter
	flushRecords   prometheus.Histogram
	uploadSeconds  prometheus.Histogram
	commitSeconds  prometheus.Histogram
	metaCommits    prometheus.Counter
	flushFailures  *prometheus.CounterVec
	bufferedBytes  prometheus.GaugeFunc
	fetches        prometheus.Counter
	fetchBytes     prometheus.Counter
	tailHits       prometheus.Counter
	coldReads      prometheus.Counter
	blockHits      prometheus.Counter
	blockMisses    prometheus.Counter
	parkedReaders  prometheus.Gauge
	partitions     prometheus.Gauge
	groupActors    prometheus.Gauge
	groupLoads     prometheus.Counter
	clusterNodes   prometheus.Gauge
	clusterReads   *prometheus.CounterVec
	retentionBytes prometheus.Counter
	orphansDeleted prometheus.Counter
	mailboxDepth   *prometheus.GaugeVec
	mailboxRefused *prometheus.CounterVec
	limitRefusals  *prometheus.CounterVec
	refused        prometheus.Gauge
	startFailures  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, b *budget) *metrics {
	latency := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10}
	sizes := prometheus.ExponentialBuckets(1024, 4, 10)
	m := &metrics{
		appends:       prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_appends_total", Help: "Append requests acknowledged."}),
		appendBytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_append_bytes_total", Help: "Record batch bytes acknowledged."}),
		appendErrors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_append_errors_total", Help: "Append requests answered with an error, by reason."}, []string{"reason"}),
		flushes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_flushes_total", Help: "Node-level flushes committed: objects holding at least one committed segment."}),
		flushBytes:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "morax_flush_bytes", Help: "Bytes per committed object.", Buckets: sizes}),
		flushSegments: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "morax_flush_segments", Help: "Partition segments committed per object.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		segments:      prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_segments_total", Help: "Partition segments committed."}),
		flushRecords:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "morax_flush_appends", Help: "Append requests per committed segment.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "morax_flush_upload_seconds", Help: "Time to put one object.", Buckets: latency}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "morax_flush_commit_seconds", Help: "Time of one object's metadata transaction.", Buckets: latency}),
		metaCommits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_meta_flush_transactions_total", Help: "Metadata transactions issued for flushes."}),
		flushFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_flush_failures_total", Help: "Flushes that failed, by stage."}, []string{"stage"}),
		fetches:       prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_fetches_total", Help: "Fetch requests answered."}),
		fetchBytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_fetch_bytes_total", Help: "Bytes returned by fetches."}),
		tailHits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_tail_cache_hits_total", Help: "Fetches served from a partition's tail cache."}),
		coldReads:     prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_cold_reads_total", Help: "Fetches served from object storage through the block cache."}),
		blockHits:     prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_block_cache_hits_total", Help: "Block cache hits."}),
		blockMisses:   prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_block_cache_misses_total", Help: "Block cache misses (ranged GETs)."}),
		parkedReaders: prometheus.NewGauge(prometheus.GaugeOpts{Name: "morax_parked_readers", Help: "Readers waiting at the end of a log."}),
		partitions:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "morax_partition_actors", Help: "Partition actors running on this node."}),
		groupActors:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "morax_group_actors", Help: "Consumer-group actors running (or stopping) on this node."}),
		groupLoads:    prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_group_loads_total", Help: "Consumer groups loaded from the metadata store into a new group actor."}),
		clusterNodes:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "morax_cluster_live_nodes", Help: "Live nodes in the cluster as this node last read them."}),
		clusterReads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_cluster_reads_total",
			Help: "Ownership polls by what they read: nodes (the live nodes and the catalog version only), topics (the topic list too), leases (every lease too)."}, []string{"read"}),
		retentionBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_retention_deleted_objects_total",
			Help: "Objects deleted by retention or trims once no segment referenced them."}),
		orphansDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_orphan_objects_deleted_total", Help: "Uncommitted objects removed by the sweep."}),
		mailboxDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "morax_mailbox_depth",
			Help: "Messages sent to owners (actors) and not yet received, summed over the owners of each kind."}, []string{"owner"}),
		mailboxRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_mailbox_refused_total",
			Help: "Requests refused because their owner's mailbox was full, by kind of owner."}, []string{"owner"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_limit_refusals_total",
			Help: "Requests (or, for auto-creation and node_partitions, topics and partitions) refused by a configured limit, by reason."}, []string{"reason"}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "morax_partitions_refused",
			Help: "Partitions this node should own by placement but does not start, being at limits.max_node_partitions."}),
		startFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_partition_start_failures_total",
			Help: "Partition actors that failed to start, by reason (lease_held: another process holds the lease)."}, []string{"reason"}),
	}
	m.bufferedBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "morax_buffered_bytes", Help: "Bytes of appends not yet acknowledged on this node."},
		func() float64 { return float64(b.used.Load()) })
	if reg != nil {
		reg.MustRegister(m.appends, m.appendBytes, m.appendErrors, m.flushes, m.flushBytes, m.flushSegments, m.segments, m.flushRecords,
			m.uploadSeconds, m.commitSeconds, m.metaCommits, m.flushFailures, m.bufferedBytes, m.fetches,
			m.fetchBytes, m.tailHits, m.coldReads, m.blockHits, m.blockMisses, m.parkedReaders, m.partitions, m.groupActors, m.groupLoads, m.clusterNodes,
			m.clusterReads, m.retentionBytes, m.orphansDeleted, m.mailboxDepth, m.mailboxRefused, m.limitRefusals, m.refused, m.startFailures)
	}
	return m
}
