package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Defaults for the zero values of S3Config.
const (
	// DefaultS3RequestTimeout bounds one Store call, retries included, so a
	// stalled connection cannot hold a partition's flush forever.
	DefaultS3RequestTimeout = 30 * time.Second
	// DefaultS3MaxAttempts is the number of tries per S3 request.
	DefaultS3MaxAttempts = 5
	// DefaultS3Region is used when neither the config nor the AWS environment
	// names a region; S3-compatible stores such as MinIO accept it.
	DefaultS3Region = "us-east-1"
)

// s3MaxIdleConnsPerHost must cover the uploads in flight at once (many
// partitions flushing concurrently) or every burst opens new connections,
// paying TCP and TLS setup again; net/http's default is 2.
const s3MaxIdleConnsPerHost = 128

// S3Config says how to reach an S3 or S3-compatible bucket.
type S3Config struct {
	// Bucket holds the objects; required.
	Bucket string
	// Region of the bucket; empty takes it from the AWS environment, then
	// DefaultS3Region.
	Region string
	// Endpoint overrides the S3 endpoint URL (MinIO, other S3-compatible
	// stores); empty uses AWS's.
	Endpoint string
	// AccessKeyID and SecretAccessKey are static credentials; when
	// AccessKeyID is empty the default AWS credential chain is used
	// (environment, shared config, instance or task role).
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle addresses the bucket as endpoint/bucket/key rather than
	// bucket.endpoint/key; MinIO and most self-hosted stores need it.
	PathStyle bool
	// RequestTimeout bounds each Store call including its retries; zero means
	// DefaultS3RequestTimeout and a negative value leaves only the caller's
	// context.
	RequestTimeout time.Duration
	// MaxAttempts is the number of tries per request; zero means
	// DefaultS3MaxAttempts.
	MaxAttempts int
	// Prefix is prepended to every key, to share a bucket; List strips it.
	// No separator is added: use "morax/" rather than "morax".
	Prefix string
}

// String describes the config without the secret key, so that logging a
// config by accident does not leak it.
func (c S3Config) String() string {
	secret := ""
	if c.SecretAccessKey != "" {
		secret = "<redacted>"
	}
	return fmt.Sprintf("S3Config{Bucket:%q Region:%q Endpoint:%q AccessKeyID:%q SecretAccessKey:%s PathStyle:%t RequestTimeout:%s MaxAttempts:%d Prefix:%q}",
		c.Bucket, c.Region, c.Endpoint, c.AccessKeyID, secret, c.PathStyle, c.RequestTimeout, c.MaxAttempts, c.Prefix)
}

// GoString redacts the secret for %#v as String does for %v.
func (c S3Config) GoString() string { return c.String() }

// S3 is a Store on an S3 bucket (AWS S3, MinIO, or any S3-compatible store
// that honours If-None-Match on PutObject).
//
// Put is create-only through a conditional PutObject (If-None-Match: *), so
// two writers of one key cannot overwrite each other; the server decides.
type S3 struct {
	client    *s3.Client
	transport *http.Transport
	bucket    string
	prefix    string
	region    string
	timeout   time.Duration
}

var _ Store = (*S3)(nil)

// NewS3 returns a store for cfg.Bucket. It does not contact the server; see
// EnsureBucket.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	return newS3(ctx, cfg, nil)
}

// newS3 lets tests wrap the HTTP transport to inject network faults.
func newS3(ctx context.Context, cfg S3Config, wrap func(http.RoundTripper) http.RoundTripper) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("objstore: NewS3: empty bucket name")
	}
	attempts := cfg.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultS3MaxAttempts
	}
	timeout := cfg.RequestTimeout
	if timeout == 0 {
		timeout = DefaultS3RequestTimeout
	}

	opts := []func(*config.LoadOptions) error{
		// A BuildableClient, because the config loader must be able to add a
		// custom CA bundle (AWS_CA_BUNDLE, ca_bundle) to its transport.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 2 * s3MaxIdleConnsPerHost
			tr.MaxIdleConnsPerHost = s3MaxIdleConnsPerHost
			tr.IdleConnTimeout = 90 * time.Second
		})),
		// Since service/s3 v1.73 the client adds CRC checksums (aws-chunked trailers)
		// to every upload and validates them on download; many S3-compatible
		// stores reject or mangle those, so only send them where the API
		// requires it.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				// The client-side retry quota turns a burst of transient errors
				// into failures without even trying; the broker already bounds
				// its work and pushes back on producers, so it is not needed.
				o.RateLimiter = ratelimit.None
				// S3 documents a 409 on a conditional write as "retry the
				// upload": the retry then succeeds or gets a definite 412.
				o.Retryables = append(o.Retryables, retry.RetryableErrorCode{
					Codes: map[string]struct{}{"ConditionalRequestConflict": {}},
				})
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: NewS3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultS3Region
	}
	// Take the transport, with the tuning and any CA bundle applied, into a
	// client of our own, so that Close can drop its idle connections (a
	// BuildableClient hides its live transport) and tests can wrap it.
	bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return nil, fmt.Errorf("objstore: NewS3: unexpected HTTP client %T after loading the AWS config", awsCfg.HTTPClient)
	}
	tr := bc.GetTransport()
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(tr)
	}
	awsCfg.HTTPClient = &http.Client{
		Transport: rt,
		// The SDK handles S3's redirects (wrong region) itself; following
		// one would resend a signed request to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	return &S3{
		client:    client,
		transport: tr,
		bucket:    cfg.Bucket,
		prefix:    cfg.Prefix,
		region:    awsCfg.Region,
		timeout:   timeout,
	}, nil
}

// Client returns the underlying SDK client, for tooling that needs an S3
// call the Store interface does not offer.
func (s *S3) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.bucket }

func (s *S3) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout > 0 {
		return context.WithTimeout(ctx, s.timeout)
	}
	return context.WithCancel(ctx)
}

// Put implements Store.
//
// The SDK retries a request whose response was lost (timeout, reset). If the
// lost attempt had stored the object, the retry meets 412 although the data
// is ours; so when a Put needed more than one attempt and ends with 412, the
// object is read back and Put succeeds if it holds exactly data. For an
// immutable store, an object with identical bytes is the same object.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("objstore: put: %w", err)
	}
	opCtx, cancel := s.opContext(ctx)
	defer cancel()
	var attempts atomic.Int32
	_, err := s.client.PutObject(opCtx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          bytes.NewReader(data), // seekable: retries resend it
		ContentLength: aws.Int64(int64(len(data))),
		IfNoneMatch:   aws.String("*"),
	}, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, countAttempts(&attempts))
	})
	if err == nil {
		return nil
	}
	if !isPreconditionFailed(err) {
		return fmt.Errorf("objstore: put s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	if attempts.Load() > 1 {
		got, gerr := s.Get(ctx, key, 0, -1)
		if gerr == nil && bytes.Equal(got, data) {
			return nil
		}
	}
	return fmt.Errorf("objstore: put s3://%s/%s%s: %w", s.bucket, s.prefix, key, ErrExists)
}

// countAttempts adds a middleware after the retry loop, so it runs once per
// HTTP attempt of the operation.
func countAttempts(n *atomic.Int32) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("MoraxCountAttempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("objstore: get: %w", err)
	}
	if err := checkRange(off); err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	opCtx, cancel := s.opContext(ctx)
	defer cancel() // after the body is read: the timeout covers the transfer
	fullKey := s.prefix + key

	if length == 0 {
		// No Range can ask for zero bytes; a HEAD still tells a missing key.
		_, err := s.client.HeadObject(opCtx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(fullKey)})
		if err != nil {
			if isNotFound(err) {
				return nil, fmt.Errorf("objstore: get s3://%s/%s: %w", s.bucket, fullKey, ErrNotFound)
			}
			return nil, fmt.Errorf("objstore: get s3://%s/%s: %w", s.bucket, fullKey, err)
		}
		return []byte{}, nil
	}

	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(fullKey)}
	ranged := true
	switch {
	case off == 0 && length < 0:
		// Whole object: no Range, which also reads an empty object without a 416.
		ranged = false
	case length < 0 || length > math.MaxInt64-off:
		in.Range = aws.String("bytes=" + strconv.FormatInt(off, 10) + "-")
	default:
		in.Range = aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+length-1, 10))
	}
	out, err := s.client.GetObject(opCtx, in)
	if err != nil {
		switch {
		case isNotFound(err):
			return nil, fmt.Errorf("objstore: get s3://%s/%s: %w", s.bucket, fullKey, ErrNotFound)
		case httpStatus(err) == http.StatusRequestedRangeNotSatisfiable:
			// The range starts at or past the end: there is nothing to return.
			return []byte{}, nil
		}
		return nil, fmt.Errorf("objstore: get s3://%s/%s: %w", s.bucket, fullKey, err)
	}
	defer out.Body.Close()

	body := io.Reader(out.Body)
	if ranged && out.ContentRange == nil {
		// The server ignored the Range and sent the whole object; cut the
		// range out here rather than hand back the wrong bytes.
		if _, err := io.CopyN(io.Discard, body, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("objstore: get s3://%s/%s: skip to %d: %w", s.bucket, fullKey, off, err)
		}
	}
	if length >= 0 {
		body = io.LimitReader(body, length)
	}
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 {
		if length >= 0 {
			n = min(n, length)
		}
		buf.Grow(int(n))
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("objstore: get s3://%s/%s: read body: %w", s.bucket, fullKey, err)
	}
	if buf.Len() == 0 {
		return []byte{}, nil
	}
	return buf.Bytes(), nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("objstore: delete: %w", err)
	}
	opCtx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.client.DeleteObject(opCtx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("objstore: delete s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	return nil
}

// List implements Store. Each page request gets its own timeout, so a long
// listing is bounded per request, not as a whole.
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if !prefixCanMatch(prefix) {
		return nil
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		opCtx, cancel := s.opContext(ctx)
		page, err := p.NextPage(opCtx)
		cancel()
		if err != nil {
			return fmt.Errorf("objstore: list s3://%s/%s%s: %w", s.bucket, s.prefix, prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), s.prefix)
			if !ok {
				continue
			}
			// fn's error is returned as is so the caller can recognise it.
			if err := fn(ObjectInfo{Key: key, Size: aws.ToInt64(obj.Size), LastModified: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// EnsureBucket creates the bucket if it does not exist. Dev tooling and tests
// use it; a production deployment is expected to provision its bucket.
func (s *S3) EnsureBucket(ctx context.Context) error {
	opCtx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.client.HeadBucket(opCtx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if httpStatus(err) != http.StatusNotFound {
		return fmt.Errorf("objstore: head bucket %s: %w", s.bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if s.region != "" && s.region != "us-east-1" {
		// us-east-1 is the one region that rejects an explicit constraint.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	_, err = s.client.CreateBucket(opCtx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("objstore: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Close implements Store: it drops idle connections. Requests in flight
// are not interrupted.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// httpStatus returns the HTTP status of a failed S3 call, or 0 when the
// request got no response.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isNotFound tells a missing key. A missing bucket is a 404 too, but it is
// a misconfiguration that must surface, not an absent object.
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var nsb *types.NoSuchBucket
	if errors.As(err, &nsb) || errorCode(err) == "NoSuchBucket" {
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}

// isPreconditionFailed tells the 412 of a conditional PutObject whose key
// already exists.
func isPreconditionFailed(err error) bool {
	return errorCode(err) == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed
}
