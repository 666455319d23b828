package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/morax-dev/morax/wire/wal/waltest"
)

// lockedBuffer is a bytes.Buffer a running command and the test can share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runWALTest runs `morax wal args...` against the node and returns its exit
// status, stdout and stderr.
func runWALTest(t *testing.T, n *waltest.Node, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut lockedBuffer
	code := runWAL(t.Context(), append([]string{"--endpoint", n.URL}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestWALCommand(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	check := func(wantCode int, wantOut string, stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := runWALTest(t, n, stdin, args...)
		if code != wantCode || !strings.Contains(out, wantOut) {
			t.Errorf("morax wal %s: exit %d, stdout %q, stderr %q; want exit %d and stdout containing %q",
				strings.Join(args, " "), code, out, errOut, wantCode, wantOut)
		}
		return out + errOut
	}

	check(0, "OK", "", "health")
	check(0, "created log db_log", "", "create", "db_log")
	check(0, `{"name":"other"}`, "", "create", "other", "--json", "--config", "retention.ms=60000")
	if msg := check(1, "", "", "create", "db_log"); !strings.Contains(msg, "AlreadyExists") {
		t.Errorf("create of an existing log says %q", msg)
	}
	check(0, "appended 3 entries to db_log at offsets 0 to 2", "", "append", "db_log", "a", "b", "c")
	check(0, "appended 3 entries to db_log at offsets 3 to 5", "d\ne\r\n-f", "append", "db_log")
	check(0, `{"start":6,"end":8}`, "g\nh\n", "append", "--json", "db_log", "--batch", "1")
	check(0, "at offsets 8 to 8", "", "append", "db_log", "--", "-dash")
	check(0, "at offsets 9 to 9", "", "append", "db_log", "--base64", "AAH/")
	if msg := check(1, "", "", "append", "db_log", "--expected-offset", "3", "late"); !strings.Contains(msg, "Conflict") {
		t.Errorf("conditional append mismatch says %q", msg)
	}
	check(0, "at offsets 10 to 10", "", "append", "db_log", "--expected-offset", "10", "fenced")

	out := check(0, "0\ta\n1\tb\n2\tc\n3\td\n4\te\n5\t-f\n6\tg\n7\th\n8\t-dash\n9\tbase64:AAH/\n10\tfenced\n", "", "read", "db_log")
	if !strings.Contains(out, "next offset 11, log ends at 11") {
		t.Errorf("read summary missing: %q", out)
	}
	check(0, "4\te\n5\t-f\n", "", "read", "db_log", "--offset", "4", "--max-entries", "2")
	_, js, _ := runWALTest(t, n, "", "read", "db_log", "--offset", "9", "--json")
	var res struct {
		Entries []struct {
			Index int64  `json:"index"`
			Data  []byte `json:"data"`
		} `json:"entries"`
		EndOffset int64 `json:"end_offset"`
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || len(res.Entries) != 2 || !bytes.Equal(res.Entries[0].Data, []byte{0, 1, 0xff}) || res.EndOffset != 11 {
		t.Errorf("read --json: %q (%v)", js, err)
	}

	check(0, "end offset:    11", "", "describe", "db_log")
	check(0, `"end_offset":11`, "", "--json", "describe", "db_log")
	out = check(0, "db_log", "", "list")
	if !strings.Contains(out, "other") || !strings.HasPrefix(out, "NAME") {
		t.Errorf("list: %q", out)
	}
	check(0, `[{"name":"other"`, "", "list", "--prefix", "oth", "--json")

	// Tail prints what is there and what comes, until interrupted.
	ctx, cancel := context.WithCancel(t.Context())
	var tailOut, tailErr lockedBuffer
	done := make(chan int)
	go func() {
		done <- runWAL(ctx, []string{"tail", "db_log", "--offset", "9", "--endpoint", n.URL}, strings.NewReader(""), &tailOut, &tailErr)
	}()
	check(0, "at offsets 11 to 11", "", "append", "db_log", "live")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tailOut.String(), "11\tlive") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 || tailOut.String() != "9\tbase64:AAH/\n10\tfenced\n11\tlive\n" {
		t.Errorf("tail: exit %d, stdout %q, stderr %q", code, tailOut.String(), tailErr.String())
	}

	check(0, "log db_log now starts at offset 5", "", "trim", "db_log", "5")
	if msg := check(1, "", "", "read", "db_log", "--offset", "0"); !strings.Contains(msg, "OffsetOutOfRange") {
		t.Errorf("read below the start says %q", msg)
	}
	check(0, "deleted log db_log", "", "delete", "db_log")
	if msg := check(1, "", "", "describe", "db_log"); !strings.Contains(msg, "NotFound") {
		t.Errorf("describe of a deleted log says %q", msg)
	}
}

func TestWALCommandUsage(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"create"}, 2, "want NAME"},
		{[]string{"create", "a", "b"}, 2, "want NAME"},
		{[]string{"trim", "log", "minus"}, 2, "non-negative"},
		{[]string{"read", "log", "--offset", "x"}, 2, "invalid value"},
		{[]string{"--endpoint", "not a url", "health"}, 2, "endpoint"},
	} {
		var out, errOut lockedBuffer
		code := runWAL(t.Context(), c.args, strings.NewReader(""), &out, &errOut)
		if code != c.code || !strings.Contains(errOut.String(), c.err) {
			t.Errorf("morax wal %v: exit %d stderr %q; want %d and %q", c.args, code, errOut.String(), c.code, c.err)
		}
	}
	var out, errOut lockedBuffer
	if code := runWAL(t.Context(), []string{"--help"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Commands:") {
		t.Errorf("--help: %d %q", code, out.String())
	}
	// A node that is not there is a failure, not a usage error.
	if code, _, errOut := runWALTest(t, &waltest.Node{URL: "http://127.0.0.1:1"}, "", "health"); code != 1 || errOut == "" {
		t.Errorf("health of a dead endpoint: %d %q", code, errOut)
	}
	_ = n
}
