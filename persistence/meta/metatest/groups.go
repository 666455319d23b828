package metatest

import (
	"bytes"
	"context"
	"sort"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

func testOffsets(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{
		{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 2, Metadata: "m-b0", CommittedAt: at},
		{Topic: "a", Partition: 1, Offset: 11, LeaderEpoch: -1},
		{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 1, Metadata: "m-a0"},
	}, meta.Fence{}), "commit")
	must(t, s.CommitOffsets(ctx, "g2", []meta.OffsetCommit{{Topic: "a", Partition: 0, Offset: 99}}, meta.Fence{}), "commit g2")
	must(t, s.CommitOffsets(ctx, "g1", nil, meta.Fence{}), "commit nothing")

	fetch := func(group string, topics []string) []meta.OffsetCommit {
		t.Helper()
		os, err := s.FetchOffsets(ctx, group, topics)
		must(t, err, "fetch")
		sort.Slice(os, func(i, j int) bool {
			if os[i].Topic != os[j].Topic {
				return os[i].Topic < os[j].Topic
			}
			return os[i].Partition < os[j].Partition
		})
		return os
	}
	all := fetch("g1", nil)
	if len(all) != 3 {
		t.Fatalf("all offsets: %+v", all)
	}
	if o := all[0]; o.Topic != "a" || o.Partition != 0 || o.Offset != 10 || o.LeaderEpoch != 1 || o.Metadata != "m-a0" ||
		o.CommittedAt.IsZero() || time.Since(o.CommittedAt) > time.Hour {
		t.Fatalf("offset a/0: %+v", o)
	}
	if o := all[1]; o.Topic != "a" || o.Partition != 1 || o.Offset != 11 || o.LeaderEpoch != -1 || o.Metadata != "" {
		t.Fatalf("offset a/1: %+v", o)
	}
	if o := all[2]; o.Topic != "b" || o.Offset != 5 || !o.CommittedAt.Equal(at) || o.Metadata != "m-b0" {
		t.Fatalf("offset b/0: %+v", o)
	}
	if got := fetch("g1", []string{"a"}); len(got) != 2 || got[0].Topic != "a" || got[1].Topic != "a" {
		t.Fatalf("offsets of a: %+v", got)
	}
	if got := fetch("g1", []string{"b", "zzz"}); len(got) != 1 || got[0].Topic != "b" {
		t.Fatalf("offsets of b: %+v", got)
	}
	if got := fetch("g1", []string{}); len(got) != 0 {
		t.Fatalf("offsets of no topics: %+v", got)
	}
	if got := fetch("nobody", nil); len(got) != 0 {
		t.Fatalf("offsets of an unknown group: %+v", got)
	}

	// Commit overwrites.
	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{{Topic: "a", Partition: 0, Offset: 20, Metadata: "x"}}, meta.Fence{}), "overwrite")
	if got := fetch("g1", []string{"a"}); got[0].Offset != 20 || got[0].Metadata != "x" {
		t.Fatalf("after overwrite: %+v", got)
	}
	// The same partition twice in one commit: the last one wins.
	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{
		{Topic: "a", Partition: 1, Offset: 30}, {Topic: "a", Partition: 1, Offset: 31},
	}, meta.Fence{}), "duplicate in one commit")
	if got := fetch("g1", []string{"a"}); got[1].Offset != 31 {
		t.Fatalf("after duplicate commit: %+v", got)
	}

	must(t, s.DeleteOffsets(ctx, "g1", "a", []int32{1, 7}), "delete")
	if got := fetch("g1", nil); len(got) != 2 || got[0].Partition != 0 || got[1].Topic != "b" {
		t.Fatalf("after delete: %+v", got)
	}
	must(t, s.DeleteOffsets(ctx, "g1", "a", nil), "delete nothing")
	if got := fetch("g2", nil); len(got) != 1 || got[0].Offset != 99 {
		t.Fatalf("other group touched: %+v", got)
	}
}

func testGroups(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g2", ProtocolType: "consumer", State: []byte{1, 2, 3}, UpdatedAt: at}, meta.Fence{}), "save g2")
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g1", ProtocolType: "consumer", State: []byte("v1")}, meta.Fence{}), "save g1")
	g, err := s.Group(ctx, "g1")
	must(t, err, "load")
	if g.Name != "g1" || g.ProtocolType != "consumer" || string(g.State) != "v1" || g.UpdatedAt.IsZero() {
		t.Fatalf("group: %+v", g)
	}
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g1", ProtocolType: "connect", State: []byte("v2")}, meta.Fence{}), "update g1")
	g, err = s.Group(ctx, "g1")
	must(t, err, "load")
	if g.ProtocolType != "connect" || string(g.State) != "v2" {
		t.Fatalf("updated group: %+v", g)
	}
	gs, err := s.ListGroups(ctx)
	must(t, err, "list")
	if len(gs) != 2 || gs[0].Name != "g1" || gs[1].Name != "g2" || !bytes.Equal(gs[1].State, []byte{1, 2, 3}) ||
		!gs[1].UpdatedAt.Equal(at) {
		t.Fatalf("groups: %+v", gs)
	}
	_, err = s.Group(ctx, "missing")
	wantErr(t, err, meta.ErrNotFound, "load missing")

	// An empty state is stored as empty.
	must(t, s.SaveGroup(ctx, meta.Group{Name: "empty"}, meta.Fence{}), "save empty")
	g, err = s.Group(ctx, "empty")
	must(t, err, "load empty")
	if len(g.State) != 0 {
		t.Fatalf("empty group: %+v", g)
	}

	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{{Topic: "a", Offset: 1}}, meta.Fence{}), "commit g1")
	must(t, s.CommitOffsets(ctx, "g2", []meta.OffsetCommit{{Topic: "a", Offset: 2}}, meta.Fence{}), "commit g2")
	must(t, s.DeleteGroup(ctx, "g1"), "delete g1")
	_, err = s.Group(ctx, "g1")
	wantErr(t, err, meta.ErrNotFound, "load deleted")
	if os, err := s.FetchOffsets(ctx, "g1", nil); err != nil || len(os) != 0 {
		t.Fatalf("offsets of deleted group: %v, %v", os, err)
	}
	if os, err := s.FetchOffsets(ctx, "g2", nil); err != nil || len(os) != 1 {
		t.Fatalf("offsets of the other group: %v, %v", os, err)
	}
	wantErr(t, s.DeleteGroup(ctx, "g1"), meta.ErrNotFound, "delete again")

	// A group with offsets but no stored state can still be deleted.
	must(t, s.CommitOffsets(ctx, "bare", []meta.OffsetCommit{{Topic: "a", Offset: 1}}, meta.Fence{}), "commit bare")
	must(t, s.DeleteGroup(ctx, "bare"), "delete bare")
	if os, err := s.FetchOffsets(ctx, "bare", nil); err != nil || len(os) != 0 {
		t.Fatalf("offsets of deleted bare group: %v, %v", os, err)
	}
	gs, err = s.ListGroups(ctx)
	must(t, err, "list")
	if len(gs) != 2 || gs[0].Name != "empty" || gs[1].Name != "g2" {
		t.Fatalf("groups after delete: %+v", gs)
	}
}

// testGroupWritesFenced checks that fenced group writes apply only while
// the fence's lease is held at its epoch: after a release, a takeover or
// with a wrong epoch they fail with ErrFenced and store nothing.
func testGroupWritesFenced(t *testing.T, s meta.Store) {
	ctx := context.Background()
	res := meta.SlotResource(7)
	l, err := s.AcquireLease(ctx, res, "n1@a", time.Minute)
	must(t, err, "acquire")
	fence := meta.Fence{Resource: res, Owner: "n1@a", Epoch: l.Epoch}
	must(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 5}}, fence), "fenced commit while held")
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g", ProtocolType: "consumer", State: []byte("s1")}, fence), "fenced save while held")

	stale := []meta.Fence{
		{Resource: res, Owner: "n1@a", Epoch: l.Epoch + 1},              // wrong epoch
		{Resource: res, Owner: "n2@b", Epoch: l.Epoch},                  // wrong owner
		{Resource: meta.SlotResource(8), Owner: "n1@a", Epoch: l.Epoch}, // no such lease
	}
	for _, f := range stale {
		wantErr(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 99}}, f), meta.ErrFenced, "commit with "+f.Owner)
		wantErr(t, s.SaveGroup(ctx, meta.Group{Name: "g", State: []byte("stale")}, f), meta.ErrFenced, "save with "+f.Owner)
	}

	// Released and taken over: the old holder's writes are refused.
	must(t, s.ReleaseLease(ctx, res, "n1@a", l.Epoch), "release")
	wantErr(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 99}}, fence), meta.ErrFenced, "commit after release")
	l2, err := s.AcquireLease(ctx, res, "n2@b", time.Minute)
	must(t, err, "take over")
	wantErr(t, s.SaveGroup(ctx, meta.Group{Name: "g", State: []byte("stale")}, fence), meta.ErrFenced, "save after takeover")
	must(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 6}},
		meta.Fence{Resource: res, Owner: "n2@b", Epoch: l2.Epoch}), "new holder's commit")

	os, err := s.FetchOffsets(ctx, "g", nil)
	must(t, err, "fetch")
	if len(os) != 1 || os[0].Offset != 6 {
		t.Fatalf("offsets after fenced writes: %+v", os)
	}
	g, err := s.Group(ctx, "g")
	must(t, err, "load")
	if string(g.State) != "s1" {
		t.Fatalf("group state after fenced writes: %q", g.State)
	}
}
