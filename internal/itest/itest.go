// Package itest gives integration tests the addresses of the real
// PostgreSQL and MinIO servers that dev/up.sh starts.
//
// A test that needs a server calls PostgresURL or S3. When the server's
// variable is unset the test is skipped, unless MORAX_REQUIRE_INTEGRATION=1
// (set by CI and by `task test`), in which case it fails: CI never passes
// with integration tests silently skipped.
package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Environment variables written by dev/up.sh into dev/.env.
const (
	EnvPostgresURL   = "MORAX_TEST_PG_URL"
	EnvS3Endpoint    = "MORAX_TEST_S3_ENDPOINT"
	EnvS3AccessKey   = "MORAX_TEST_S3_ACCESS_KEY"
	EnvS3SecretKey   = "MORAX_TEST_S3_SECRET_KEY"
	EnvS3Region      = "MORAX_TEST_S3_REGION"
	EnvRequireServer = "MORAX_REQUIRE_INTEGRATION"
)

// S3Config is how a test reaches the MinIO server.
type S3Config struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
}

// Need returns the value of the environment variable env, which dev/up.sh
// writes to dev/.env. Unset, it skips the test, or fails it under
// MORAX_REQUIRE_INTEGRATION=1.
func Need(t testing.TB, env string) string {
	t.Helper()
	return need(t, env)
}

func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if os.Getenv(EnvRequireServer) == "1" {
		t.Fatalf("%s is not set but %s=1: start the servers with dev/up.sh (or `go tool task dev:up`) and source dev/.env", env, EnvRequireServer)
	}
	t.Skipf("%s not set; run dev/up.sh and source dev/.env to run integration tests", env)
	return ""
}

// PostgresURL returns the URL of a fresh, empty database created for this
// test on the dev PostgreSQL server; it is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := need(t, EnvPostgresURL)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", base, err)
	}
	name := "t_" + strings.ToLower(RandomName(8))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database %s: %v", name, err)
	}
	admin.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	return replaceDatabase(base, cfg.Database, name)
}

// replaceDatabase swaps the database name in a postgres:// URL.
func replaceDatabase(url, old, name string) string {
	q := ""
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url, q = url[:i], url[i:]
	}
	if old != "" && strings.HasSuffix(url, "/"+old) {
		return strings.TrimSuffix(url, old) + name + q
	}
	return strings.TrimSuffix(url, "/") + "/" + name + q
}

// S3 returns how to reach the dev MinIO server. Tests create their own
// buckets (see RandomName) so they never see each other's objects.
func S3(t testing.TB) S3Config {
	t.Helper()
	c := S3Config{
		Endpoint:  need(t, EnvS3Endpoint),
		AccessKey: os.Getenv(EnvS3AccessKey),
		SecretKey: os.Getenv(EnvS3SecretKey),
		Region:    os.Getenv(EnvS3Region),
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	return c
}

// RandomName returns n random lowercase hex characters, for bucket and
// database names.
func RandomName(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
