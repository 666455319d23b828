package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// clusterStatus is the body of GET /v1/cluster.
type clusterStatus struct {
	Nodes []struct {
		ID          string    `json:"id"`
		KafkaAddr   string    `json:"kafka_addr"`
		WALAddr     string    `json:"wal_addr"`
		HeartbeatAt time.Time `json:"heartbeat_at"`
	} `json:"nodes"`
	Leases []struct {
		Kind      string    `json:"kind"`
		Topic     string    `json:"topic"`
		Partition *int32    `json:"partition"`
		Slot      *int      `json:"slot"`
		Node      string    `json:"node"`
		Owner     string    `json:"owner"`
		Epoch     int64     `json:"epoch"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"leases"`
}

// runCluster implements `morax cluster status`.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "usage: morax cluster status [--endpoint URL] [--json]")
		return 2
	}
	fs := flag.NewFlagSet("morax cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr("MORAX_WAL_ENDPOINT", "http://127.0.0.1:8848"), "a node's WAL HTTP address")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(*endpoint, "/")+"/v1/cluster", nil)
	if err != nil {
		fmt.Fprintln(stderr, "morax cluster status:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "morax cluster status:", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "morax cluster status: %s: %s %v\n", resp.Status, body, err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		fmt.Fprintln(stdout)
		return 0
	}
	var st clusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintln(stderr, "morax cluster status: bad answer:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tKAFKA\tWAL\tLAST HEARTBEAT")
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\n", n.ID, n.KafkaAddr, n.WALAddr, time.Since(n.HeartbeatAt).Round(time.Millisecond))
	}
	fmt.Fprintln(w, "\nLEASE\tOWNER\tEPOCH\tEXPIRES IN")
	for _, l := range st.Leases {
		what := l.Kind
		switch {
		case l.Partition != nil:
			what = fmt.Sprintf("%s/%d", l.Topic, *l.Partition)
		case l.Slot != nil:
			what = fmt.Sprintf("group slot %d", *l.Slot)
		}
		owner := l.Node
		if owner == "" {
			owner = "(vacant)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", what, owner, l.Epoch, time.Until(l.ExpiresAt).Round(time.Millisecond))
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
