package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// FieldError is one problem with a configuration.
type FieldError struct {
	// Path is the TOML key path, such as "storage.bucket". It is empty when
	// the problem is not about one key: a syntax error, or an environment
	// variable that names no key.
	Path string
	// Source is where the offending value came from: "file.toml:12:1" or
	// "env MORAX_PARTITION_LINGER". It is empty for default values and for
	// keys that are missing altogether.
	Source string
	// Msg says what is wrong, in words meant for the operator.
	Msg string
}

// Error formats the problem as "source: path: msg", leaving out what is
// empty.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError reports every problem found while loading or validating a
// configuration, so an operator fixes them in one pass rather than one
// restart per mistake.
type ValidationError struct {
	// Errors holds the problems in the order found: the file's (in file
	// order), then the environment's, then the checks'.
	Errors []FieldError
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each FieldError to errors.As.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// asError turns a list of problems into nil or a *ValidationError.
func asError(errs []FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: errs}
}

// sources maps a key path to where its value was set ("file:line:col" or
// "env NAME"), so a check can point at the line to fix.
type sources map[string]string

// checker collects problems; every check runs, so one call reports them all.
type checker struct {
	src  sources
	errs []FieldError
}

func (ck *checker) add(path, format string, args ...any) {
	ck.errs = append(ck.errs, FieldError{Path: path, Source: ck.src[path], Msg: fmt.Sprintf(format, args...)})
}

// addRequired reports a key that is missing because of the value of another
// key, cause; with nowhere to point for the missing key itself, the error
// points at where cause was set.
func (ck *checker) addRequired(path, cause, format string, args ...any) {
	src := ck.src[path]
	if src == "" {
		src = ck.src[cause]
	}
	ck.errs = append(ck.errs, FieldError{Path: path, Source: src, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks c and returns nil or a *ValidationError listing every
// problem, each with its key path.
func (c Config) Validate() error { return asError(c.validate(nil)) }

func (c Config) validate(src sources) []FieldError {
	ck := &checker{src: src}
	if c.DataDir == "" {
		ck.add("data_dir", "must not be empty: the node id and embedded state live there")
	}
	ck.serviceURL("server.meta.service_url", c.Server.Meta.ServiceURL)
	c.checkKafka(ck)
	c.checkWAL(ck)
	c.checkStorage(ck)
	c.checkPartition(ck)
	c.checkGroup(ck)
	c.checkCluster(ck)
	c.checkLimits(ck)
	ck.positiveDuration("server.shutdown_timeout", c.Server.ShutdownTimeout)
	if _, ok := parseLevel(c.Telemetry.Log.Level); !ok {
		ck.add("telemetry.log.level", "%q is not one of %s", c.Telemetry.Log.Level, logLevelList)
	}
	if f := c.Telemetry.Log.Format; f != LogFormatText && f != LogFormatJSON {
		ck.add("telemetry.log.format", "%q is not one of %s, %s", f, LogFormatText, LogFormatJSON)
	}
	return ck.errs
}

func (c Config) checkKafka(ck *checker) {
	k := c.Server.KafkaBroker
	const p = "server.kafka_broker."
	host, listenOK := ck.listenAddr(p+"listen_addr", k.ListenAddr)
	if k.AdvertisedAddr != "" {
		ck.advertisedAddr(p+"advertised_addr", k.AdvertisedAddr)
	} else if listenOK && unspecifiedHost(host) {
		ck.addRequired(p+"advertised_addr", p+"listen_addr", "required when %slisten_addr (%q) names no host clients can connect to", p, k.ListenAddr)
	}
	if ck.positive(p+"max_frame_bytes", k.MaxFrameBytes) {
		if k.MaxFrameBytes > math.MaxInt32 {
			// The Kafka frame length prefix is an int32.
			ck.add(p+"max_frame_bytes", "%d is more than the Kafka protocol's limit of %d", k.MaxFrameBytes, math.MaxInt32)
		} else if m := c.Partition.MaxMessageBytes; m > 0 && k.MaxFrameBytes <= m {
			ck.add(p+"max_frame_bytes", "%d must be > partition.max_message_bytes (%d), or a produce request carrying the largest allowed message could not be read", k.MaxFrameBytes, m)
		}
	}
	ck.positiveDuration(p+"idle_timeout", k.IdleTimeout)
	if k.DefaultPartitions < 1 {
		ck.add(p+"default_partitions", "must be >= 1 (got %d)", k.DefaultPartitions)
	}
	ck.positive(p+"max_inflight_requests", k.MaxInflightRequests)
	ck.connLimits(p, k.MaxConnections, k.MaxConnectionsPerIP)
	ck.positive(p+"max_inflight_response_bytes", k.MaxInflightResponseBytes)
}

// connLimits checks a listener's max_connections and
// max_connections_per_ip under prefix p.
func (ck *checker) connLimits(p string, total, perIP int64) {
	totalOK := ck.positive(p+"max_connections", total)
	if ck.positive(p+"max_connections_per_ip", perIP) && totalOK && perIP > total {
		ck.add(p+"max_connections_per_ip", "%d must be <= %smax_connections (%d)", perIP, p, total)
	}
}

func (c Config) checkWAL(ck *checker) {
	w := c.Server.WALBroker
	const p = "server.wal_broker."
	ck.listenAddr(p+"listen_addr", w.ListenAddr)
	ck.positive(p+"max_body_bytes", w.MaxBodyBytes)
	ck.positiveDuration(p+"max_wait", w.MaxWait)
	ck.positiveDuration(p+"request_timeout", w.RequestTimeout)
	ck.positiveDuration(p+"tail_heartbeat", w.TailHeartbeat)
	ck.connLimits(p, w.MaxConnections, w.MaxConnectionsPerIP)
	ck.positiveDuration(p+"read_timeout", w.ReadTimeout)
	ck.positiveDuration(p+"idle_timeout", w.IdleTimeout)
	if ck.positive(p+"read_buffer_bytes", w.ReadBufferBytes) && w.ReadBufferBytes > maxReadBuffer {
		ck.add(p+"read_buffer_bytes", "%d must be <= %d: it is allocated for every connection reading a request", w.ReadBufferBytes, maxReadBuffer)
	}
}

// maxReadBuffer bounds server.wal_broker.read_buffer_bytes; headers larger
// than 1 MiB are not a use case, and every reading connection holds one.
const maxReadBuffer = 1 << 20

func (c Config) checkStorage(ck *checker) {
	s := c.Storage
	const p = "storage."
	switch s.Scheme {
	case SchemeS3:
		if s.Bucket == "" {
			ck.addRequired(p+"bucket", p+"scheme", "required when storage.scheme = %q", SchemeS3)
		} else if msg := bucketProblem(s.Bucket); msg != "" {
			ck.add(p+"bucket", "%q %s", s.Bucket, msg)
		}
		if s.Region == "" {
			ck.addRequired(p+"region", p+"scheme", "required when storage.scheme = %q", SchemeS3)
		}
		if s.Endpoint != "" {
			ck.httpURL(p+"endpoint", s.Endpoint)
		}
		if s.AccessKeyID != "" && s.SecretAccessKey == "" {
			ck.addRequired(p+"secret_access_key", p+"access_key_id", "required when storage.access_key_id is set")
		}
		if s.AccessKeyID == "" && s.SecretAccessKey != "" {
			ck.addRequired(p+"access_key_id", p+"secret_access_key", "required when storage.secret_access_key is set")
		}
		if s.Dir != "" {
			ck.add(p+"dir", "only used when storage.scheme = %q (it is %q)", SchemeFS, SchemeS3)
		}
	case SchemeFS:
		// A node configured for S3 that lost its scheme line would
		// otherwise keep data on local disk without a word.
		s3only := []struct {
			key string
			set bool
		}{
			{"bucket", s.Bucket != ""},
			{"region", s.Region != ""},
			{"endpoint", s.Endpoint != ""},
			{"access_key_id", s.AccessKeyID != ""},
			{"secret_access_key", s.SecretAccessKey != ""},
			{"path_style", s.PathStyle},
		}
		for _, k := range s3only {
			if k.set {
				ck.add(p+k.key, "only used when storage.scheme = %q (it is %q)", SchemeS3, SchemeFS)
			}
		}
	default:
		ck.add(p+"scheme", "%q is not one of %s, %s", s.Scheme, SchemeS3, SchemeFS)
	}
	if s.Prefix != "" {
		if strings.HasPrefix(s.Prefix, "/") || strings.Contains(s.Prefix, `\`) || hasDotDot(s.Prefix) {
			ck.add(p+"prefix", "%q must be a relative key prefix without \"..\" or backslashes", s.Prefix)
		}
	}
	ck.positiveDuration(p+"request_timeout", s.RequestTimeout)
	if ck.positive(p+"object_bytes", s.ObjectBytes) && s.ObjectBytes > maxObjectBytes {
		ck.add(p+"object_bytes", "%d must be <= %d (5 GiB, the largest single PUT S3 accepts)", s.ObjectBytes, maxObjectBytes)
	}
	if s.ObjectLinger < 0 {
		ck.add(p+"object_linger", "must be >= 0 (got %s)", s.ObjectLinger)
	}
	if ck.positive(p+"max_uploads", s.MaxUploads) && s.MaxUploads > 256 {
		ck.add(p+"max_uploads", "%d must be <= 256", s.MaxUploads)
	}
}

// maxObjectBytes is S3's limit on one PUT.
const maxObjectBytes = 5 << 30

func (c Config) checkPartition(ck *checker) {
	pc := c.Partition
	const p = "partition."
	flushOK := ck.positive(p+"flush_bytes", pc.FlushBytes)
	bufOK := ck.positive(p+"max_buffer_bytes", pc.MaxBufferBytes)
	nodeOK := ck.positive(p+"node_buffer_bytes", pc.NodeBufferBytes)
	msgOK := ck.positive(p+"max_message_bytes", pc.MaxMessageBytes)
	if pc.TailCacheBytes < 0 {
		ck.add(p+"tail_cache_bytes", "must be >= 0 (got %d)", pc.TailCacheBytes)
	}
	if pc.BlockCacheBytes < 0 {
		ck.add(p+"block_cache_bytes", "must be >= 0 (got %d)", pc.BlockCacheBytes)
	}
	if flushOK && bufOK && pc.FlushBytes > pc.MaxBufferBytes {
		ck.add(p+"flush_bytes", "%d must be <= partition.max_buffer_bytes (%d), or a buffer could never fill to the flush size", pc.FlushBytes, pc.MaxBufferBytes)
	}
	if bufOK && nodeOK && pc.MaxBufferBytes > pc.NodeBufferBytes {
		ck.add(p+"max_buffer_bytes", "%d must be <= partition.node_buffer_bytes (%d)", pc.MaxBufferBytes, pc.NodeBufferBytes)
	}
	if msgOK && bufOK && pc.MaxMessageBytes > pc.MaxBufferBytes {
		ck.add(p+"max_message_bytes", "%d must be <= partition.max_buffer_bytes (%d), or a message that size could never be buffered", pc.MaxMessageBytes, pc.MaxBufferBytes)
	}
	if ck.positive(p+"max_decompressed_batch_bytes", pc.MaxDecompressedBatchBytes) {
		if msgOK && pc.MaxDecompressedBatchBytes < pc.MaxMessageBytes {
			ck.add(p+"max_decompressed_batch_bytes", "%d must be >= partition.max_message_bytes (%d), or a batch of incompressible records that size would be refused", pc.MaxDecompressedBatchBytes, pc.MaxMessageBytes)
		} else if pc.MaxDecompressedBatchBytes > math.MaxInt32 {
			// A record's length is a varint the format caps at int32.
			ck.add(p+"max_decompressed_batch_bytes", "%d is more than the record format's limit of %d", pc.MaxDecompressedBatchBytes, math.MaxInt32)
		}
	}
	ck.positiveDuration(p+"linger", pc.Linger)
	ck.positiveDuration(p+"retention_check_interval", pc.RetentionCheckInterval)
	if ck.positiveDuration(p+"orphan_min_age", pc.OrphanMinAge) {
		rt, ttl := c.Storage.RequestTimeout, c.Cluster.LeaseTTL
		if rt > 0 && ttl > 0 && pc.OrphanMinAge <= rt+ttl {
			ck.add(p+"orphan_min_age", "%s must be > storage.request_timeout + cluster.lease_ttl (%s): a younger object may belong to an upload that can still commit", pc.OrphanMinAge, rt+ttl)
		}
	}
	ck.positive(p+"max_inflight_flushes", pc.MaxInflightFlushes)
	ck.positive(p+"read_block_bytes", pc.ReadBlockBytes)
	ck.positiveDuration(p+"io_timeout", pc.IOTimeout)
	ck.positive(p+"mailbox_requests", pc.MailboxRequests)
}

func (c Config) checkGroup(ck *checker) {
	g := c.Group
	const p = "group."
	minOK := ck.positiveDuration(p+"min_session_timeout", g.MinSessionTimeout)
	maxOK := ck.positiveDuration(p+"max_session_timeout", g.MaxSessionTimeout)
	if minOK && maxOK && g.MaxSessionTimeout < g.MinSessionTimeout {
		ck.add(p+"max_session_timeout", "%s must be >= group.min_session_timeout (%s), or no session timeout is acceptable", g.MaxSessionTimeout, g.MinSessionTimeout)
	}
	if g.InitialRebalanceDelay < 0 {
		ck.add(p+"initial_rebalance_delay", "must be >= 0 (got %s)", g.InitialRebalanceDelay)
	}
	if ck.positive(p+"max_size", g.MaxSize) && g.MaxSize > math.MaxInt32 {
		// Kafka carries member counts as int32.
		ck.add(p+"max_size", "%d is more than the Kafka protocol's limit of %d", g.MaxSize, math.MaxInt32)
	}
	ck.positive(p+"max_offset_metadata_bytes", g.MaxOffsetMetadataBytes)
	ck.positiveDuration(p+"idle_timeout", g.IdleTimeout)
	ck.positive(p+"max_pending_bytes", g.MaxPendingBytes)
	ck.positive(p+"mailbox_requests", g.MailboxRequests)
}

func (c Config) checkCluster(ck *checker) {
	cl := c.Cluster
	const p = "cluster."
	if cl.NodeID != "" {
		if msg := nodeIDProblem(cl.NodeID); msg != "" {
			ck.add(p+"node_id", "%q %s", cl.NodeID, msg)
		}
	}
	ttlOK := ck.positiveDuration(p+"lease_ttl", cl.LeaseTTL)
	hbOK := ck.positiveDuration(p+"heartbeat_interval", cl.HeartbeatInterval)
	if ttlOK && hbOK && cl.LeaseTTL <= 2*cl.HeartbeatInterval {
		ck.add(p+"lease_ttl", "%s must be more than twice cluster.heartbeat_interval (%s), or one late heartbeat loses the node's leases", cl.LeaseTTL, cl.HeartbeatInterval)
	}
	ck.listenAddr(p+"remote_listen_addr", cl.RemoteListenAddr)
	ck.positive(p+"remote_max_inflight", cl.RemoteMaxInflight)
	ck.positive(p+"remote_max_inflight_bytes", cl.RemoteMaxInflightBytes)
	pollOK := ck.positiveDuration(p+"poll_interval", cl.PollInterval)
	switch r := cl.RefreshInterval; {
	case r < 0:
		ck.add(p+"refresh_interval", "must be >= 0 (got %s; 0 means half of cluster.lease_ttl)", r)
	case r > 0 && pollOK && ttlOK:
		switch {
		case r < cl.PollInterval:
			ck.add(p+"refresh_interval", "%s must be at least cluster.poll_interval (%s)", cl.RefreshInterval, cl.PollInterval)
		case cl.RefreshInterval > cl.LeaseTTL/2:
			ck.add(p+"refresh_interval", "%s must be at most half of cluster.lease_ttl (%s), or the lease expiries routes use go stale", cl.RefreshInterval, cl.LeaseTTL)
		}
	}
	ck.positive(p+"max_moves_per_poll", cl.MaxMovesPerPoll)
	if a := c.Telemetry.PprofListenAddr; a != "" {
		ck.listenAddr("telemetry.pprof_listen_addr", a)
	}
}

func (c Config) checkLimits(ck *checker) {
	l := c.Limits
	const p = "limits."
	perTopicOK := ck.positive(p+"max_partitions_per_topic", int64(l.MaxPartitionsPerTopic))
	clusterOK := ck.positive(p+"max_cluster_partitions", l.MaxClusterPartitions)
	ck.positive(p+"max_node_partitions", l.MaxNodePartitions)
	ck.positive(p+"max_topics_per_request", l.MaxTopicsPerRequest)
	ck.positive(p+"max_auto_create_per_request", l.MaxAutoCreatePerRequest)
	ck.positive(p+"create_rate", l.CreateRate)
	ck.positive(p+"create_burst", l.CreateBurst)
	ck.positive(p+"partition_starts_per_poll", l.PartitionStartsPerPoll)
	if perTopicOK && clusterOK && int64(l.MaxPartitionsPerTopic) > l.MaxClusterPartitions {
		ck.add(p+"max_partitions_per_topic", "%d must be <= limits.max_cluster_partitions (%d), or a topic that size could never be created", l.MaxPartitionsPerTopic, l.MaxClusterPartitions)
	}
	if d := c.Server.KafkaBroker.DefaultPartitions; perTopicOK && d > l.MaxPartitionsPerTopic {
		ck.add(p+"max_partitions_per_topic", "%d must be >= server.kafka_broker.default_partitions (%d), or topics created with the default would be refused", l.MaxPartitionsPerTopic, d)
	}
}

func (ck *checker) positive(path string, n int64) bool {
	if n <= 0 {
		ck.add(path, "must be > 0 (got %d)", n)
		return false
	}
	return true
}

func (ck *checker) positiveDuration(path string, d Duration) bool {
	if d <= 0 {
		ck.add(path, "must be > 0 (got %s)", d)
		return false
	}
	return true
}

// listenAddr checks a host:port to listen on. An empty host (all
// interfaces) and port 0 (any free port, for tests) are allowed.
func (ck *checker) listenAddr(path, addr string) (host string, ok bool) {
	if addr == "" {
		ck.add(path, "required (host:port)")
		return "", false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		ck.add(path, "%q: %s", addr, addrProblem(err))
		return "", false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		ck.add(path, "%q: port %q is not a number from 0 to 65535", addr, port)
		return "", false
	}
	return host, true
}

// advertisedAddr checks a host:port that clients will dial, so it needs a
// real host and port.
func (ck *checker) advertisedAddr(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		ck.add(path, "%q: %s", addr, addrProblem(err))
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		ck.add(path, "%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if unspecifiedHost(host) {
		ck.add(path, "%q: names no host clients can connect to", addr)
	}
}

// addrProblem keeps the reason from net.SplitHostPort without its repetition
// of the address.
func addrProblem(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// unspecifiedHost reports whether host means "all interfaces", which a
// listener accepts but a client cannot dial.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func (ck *checker) serviceURL(path string, u SecretURL) {
	if u == "" {
		return
	}
	p, err := url.Parse(u.Reveal())
	if err != nil {
		// url.Error quotes the whole URL and an EscapeError quotes part of
		// it, either of which may be the password, so the cause is dropped.
		ck.add(path, "not a valid URL (percent-encode special characters in the user name and password)")
		return
	}
	if p.Scheme != "postgres" && p.Scheme != "postgresql" {
		ck.add(path, "%s: must be a postgres:// or postgresql:// URL", u)
		return
	}
	if p.Host == "" && p.Query().Get("host") == "" {
		ck.add(path, "%s: names no host", u)
	}
}

func (ck *checker) httpURL(path, s string) {
	p, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		ck.add(path, "%q is not a valid URL: %v", s, err)
		return
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		ck.add(path, "%q must be an http:// or https:// URL", s)
		return
	}
	if p.Host == "" {
		ck.add(path, "%q names no host", s)
	}
}

// bucketProblem applies the S3 bucket naming rules that catch real mistakes
// (upper case, underscores, length) so they fail at startup rather than on
// the first flush; it returns "" for an acceptable name.
func bucketProblem(b string) string {
	if len(b) < 3 || len(b) > 63 {
		return "must be 3 to 63 characters long"
	}
	for _, r := range b {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '.' {
			return "may hold only lower-case letters, digits, '-' and '.'"
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return "must start and end with a letter or digit"
	}
	return ""
}

// nodeIDProblem keeps node ids to characters that are safe in object keys,
// SQL text, metrics labels and file names; it returns "" for an acceptable id.
func nodeIDProblem(id string) string {
	if len(id) > 64 {
		return "is longer than 64 characters"
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return "may hold only letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func hasDotDot(prefix string) bool {
	for seg := range strings.SplitSeq(prefix, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}
