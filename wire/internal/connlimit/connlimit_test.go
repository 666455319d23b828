package connlimit

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLimits: connections over the total or per-IP bound are closed on
// accept and counted by reason, a closed connection frees its slot (once,
// however often it is closed), and refusals are logged once per LogEvery,
// not once each.
func TestLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"reason"})
	l := New(ln, Config{Name: "test", MaxConnections: 3, MaxPerIP: 2, Refused: refused, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c without a word.
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(make([]byte, 1))
		return n == 0 && err != nil && !strings.Contains(err.Error(), "timeout")
	}
	dial("127.0.0.1")
	dial("127.0.0.1")
	first := <-accepted
	<-accepted
	if over := dial("127.0.0.1"); !closedByServer(over) {
		t.Fatal("a third connection from one address was not closed")
	}
	dial("127.0.0.2")
	<-accepted
	if over := dial("127.0.0.3"); !closedByServer(over) {
		t.Fatal("a fourth connection was not closed")
	}
	if got := testutil.ToFloat64(refused.WithLabelValues(ReasonPerIP)); got != 1 {
		t.Errorf("per-IP refusals %v, want 1", got)
	}
	if got := testutil.ToFloat64(refused.WithLabelValues(ReasonTotal)); got != 1 {
		t.Errorf("total refusals %v, want 1", got)
	}
	if got := strings.Count(logs.String(), "refusing connections"); got != 1 {
		t.Errorf("%d log lines for 2 refusals within %s, want 1:\n%s", got, LogEvery, logs.String())
	}
	if l.Open() != 3 {
		t.Errorf("Open() = %d, want 3", l.Open())
	}
	// Closing twice frees one slot; a new connection from the same
	// address is then accepted.
	_ = first.Close()
	_ = first.Close()
	if l.Open() != 2 {
		t.Errorf("Open() = %d after a close, want 2", l.Open())
	}
	b := dial("127.0.0.1")
	third := <-accepted
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(third, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("accepted connection reads %q, %v", buf, err)
	}
}
