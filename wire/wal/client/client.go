package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultEndpoint is where a node listens for the WAL API by default.
const DefaultEndpoint = "http://127.0.0.1:8848"

// maxErrorBody bounds how much of an error response is read: enough for any
// API error, and a misbehaving proxy cannot make the client buffer more.
const maxErrorBody = 64 << 10

// Client talks to one Morax node's WAL API. It is safe for concurrent use;
// create one per endpoint and share it.
type Client struct {
	baseStr   string // endpoint URL without a trailing slash
	hc        *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (to set TLS,
// proxies or tracing). hc's Timeout, if set, also cuts long polls and tail
// streams: prefer contexts for deadlines.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client for the node at endpoint, an http or https URL such
// as DefaultEndpoint. It does not contact the node; see Health.
func New(endpoint string, opts ...Option) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("morax wal: endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("morax wal: endpoint %q: want http://host:port or https://host:port", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{baseStr: u.String(), userAgent: "morax-wal-go"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		// A transport of our own rather than http.DefaultTransport: the
		// default keeps only two idle connections per host, so a program
		// appending from many goroutines would open and close connections
		// constantly.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 256
		c.hc = &http.Client{Transport: tr}
	}
	return c, nil
}

// Endpoint returns the node's base URL.
func (c *Client) Endpoint() string { return c.baseStr }

// url joins the base URL with path segments (each escaped) and a query.
func (c *Client) url(q url.Values, segments ...string) string {
	var b strings.Builder
	b.WriteString(c.baseStr)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(q.Encode())
	}
	return b.String()
}

// rawJSON is a request body already encoded.
type rawJSON []byte

// newRequest builds a request with a JSON body (when in is non-nil).
func (c *Client) newRequest(ctx context.Context, method, target string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, ok := in.(rawJSON)
		if !ok {
			var err error
			if b, err = json.Marshal(in); err != nil {
				return nil, fmt.Errorf("morax wal: encode request: %w", err)
			}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("morax wal: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	return req, nil
}

// do sends a JSON request and decodes a 2xx JSON answer into out (unless
// out is nil). Error answers become *APIError or *StatusError.
func (c *Client) do(ctx context.Context, method, target string, in, out any) error {
	req, err := c.newRequest(ctx, method, target, in)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("morax wal: %s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if bd, ok := out.(bodyDecoder); ok {
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			err = bd.decodeBody(body)
		}
		if err != nil {
			return fmt.Errorf("morax wal: %s %s: %w", method, req.URL.Path, err)
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("morax wal: %s %s: decode response: %w", method, req.URL.Path, err)
	}
	return nil
}

// responseError turns a non-2xx response into *APIError when its body is a
// JSON API error, or *StatusError otherwise.
func responseError(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil && len(body) == 0 {
		return fmt.Errorf("morax wal: HTTP %d: read error body: %w", resp.StatusCode, err)
	}
	if ae := parseAPIError(body, resp.StatusCode); ae != nil {
		return ae
	}
	const show = 512
	if len(body) > show {
		body = body[:show]
	}
	return &StatusError{Status: resp.StatusCode, Body: string(body)}
}

// parseAPIError decodes an API error body, or returns nil if body is not one.
func parseAPIError(body []byte, status int) *APIError {
	var w struct {
		Code        string `json:"code"`
		Message     string `json:"message"`
		StartOffset *int64 `json:"start_offset"`
		EndOffset   *int64 `json:"end_offset"`
		// Status is sent in tail stream error events, whose HTTP status
		// (200) went out before the error happened.
		Status int `json:"status"`
	}
	if json.Unmarshal(body, &w) != nil || w.Code == "" {
		return nil
	}
	if w.Status != 0 {
		status = w.Status
	}
	ae := &APIError{Code: w.Code, Message: w.Message, Status: status, StartOffset: -1, EndOffset: -1}
	if w.StartOffset != nil {
		ae.StartOffset = *w.StartOffset
	}
	if w.EndOffset != nil {
		ae.EndOffset = *w.EndOffset
	}
	return ae
}

// durationMillis converts d to whole milliseconds, rounding a positive
// sub-millisecond wait up so it still asks for a wait.
func durationMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// isContextErr reports whether err comes from ctx ending.
func isContextErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ctx.Err()))
}
