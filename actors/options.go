package actors

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/config"
)

// Options configure a Broker. Zero fields take the defaults in
// DefaultOptions. ObjectLinger, TailCacheBytes and BlockCacheBytes are
// meaningful at zero (no linger, no cache), which a negative value asks
// for.
type Options struct {
	// NodeID names this node in leases and metadata.
	NodeID string
	// FlushBytes seals a partition's buffer into a segment object once it
	// holds this many bytes.
	FlushBytes int
	// Linger seals a non-empty buffer once its oldest byte waited this long
	// while a flush of the partition is in flight (an idle partition seals
	// at once: see partition.afterBuffer).
	Linger time.Duration
	// ObjectBytes is the size at which the node's flusher uploads the
	// object it packs sealed flushes into, without waiting further.
	ObjectBytes int
	// ObjectLinger is the quiet gap after which a partly filled object
	// stops waiting for more sealed flushes, once an upload slot is free
	// for it (at most 8 ObjectLingers after its first flush). Negative
	// uploads at once.
	ObjectLinger time.Duration
	// MaxUploads bounds the objects uploading at once.
	MaxUploads int
	// MaxBufferBytes bounds one partition's buffered plus in-flight bytes.
	MaxBufferBytes int64
	// NodeBufferBytes bounds the bytes of all appends on this node that are
	// not yet acknowledged, mailboxes included.
	NodeBufferBytes int64
	// TailCacheBytes bounds each partition's cache of recently committed
	// segments; negative disables it.
	TailCacheBytes int64
	// BlockCacheBytes bounds the node's shared cache of object blocks;
	// negative disables it.
	BlockCacheBytes int64
	// BlockSize is the unit of ranged reads from object storage.
	BlockSize int64
	// MaxMessageBytes is the default max.message.bytes of a topic.
	MaxMessageBytes int
	// MaxDecompressedBatchBytes bounds what one compressed batch may
	// decompress to: appends are refused past it (checked while
	// decompressing, so the bound is all it costs) and reads stop there.
	MaxDecompressedBatchBytes int
	// MaxInflightFlushes bounds the flushes of one partition that are
	// uploading or committing at once.
	MaxInflightFlushes int
	// LeaseTTL is how long a partition lease lasts without renewal.
	LeaseTTL time.Duration
	// RetentionInterval is how often partitions apply retention.
	RetentionInterval time.Duration
	// OrphanMinAge is how old an uncommitted object must be before the sweep
	// deletes it; it must exceed any flush's upload-to-commit time.
	OrphanMinAge time.Duration
	// IOTimeout bounds one upload, commit or read.
	IOTimeout time.Duration
	// MailboxRequests bounds the messages queued for one owner (a
	// partition actor, the registry): past it, requests are refused with
	// ErrBackpressure instead of queueing.
	MailboxRequests int
	// Limits bound creations and the partitions this node serves; zero
	// fields take DefaultLimits.
	Limits Limits
	// Logger receives the broker's logs.
	Logger *slog.Logger
	// Metrics is where the broker registers its metrics; nil registers none.
	Metrics prometheus.Registerer
	// Now is the clock used for timestamps (tests may replace it).
	Now func() time.Time
}

// defaultNodeID names a broker built without a node id (tests). A node
// always has one: configured, or generated and kept in its data directory.
const defaultNodeID = "node-1"

// DefaultOptions are the values used for zero fields of Options. They are
// read from config.Default(), which holds every default, so a broker built
// from zero Options behaves as a node started without a config file.
func DefaultOptions() Options {
	c := config.Default()
	return Options{
		NodeID:             defaultNodeID,
		FlushBytes:         int(c.Partition.FlushBytes),
		Linger:             c.Partition.Linger.Duration(),
		ObjectBytes:        int(c.Storage.ObjectBytes),
		ObjectLinger:       c.Storage.ObjectLinger.Duration(),
		MaxUploads:         int(c.Storage.MaxUploads),
		MaxBufferBytes:     c.Partition.MaxBufferBytes,
		NodeBufferBytes:    c.Partition.NodeBufferBytes,
		TailCacheBytes:     c.Partition.TailCacheBytes,
		BlockCacheBytes:    c.Partition.BlockCacheBytes,
		BlockSize:          c.Partition.ReadBlockBytes,
		MaxMessageBytes:    int(c.Partition.MaxMessageBytes),
		MaxInflightFlushes: int(c.Partition.MaxInflightFlushes),
		LeaseTTL:           c.Cluster.LeaseTTL.Duration(),
		RetentionInterval:  c.Partition.RetentionCheckInterval.Duration(),
		OrphanMinAge:       c.Partition.OrphanMinAge.Duration(),
		IOTimeout:          c.Partition.IOTimeout.Duration(),
		MailboxRequests:    int(c.Partition.MailboxRequests),
		Limits:             DefaultLimits(),
		Now:                time.Now,

		MaxDecompressedBatchBytes: int(c.Partition.MaxDecompressedBatchBytes),
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.NodeID == "" {
		o.NodeID = d.NodeID
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = d.FlushBytes
	}
	if o.Linger <= 0 {
		o.Linger = d.Linger
	}
	if o.ObjectBytes <= 0 {
		o.ObjectBytes = d.ObjectBytes
	}
	o.ObjectLinger = zeroIfNegative(o.ObjectLinger, d.ObjectLinger)
	if o.MaxUploads <= 0 {
		o.MaxUploads = d.MaxUploads
	}
	if o.MaxBufferBytes <= 0 {
		o.MaxBufferBytes = d.MaxBufferBytes
	}
	if o.NodeBufferBytes <= 0 {
		o.NodeBufferBytes = d.NodeBufferBytes
	}
	o.TailCacheBytes = zeroIfNegative(o.TailCacheBytes, d.TailCacheBytes)
	o.BlockCacheBytes = zeroIfNegative(o.BlockCacheBytes, d.BlockCacheBytes)
	if o.BlockSize <= 0 {
		o.BlockSize = d.BlockSize
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = d.MaxMessageBytes
	}
	if o.MaxDecompressedBatchBytes <= 0 {
		o.MaxDecompressedBatchBytes = d.MaxDecompressedBatchBytes
	}
	if o.MaxInflightFlushes <= 0 {
		o.MaxInflightFlushes = d.MaxInflightFlushes
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = d.LeaseTTL
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = d.RetentionInterval
	}
	if o.OrphanMinAge <= 0 {
		o.OrphanMinAge = d.OrphanMinAge
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = d.IOTimeout
	}
	if o.MailboxRequests <= 0 {
		o.MailboxRequests = d.MailboxRequests
	}
	o.Limits = o.Limits.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}

// zeroIfNegative fills a field whose zero value is meaningful: zero takes
// the default def, and a negative value stands for zero.
func zeroIfNegative[T int64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}
