package faults

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a TCP proxy on a loopback port in front of one backend. Nodes
// are configured with its address instead of the backend's, so the test
// can slow, cut or refuse their connections while the backend itself runs
// on.
type Proxy struct {
	p  *toxiproxy.Proxy
	mu sync.Mutex
	// toxics are the names of the toxics in place, removed by Heal.
	toxics []string
}

// The toxiproxy server object only carries the proxies' logger and
// metrics; one is shared by every proxy of the test binary, and its HTTP
// API is never started (the tests drive the proxies as objects).
var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
)

func apiServer() *toxiproxy.ApiServer {
	serverOnce.Do(func() {
		// Quiet: the proxies log every connection at info level, which
		// would drown the test output.
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.New(io.Discard))
	})
	return server
}

// NewProxy starts a proxy named name on a free loopback port forwarding to
// upstream (host:port).
func NewProxy(name, upstream string) (*Proxy, error) {
	p := toxiproxy.NewProxy(apiServer(), name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start proxy %s to %s: %w", name, upstream, err)
	}
	return &Proxy{p: p}, nil
}

// Addr is the loopback address the proxy listens on (host:port). It stays
// the same across Disable and Enable.
func (p *Proxy) Addr() string { return p.p.Listen }

// Name is the proxy's name, as given to NewProxy.
func (p *Proxy) Name() string { return p.p.Name }

func (p *Proxy) add(typ, stream string, attrs string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := fmt.Sprintf("%s_%s_%d", typ, stream, len(p.toxics))
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		return fmt.Errorf("proxy %s: add toxic %s: %w", p.Name(), js, err)
	}
	p.toxics = append(p.toxics, name)
	return nil
}

// Latency delays the data in both directions by latency (plus up to
// jitter), as a slow or distant backend would.
func (p *Proxy) Latency(latency, jitter time.Duration) error {
	attrs := fmt.Sprintf(`{"latency":%d,"jitter":%d}`, latency.Milliseconds(), jitter.Milliseconds())
	if err := p.add("latency", "downstream", attrs); err != nil {
		return err
	}
	return p.add("latency", "upstream", attrs)
}

// Blackhole stops all data in both directions without closing anything:
// connections (old and new) hang, as behind a partitioned network. Only
// the clients' own timeouts end them.
func (p *Proxy) Blackhole() error {
	// timeout 0: hold the data forever, never close.
	if err := p.add("timeout", "upstream", `{"timeout":0}`); err != nil {
		return err
	}
	return p.add("timeout", "downstream", `{"timeout":0}`)
}

// ResetPeer answers every connection's traffic with a TCP reset after
// after, as a backend that crashes mid-request would.
func (p *Proxy) ResetPeer(after time.Duration) error {
	return p.add("reset_peer", "upstream", fmt.Sprintf(`{"timeout":%d}`, after.Milliseconds()))
}

// Bandwidth limits the data from the backend to kbps KB/s.
func (p *Proxy) Bandwidth(kbps int64) error {
	return p.add("bandwidth", "downstream", fmt.Sprintf(`{"rate":%d}`, kbps))
}

// Disable closes the listener and every connection: the backend looks
// down (connection refused) until Enable.
func (p *Proxy) Disable() { p.p.Stop() }

// Enable listens again on the same address after Disable.
func (p *Proxy) Enable() error {
	p.p.Lock()
	enabled := p.p.Enabled
	p.p.Unlock()
	if enabled {
		return nil
	}
	if err := p.p.Start(); err != nil {
		return fmt.Errorf("re-enable proxy %s on %s: %w", p.Name(), p.Addr(), err)
	}
	return nil
}

// Heal removes every toxic and re-enables the proxy: the network is whole
// again. Connections a blackhole held stay held until their clients give
// up on them; new ones pass.
func (p *Proxy) Heal() error {
	p.mu.Lock()
	names := p.toxics
	p.toxics = nil
	p.mu.Unlock()
	for _, n := range names {
		if err := p.p.Toxics.RemoveToxic(context.Background(), n); err != nil {
			return fmt.Errorf("proxy %s: remove toxic %s: %w", p.Name(), n, err)
		}
	}
	return p.Enable()
}

// Close stops the proxy for good.
func (p *Proxy) Close() { p.p.Stop() }
