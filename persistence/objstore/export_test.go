package objstore

// NewS3WithTransport exposes newS3 to the external tests, which wrap the
// HTTP transport to lose responses and check how Put recovers.
var NewS3WithTransport = newS3
