package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Storage names where a log's objects should live, as the original client
// sent it on create. A node accepts it when it matches the node's own
// storage (empty fields match anything); different storage is refused
// unless the node's configuration allows per-log storage. The credentials
// are sent for compatibility with the original protocol; the node uses its
// own and never stores or echoes these.
type Storage struct {
	Scheme          string `json:"scheme,omitempty"`
	Bucket          string `json:"bucket,omitempty"`
	Region          string `json:"region,omitempty"`
	Endpoint        string `json:"endpoint,omitempty"`
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
}

// String describes the storage without its secret key, so printing a
// Storage by accident does not leak it.
func (s Storage) String() string {
	secret := ""
	if s.SecretAccessKey != "" {
		secret = "<redacted>"
	}
	return fmt.Sprintf("Storage{Scheme:%q Bucket:%q Region:%q Endpoint:%q AccessKeyID:%q SecretAccessKey:%s}",
		s.Scheme, s.Bucket, s.Region, s.Endpoint, s.AccessKeyID, secret)
}

// GoString redacts the secret for %#v as String does for %v.
func (s Storage) GoString() string { return s.String() }

// CreateOptions are the optional settings of Create.
type CreateOptions struct {
	// Storage, when set, is sent as properties.storage (see Storage).
	Storage *Storage
	// Config holds log settings with Kafka topic config names, e.g.
	// "retention.ms"; unknown keys are refused.
	Config map[string]string
}

type createProperties struct {
	Storage *Storage          `json:"storage,omitempty"`
	Config  map[string]string `json:"config,omitempty"`
}

type createRequest struct {
	Name       string            `json:"name"`
	Properties *createProperties `json:"properties,omitempty"`
}

// Create creates a log. It fails with CodeAlreadyExists if the name is
// taken. Names use Kafka's topic alphabet: letters, digits, '.', '_', '-'.
func (c *Client) Create(ctx context.Context, name string, opts *CreateOptions) error {
	req := createRequest{Name: name}
	if opts != nil && (opts.Storage != nil || len(opts.Config) > 0) {
		req.Properties = &createProperties{Storage: opts.Storage, Config: opts.Config}
	}
	var out struct {
		Name string `json:"name"`
	}
	return c.do(ctx, http.MethodPost, c.url(nil, "v1", "create"), req, &out)
}

// LogInfo describes a log (or a Kafka topic partition).
type LogInfo struct {
	Name string `json:"name"`
	// Kind is "wal" for logs created through this API and "kafka" for
	// topics created through Kafka.
	Kind       string `json:"kind"`
	Partitions int32  `json:"partitions"`
	// Partition, StartOffset, EndOffset and Bytes are filled by Describe
	// only: the partition described, its first readable offset, the offset
	// the next entry will get, and the bytes its live segments hold.
	Partition   int32     `json:"partition"`
	StartOffset int64     `json:"start_offset"`
	EndOffset   int64     `json:"end_offset"`
	Bytes       int64     `json:"bytes"`
	CreatedAt   time.Time `json:"created_at"`
}

// Describe returns a log's bounds, size and creation time. For a Kafka
// topic it describes partition 0; see DescribePartition.
func (c *Client) Describe(ctx context.Context, name string) (LogInfo, error) {
	return c.DescribePartition(ctx, name, 0)
}

// DescribePartition describes one partition of a Kafka topic (a WAL log
// has only partition 0).
func (c *Client) DescribePartition(ctx context.Context, name string, partition int32) (LogInfo, error) {
	var q url.Values
	if partition != 0 {
		q = url.Values{"partition": {strconv.Itoa(int(partition))}}
	}
	var out LogInfo
	err := c.do(ctx, http.MethodGet, c.url(q, "v1", "logs", name), nil, &out)
	return out, err
}

// Delete deletes a log and all its entries. Kafka topics cannot be
// deleted through this API.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.url(nil, "v1", "logs", name), nil, nil)
}

// Trim makes offset the log's first readable offset, dropping the entries
// below it (an offset past the end is refused). It returns the new start.
func (c *Client) Trim(ctx context.Context, name string, offset int64) (int64, error) {
	req := struct {
		Name   string `json:"name"`
		Offset int64  `json:"offset"`
	}{name, offset}
	var out struct {
		StartOffset int64 `json:"start_offset"`
	}
	err := c.do(ctx, http.MethodPost, c.url(nil, "v1", "trim"), req, &out)
	return out.StartOffset, err
}

// ListOptions filter and page List.
type ListOptions struct {
	// Prefix keeps only names starting with it.
	Prefix string
	// After starts the listing after this name (ListPage.Next of the
	// previous page).
	After string
	// Limit is the page size; 0 takes the server's default (100).
	Limit int
	// IncludeKafka lists Kafka topics too; by default only WAL logs.
	IncludeKafka bool
}

// ListPage is one page of List.
type ListPage struct {
	// Logs are in name order, without offsets (use Describe).
	Logs []LogInfo `json:"logs"`
	// Next is the After of the next page, or "" if this was the last.
	Next string `json:"next"`
}

// List returns one page of logs in name order.
func (c *Client) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	q := url.Values{}
	if opts.Prefix != "" {
		q.Set("prefix", opts.Prefix)
	}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.IncludeKafka {
		q.Set("kind", "all")
	}
	var out ListPage
	err := c.do(ctx, http.MethodGet, c.url(q, "v1", "logs"), nil, &out)
	return out, err
}

// Logs iterates over every log List returns, page after page. It stops
// after yielding the first error.
func (c *Client) Logs(ctx context.Context, opts ListOptions) iter.Seq2[LogInfo, error] {
	return func(yield func(LogInfo, error) bool) {
		for {
			page, err := c.List(ctx, opts)
			if err != nil {
				yield(LogInfo{}, err)
				return
			}
			for _, l := range page.Logs {
				if !yield(l, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			opts.After = page.Next
		}
	}
}
