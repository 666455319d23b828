package client

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Health checks once that the node answers GET /v1/health with 200 "OK".
func (c *Client) Health(ctx context.Context) error {
	req, err := c.newRequest(ctx, http.MethodGet, c.url(nil, "v1", "health"), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("morax wal: health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return fmt.Errorf("morax wal: health: read body: %w", err)
	}
	if strings.TrimSpace(string(body)) != "OK" {
		return &StatusError{Status: resp.StatusCode, Body: string(body)}
	}
	return nil
}

// Backoff says how WaitHealthy retries. The zero value retries until the
// context ends, starting at 100ms and doubling up to 5s, with jitter.
type Backoff struct {
	// Initial is the first pause; default 100ms.
	Initial time.Duration
	// Max caps the pause; default 5s.
	Max time.Duration
	// Attempts is how many health checks to make at most; 0 means no limit
	// other than the context.
	Attempts int
}

// WaitHealthy calls Health until it succeeds, the attempts run out or ctx
// ends, pausing between tries as b says. It returns nil once the node is
// healthy, or the last error (with ctx's error if that is what stopped it).
// Use it at start-up, when the node may still be starting.
func (c *Client) WaitHealthy(ctx context.Context, b Backoff) error {
	pause := b.Initial
	if pause <= 0 {
		pause = 100 * time.Millisecond
	}
	limit := b.Max
	if limit <= 0 {
		limit = 5 * time.Second
	}
	var last error
	for attempt := 1; ; attempt++ {
		last = c.Health(ctx)
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("morax wal: node not healthy: %w (last error: %w)", ctx.Err(), last)
		}
		if b.Attempts > 0 && attempt >= b.Attempts {
			return fmt.Errorf("morax wal: node not healthy after %d attempts: %w", attempt, last)
		}
		// Half fixed, half random, so many clients restarting together do
		// not retry in lockstep.
		d := pause/2 + rand.N(pause/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("morax wal: node not healthy: %w (last error: %w)", ctx.Err(), last)
		case <-t.C:
		}
		pause = min(pause*2, limit)
	}
}
