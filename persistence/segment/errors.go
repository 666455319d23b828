package segment

import "errors"

// Sentinel errors. Returned errors wrap exactly one of these (ErrTooLarge
// errors also wrap ErrCorrupt), so callers can map them to Kafka error codes
// with errors.Is without parsing messages.
var (
	// ErrTruncated means the input ends before the batch (or header) it
	// announces. For a ranged read this is expected at the tail; see
	// CompleteBatches.
	ErrTruncated = errors.New("segment: truncated batch")

	// ErrBadMagic means the batch is not RecordBatch v2. Kept distinct
	// because Kafka answers v0/v1 message sets with UNSUPPORTED_VERSION
	// rather than CORRUPT_MESSAGE.
	ErrBadMagic = errors.New("segment: unsupported batch magic")

	// ErrBadCRC means the CRC-32C stored in the batch does not match its
	// contents.
	ErrBadCRC = errors.New("segment: batch CRC mismatch")

	// ErrBadLength means the batch length field is impossible (shorter than
	// the header) or disagrees with the bytes given.
	ErrBadLength = errors.New("segment: bad batch length")

	// ErrCorrupt means the batch or index is structurally invalid in some
	// other way: inconsistent record count, malformed records, undecodable
	// compressed data.
	ErrCorrupt = errors.New("segment: corrupt data")

	// ErrTooLarge means a compressed batch would decompress to more than
	// MaxDecompressedSize bytes. Errors wrapping it also wrap ErrCorrupt: a
	// legitimate producer cannot build such a batch within Kafka's size
	// limits, so it is treated as hostile.
	ErrTooLarge = errors.New("segment: decompressed batch too large")

	// ErrUnsupportedCodec means the attributes name a compression codec
	// that does not exist (5-7). Kafka answers UNSUPPORTED_COMPRESSION_TYPE.
	ErrUnsupportedCodec = errors.New("segment: unsupported compression codec")

	// ErrEmpty means BuildBatch was given no records; a v2 batch must hold
	// at least one.
	ErrEmpty = errors.New("segment: batch needs at least one record")

	// ErrOutOfOrder means a batch given to Builder.Append does not start
	// after the previous one ended.
	ErrOutOfOrder = errors.New("segment: batch offsets out of order")
)
