package wal

import (
	"fmt"
	"net/url"
	"strings"
)

// StorageIdentity is where this node keeps segment objects, as far as a
// create request's properties.storage can name it. Credentials are not part
// of it: the node always uses its own.
type StorageIdentity struct {
	// Scheme is "fs" or "s3".
	Scheme string
	// Bucket, Endpoint and Region describe an "s3" store; Endpoint is empty
	// for AWS itself.
	Bucket, Endpoint, Region string
}

// String describes the identity for error messages.
func (id StorageIdentity) String() string {
	if strings.EqualFold(id.Scheme, "fs") || id.Scheme == "" {
		return "the node's local object directory (scheme fs)"
	}
	s := fmt.Sprintf("%s bucket %q", id.Scheme, id.Bucket)
	if id.Endpoint != "" {
		s += fmt.Sprintf(" at %s", id.Endpoint)
	}
	if id.Region != "" {
		s += fmt.Sprintf(" in region %q", id.Region)
	}
	return s
}

// matches reports whether a create request's storage names this node's own
// store. Fields the request leaves empty match anything (the original
// client sends what it was configured with, which may be partial); the
// region only has to agree when both sides name one, since a node may take
// its region from the AWS environment.
func (id StorageIdentity) matches(s storageSpec) bool {
	if s.Scheme != "" && !strings.EqualFold(s.Scheme, id.Scheme) {
		return false
	}
	if s.Bucket != "" && s.Bucket != id.Bucket {
		return false
	}
	if s.Endpoint != "" && normalizeEndpoint(s.Endpoint) != normalizeEndpoint(id.Endpoint) {
		return false
	}
	if s.Region != "" && id.Region != "" && !strings.EqualFold(s.Region, id.Region) {
		return false
	}
	return true
}

// normalizeEndpoint makes equivalent spellings of one endpoint URL compare
// equal: scheme and host case, a trailing slash, default ports.
func normalizeEndpoint(e string) string {
	u, err := url.Parse(strings.TrimSpace(e))
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(strings.TrimSpace(e), "/"))
	}
	host := strings.ToLower(u.Host)
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	return scheme + "://" + host + strings.TrimRight(u.Path, "/")
}

// checkStorage decides a create request's properties.storage. Storage that
// names this node's store is accepted. Anything else would point the broker
// at a bucket or URL a client chose, so it is refused unless the operator
// allowed per-log storage, and even then refused as unimplemented: this
// node keeps every log in its own store, and accepting the request would
// silently put the data somewhere other than asked.
func (s *Server) checkStorage(spec *storageSpec) error {
	if spec == nil || s.cfg.Storage.matches(*spec) {
		return nil
	}
	if !s.cfg.AllowPerLogStorage {
		return fmt.Errorf("%w: the request asks for %s but this node stores logs in %s, and per-log storage is disabled (wal_broker.allow_per_log_storage)",
			errPermissionDenied, spec, s.cfg.Storage)
	}
	return fmt.Errorf("%w: per-log storage (%s) is allowed by the node's configuration but not supported yet; omit properties.storage or name %s",
		errUnimplemented, spec, s.cfg.Storage)
}
