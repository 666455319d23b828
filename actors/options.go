package actors

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Broker. Zero fields take the defaults in
// DefaultOptions.
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
	// for it (at most 8 ObjectLingers after its first flush).
	ObjectLinger time.Duration
	// MaxUploads bounds the objects uploading at once.
	MaxUploads int
	// MaxBufferBytes bounds one partition's buffered plus in-flight bytes.
	MaxBufferBytes int64
	// NodeBufferBytes bounds the bytes of all appends on this node that are
	// not yet acknowledged, mailboxes included.
	NodeBufferBytes int64
	// TailCacheBytes bounds each partition's cache of recently committed
	// segments.
	TailCacheBytes int64
	// BlockCacheBytes bounds the node's shared cache of object blocks.
	BlockCacheBytes int64
	// BlockSize is the unit of ranged reads from object storage.
	BlockSize int64
	// MaxMessageBytes is the default max.message.bytes of a topic.
	MaxMessageBytes int
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
	// Logger receives the broker's logs.
	Logger *slog.Logger
	// Metrics is where the broker registers its metrics; nil registers none.
	Metrics prometheus.Registerer
	// Now is the clock used for timestamps (tests may replace it).
	Now func() time.Time
}

// DefaultOptions are the values used for zero fields of Options.
func DefaultOptions() Options {
	return Options{
		NodeID:             "node-1",
		FlushBytes:         4 << 20,
		Linger:             5 * time.Millisecond,
		ObjectBytes:        8 << 20,
		ObjectLinger:       time.Millisecond,
		MaxUploads:         4,
		MaxBufferBytes:     16 << 20,
		NodeBufferBytes:    256 << 20,
		TailCacheBytes:     8 << 20,
		BlockCacheBytes:    256 << 20,
		BlockSize:          1 << 20,
		MaxMessageBytes:    1048588,
		MaxInflightFlushes: 4,
		LeaseTTL:           10 * time.Second,
		RetentionInterval:  time.Minute,
		OrphanMinAge:       time.Hour,
		IOTimeout:          30 * time.Second,
		MailboxRequests:    4096,
		Now:                time.Now,
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
	if o.ObjectLinger < 0 {
		o.ObjectLinger = 0
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = d.MaxUploads
	}
	if o.MaxBufferBytes <= 0 {
		o.MaxBufferBytes = d.MaxBufferBytes
	}
	if o.NodeBufferBytes <= 0 {
		o.NodeBufferBytes = d.NodeBufferBytes
	}
	if o.TailCacheBytes <= 0 {
		o.TailCacheBytes = d.TailCacheBytes
	}
	if o.BlockCacheBytes <= 0 {
		o.BlockCacheBytes = d.BlockCacheBytes
	}
	if o.BlockSize <= 0 {
		o.BlockSize = d.BlockSize
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = d.MaxMessageBytes
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
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}
