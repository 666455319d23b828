package actors_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// groupEnv is a broker on the embedded stores with a group coordinator.
type groupEnv struct {
	t     *testing.T
	b     *actors.Broker
	store meta.Store
	g     *actors.Groups
	opts  actors.GroupOptions
	// bopts are the broker's options, with its metrics registry.
	bopts actors.Options
}

// fastGroupOptions let tests use short session timeouts and skip the
// initial rebalance delay.
func fastGroupOptions() actors.GroupOptions {
	return actors.GroupOptions{
		MinSessionTimeout:     10 * time.Millisecond,
		InitialRebalanceDelay: -1,
	}
}

func newGroupEnv(t *testing.T, opts actors.GroupOptions) *groupEnv {
	t.Helper()
	dir := t.TempDir()
	store, err := litemeta.Open(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatalf("open litemeta: %v", err)
	}
	objects, err := objstore.NewFS(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatalf("open fs objects: %v", err)
	}
	bopts := actors.Options{IOTimeout: 10 * time.Second, Metrics: prometheus.NewRegistry()}
	b, err := actors.New(bopts, store, objects)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	e := &groupEnv{t: t, b: b, store: store, opts: opts, bopts: bopts}
	e.g = actors.NewGroups(b, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.g.Close(ctx)
		_ = b.Close(ctx)
		_ = objects.Close()
		_ = store.Close()
	})
	return e
}

// restart replaces the coordinator with a new one on the same broker and
// stores, as a restarted node (or a new slot owner) would see it.
func (e *groupEnv) restart() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.g.Close(ctx); err != nil {
		e.t.Fatalf("close groups: %v", err)
	}
	e.g = actors.NewGroups(e.b, e.opts)
}

const waitAnswer = 10 * time.Second

func wait[R any](t *testing.T, ch chan R, what string) R {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitAnswer):
		t.Fatalf("%s: no answer after %v", what, waitAnswer)
		panic("unreachable")
	}
}

// joinAsync starts a join and returns where its answer will arrive.
func (e *groupEnv) joinAsync(req actors.JoinRequest) chan actors.JoinResult {
	ch := make(chan actors.JoinResult, 1)
	e.g.Join(req, func(r actors.JoinResult) { ch <- r })
	return ch
}

func (e *groupEnv) join(req actors.JoinRequest) actors.JoinResult {
	e.t.Helper()
	return wait(e.t, e.joinAsync(req), "join")
}

func (e *groupEnv) syncAsync(req actors.SyncRequest) chan actors.SyncResult {
	ch := make(chan actors.SyncResult, 1)
	e.g.Sync(req, func(r actors.SyncResult) { ch <- r })
	return ch
}

func (e *groupEnv) sync(req actors.SyncRequest) actors.SyncResult {
	e.t.Helper()
	return wait(e.t, e.syncAsync(req), "sync")
}

func (e *groupEnv) heartbeat(group, member, instance string, gen int32) error {
	e.t.Helper()
	ch := make(chan error, 1)
	e.g.Heartbeat(actors.HeartbeatRequest{Group: group, MemberID: member, InstanceID: instance, Generation: gen}, func(err error) { ch <- err })
	return wait(e.t, ch, "heartbeat")
}

func (e *groupEnv) leave(group string, members ...actors.LeavingMember) actors.LeaveResult {
	e.t.Helper()
	ch := make(chan actors.LeaveResult, 1)
	e.g.Leave(actors.LeaveRequest{Group: group, Members: members}, func(r actors.LeaveResult) { ch <- r })
	return wait(e.t, ch, "leave")
}

func (e *groupEnv) commit(req actors.CommitRequest) actors.CommitResult {
	e.t.Helper()
	ch := make(chan actors.CommitResult, 1)
	e.g.CommitOffsets(req, func(r actors.CommitResult) { ch <- r })
	return wait(e.t, ch, "commit")
}

func (e *groupEnv) fetch(group string, topics []string) actors.FetchOffsetsResult {
	e.t.Helper()
	ch := make(chan actors.FetchOffsetsResult, 1)
	e.g.FetchOffsets(actors.FetchOffsetsRequest{Group: group, Topics: topics}, func(r actors.FetchOffsetsResult) { ch <- r })
	return wait(e.t, ch, "fetch offsets")
}

func (e *groupEnv) describe(groups ...string) []actors.GroupDescription {
	e.t.Helper()
	ch := make(chan []actors.GroupDescription, 1)
	e.g.Describe(groups, func(r []actors.GroupDescription) { ch <- r })
	return wait(e.t, ch, "describe")
}

func (e *groupEnv) list(states ...string) []actors.GroupListing {
	e.t.Helper()
	ch := make(chan actors.ListGroupsResult, 1)
	e.g.List(context.Background(), states, func(r actors.ListGroupsResult) { ch <- r })
	r := wait(e.t, ch, "list")
	if r.Err != nil {
		e.t.Fatalf("list groups: %v", r.Err)
	}
	return r.Groups
}

func (e *groupEnv) deleteGroups(groups ...string) []error {
	e.t.Helper()
	ch := make(chan []error, 1)
	e.g.Delete(groups, func(r []error) { ch <- r })
	return wait(e.t, ch, "delete groups")
}

func (e *groupEnv) deleteOffsets(group string, topics ...actors.TopicPartitions) actors.DeleteOffsetsResult {
	e.t.Helper()
	ch := make(chan actors.DeleteOffsetsResult, 1)
	e.g.DeleteOffsets(actors.DeleteOffsetsRequest{Group: group, Topics: topics}, func(r actors.DeleteOffsetsResult) { ch <- r })
	return wait(e.t, ch, "delete offsets")
}

func consumerJoin(group, member, client string, topics ...string) actors.JoinRequest {
	return actors.JoinRequest{
		Group: group, MemberID: member, ClientID: client, ClientHost: "/127.0.0.1",
		ProtocolType:         "consumer",
		Protocols:            []actors.GroupProtocol{{Name: "range", Metadata: []byte("meta-" + client), Topics: topics}},
		SessionTimeout:       10 * time.Second,
		RebalanceTimeout:     10 * time.Second,
		RequireKnownMemberID: true,
	}
}

func mustErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// joinNew runs a dynamic member's two-step first join (MEMBER_ID_REQUIRED,
// then the join with the id) and returns the id and the second join's
// pending answer.
func (e *groupEnv) joinNew(req actors.JoinRequest) (string, chan actors.JoinResult) {
	e.t.Helper()
	r := e.join(req)
	mustErr(e.t, "first join", r.Err, actors.ErrMemberIDRequired)
	if r.MemberID == "" {
		e.t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	req.MemberID = r.MemberID
	return r.MemberID, e.joinAsync(req)
}

func TestGroupJoinSyncHeartbeatLeave(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	id, ch := e.joinNew(consumerJoin("g1", "", "c1", "t"))
	j := wait(t, ch, "join")
	mustOK(t, "join", j.Err)
	if j.MemberID != id || j.Leader != id || j.Generation != 1 || j.Protocol != "range" || j.ProtocolType != "consumer" {
		t.Fatalf("join result %+v", j)
	}
	if len(j.Members) != 1 || j.Members[0].MemberID != id || string(j.Members[0].Metadata) != "meta-c1" {
		t.Fatalf("leader's members %+v", j.Members)
	}
	if d := e.describe("g1")[0]; d.State != actors.GroupCompletingRebalance {
		t.Fatalf("state after join %q", d.State)
	}
	// Heartbeats are fine while the group waits for the leader's sync.
	mustOK(t, "heartbeat before sync", e.heartbeat("g1", id, "", 1))
	s := e.sync(actors.SyncRequest{Group: "g1", MemberID: id, Generation: 1, ProtocolType: "consumer", Protocol: "range",
		Assignments: []actors.MemberAssignment{{MemberID: id, Assignment: []byte("all")}}})
	mustOK(t, "sync", s.Err)
	if string(s.Assignment) != "all" || s.Protocol != "range" {
		t.Fatalf("sync result %+v", s)
	}
	mustOK(t, "heartbeat", e.heartbeat("g1", id, "", 1))
	d := e.describe("g1")[0]
	if d.State != actors.GroupStable || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].Assignment) != "all" || d.Members[0].ClientID != "c1" {
		t.Fatalf("describe stable %+v", d)
	}
	lr := e.leave("g1", actors.LeavingMember{MemberID: id}, actors.LeavingMember{MemberID: "nobody"})
	mustOK(t, "leave", lr.Err)
	mustOK(t, "leave member", lr.Members[0])
	mustErr(t, "leave unknown member", lr.Members[1], actors.ErrUnknownMemberID)
	mustErr(t, "heartbeat after leave", e.heartbeat("g1", id, "", 1), actors.ErrUnknownMemberID)
	d = e.describe("g1")[0]
	if d.State != actors.GroupEmpty || len(d.Members) != 0 {
		t.Fatalf("describe after leave %+v", d)
	}
	// The generation moved on when the group emptied; a new member starts at 3.
	_, ch = e.joinNew(consumerJoin("g1", "", "c2", "t"))
	if j := wait(t, ch, "rejoin"); j.Err != nil || j.Generation != 3 {
		t.Fatalf("join after empty: %+v", j)
	}
}

func TestGroupOldJoinWithoutMemberIDRequired(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	req := consumerJoin("g", "", "old", "t")
	req.RequireKnownMemberID = false // JoinGroup v0-v3
	j := e.join(req)
	mustOK(t, "join v3", j.Err)
	if j.MemberID == "" || j.Leader != j.MemberID || j.Generation != 1 {
		t.Fatalf("join v3 %+v", j)
	}
}

func TestGroupRebalanceTwoMembers(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	a, ch := e.joinNew(consumerJoin("g", "", "a", "t"))
	ja := wait(t, ch, "join a")
	mustOK(t, "join a", ja.Err)
	mustOK(t, "sync a", e.sync(actors.SyncRequest{Group: "g", MemberID: a, Generation: 1,
		Assignments: []actors.MemberAssignment{{MemberID: a, Assignment: []byte("0,1")}}}).Err)

	// B joins: its join waits until A rejoins too.
	b, chB := e.joinNew(consumerJoin("g", "", "b", "t"))
	select {
	case r := <-chB:
		t.Fatalf("b's join answered before a rejoined: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	mustErr(t, "a heartbeat during rebalance", e.heartbeat("g", a, "", 1), actors.ErrRebalanceInProgress)
	mustErr(t, "a sync during rebalance", e.sync(actors.SyncRequest{Group: "g", MemberID: a, Generation: 1}).Err, actors.ErrRebalanceInProgress)
	// Commits of the current generation still work while members rejoin.
	mustOK(t, "commit while preparing", e.commit(actors.CommitRequest{Group: "g", MemberID: a, Generation: 1,
		Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: 5, LeaderEpoch: -1}}}).Err)
	ja2 := e.join(consumerJoin("g", a, "a", "t"))
	jb := wait(t, chB, "join b")
	mustOK(t, "rejoin a", ja2.Err)
	mustOK(t, "join b", jb.Err)
	if ja2.Generation != 2 || jb.Generation != 2 || ja2.Leader != a || jb.Leader != a {
		t.Fatalf("generation 2: a %+v b %+v", ja2, jb)
	}
	if len(ja2.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("members: leader got %d, follower got %d", len(ja2.Members), len(jb.Members))
	}
	// Old generation is refused everywhere.
	mustErr(t, "heartbeat old generation", e.heartbeat("g", a, "", 1), actors.ErrIllegalGeneration)
	mustErr(t, "commit old generation", e.commit(actors.CommitRequest{Group: "g", MemberID: a, Generation: 1,
		Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: 6}}}).Err, actors.ErrIllegalGeneration)
	mustErr(t, "commit while completing", e.commit(actors.CommitRequest{Group: "g", MemberID: a, Generation: 2,
		Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: 6}}}).Err, actors.ErrRebalanceInProgress)

	// The follower's sync waits for the leader's.
	syncB := e.syncAsync(actors.SyncRequest{Group: "g", MemberID: b, Generation: 2})
	select {
	case r := <-syncB:
		t.Fatalf("follower sync answered before the leader's: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	sa := e.sync(actors.SyncRequest{Group: "g", MemberID: a, Generation: 2, Assignments: []actors.MemberAssignment{
		{MemberID: a, Assignment: []byte("0")}, {MemberID: b, Assignment: []byte("1")}}})
	sb := wait(t, syncB, "sync b")
	if sa.Err != nil || sb.Err != nil || string(sa.Assignment) != "0" || string(sb.Assignment) != "1" {
		t.Fatalf("sync: a %+v b %+v", sa, sb)
	}
	mustOK(t, "commit generation 2", e.commit(actors.CommitRequest{Group: "g", MemberID: b, Generation: 2,
		Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 1, Offset: 9, LeaderEpoch: -1}}}).Err)

	// B leaves: A is told to rejoin and gets everything at generation 3.
	mustOK(t, "leave b", e.leave("g", actors.LeavingMember{MemberID: b}).Members[0])
	mustErr(t, "a heartbeat after b left", e.heartbeat("g", a, "", 2), actors.ErrRebalanceInProgress)
	ja3 := e.join(consumerJoin("g", a, "a", "t"))
	if ja3.Err != nil || ja3.Generation != 3 || len(ja3.Members) != 1 {
		t.Fatalf("rejoin alone %+v", ja3)
	}
}

func TestGroupProtocolSelection(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	mk := func(client string, names ...string) actors.JoinRequest {
		r := consumerJoin("g", "", client)
		r.RequireKnownMemberID = false
		r.Protocols = nil
		for _, n := range names {
			r.Protocols = append(r.Protocols, actors.GroupProtocol{Name: n, Metadata: []byte(client)})
		}
		return r
	}
	// The first join's answer comes at once (all members joined); the
	// others' wait for everyone to rejoin.
	a := e.join(mk("a", "range", "roundrobin", "sticky"))
	mustOK(t, "join a", a.Err)
	chB := e.joinAsync(mk("b", "roundrobin", "range"))
	chC := e.joinAsync(mk("c", "roundrobin", "range", "sticky"))
	ra := mk("a", "range", "roundrobin", "sticky")
	ra.MemberID = a.MemberID
	ja := e.join(ra)
	jb, jc := wait(t, chB, "join b"), wait(t, chC, "join c")
	for _, j := range []actors.JoinResult{ja, jb, jc} {
		mustOK(t, "join", j.Err)
		// range and roundrobin are common; roundrobin has two votes.
		if j.Protocol != "roundrobin" {
			t.Fatalf("selected %q, want roundrobin", j.Protocol)
		}
	}
	// A member with no common protocol is refused.
	mustErr(t, "join without common protocol", e.join(mk("d", "sticky")).Err, actors.ErrInconsistentGroupProtocol)
	bad := mk("e", "range")
	bad.ProtocolType = "connect"
	mustErr(t, "join with other protocol type", e.join(bad).Err, actors.ErrInconsistentGroupProtocol)
}

func TestGroupRequestValidation(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	mustErr(t, "heartbeat unknown group", e.heartbeat("nope", "m", "", 1), actors.ErrUnknownMemberID)
	mustErr(t, "sync unknown group", e.sync(actors.SyncRequest{Group: "nope", MemberID: "m", Generation: 1}).Err, actors.ErrUnknownMemberID)
	mustErr(t, "heartbeat empty group id", e.heartbeat("", "m", "", 1), actors.ErrInvalidGroupID)
	empty := consumerJoin("", "", "c")
	mustErr(t, "join empty group id", e.join(empty).Err, actors.ErrInvalidGroupID)
	long := consumerJoin("g", "", "c")
	long.SessionTimeout = time.Hour
	mustErr(t, "join with long session", e.join(long).Err, actors.ErrInvalidSessionTimeout)
	noProto := consumerJoin("g", "", "c")
	noProto.Protocols = nil
	mustErr(t, "join without protocols", e.join(noProto).Err, actors.ErrInconsistentGroupProtocol)
	mustErr(t, "join unknown member id", e.join(consumerJoin("g", "ghost", "c")).Err, actors.ErrUnknownMemberID)
	mustErr(t, "commit into unknown group with a generation", e.commit(actors.CommitRequest{Group: "x", MemberID: "m", Generation: 3,
		Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 1}}}).Err, actors.ErrIllegalGeneration)

	id, ch := e.joinNew(consumerJoin("g", "", "c", "t"))
	mustOK(t, "join", wait(t, ch, "join").Err)
	mustErr(t, "sync wrong generation", e.sync(actors.SyncRequest{Group: "g", MemberID: id, Generation: 7}).Err, actors.ErrIllegalGeneration)
	mustErr(t, "sync wrong protocol", e.sync(actors.SyncRequest{Group: "g", MemberID: id, Generation: 1, Protocol: "sticky"}).Err, actors.ErrInconsistentGroupProtocol)
	mustErr(t, "sync unknown member", e.sync(actors.SyncRequest{Group: "g", MemberID: "ghost", Generation: 1}).Err, actors.ErrUnknownMemberID)
	mustErr(t, "heartbeat unknown member", e.heartbeat("g", "ghost", "", 1), actors.ErrUnknownMemberID)
	mustErr(t, "simple commit into a non-empty group", e.commit(actors.CommitRequest{Group: "g", Generation: -1,
		Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 1}}}).Err, actors.ErrUnknownMemberID)
	big := e.commit(actors.CommitRequest{Group: "other", Generation: -1, Offsets: []meta.OffsetCommit{
		{Topic: "t", Offset: 1, Metadata: string(make([]byte, 5000))}, {Topic: "t", Partition: 1, Offset: 2}}})
	mustOK(t, "commit with one too large metadata", big.Err)
	mustErr(t, "too large metadata", big.Offsets[0], actors.ErrOffsetMetadataTooLarge)
	mustOK(t, "small metadata", big.Offsets[1])
}

func TestGroupSessionTimeoutExpiry(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	short := func(client, member string) actors.JoinRequest {
		r := consumerJoin("g", member, client, "t")
		r.SessionTimeout, r.RebalanceTimeout = 300*time.Millisecond, 2*time.Second
		return r
	}
	a, ch := e.joinNew(short("a", ""))
	mustOK(t, "join a", wait(t, ch, "join a").Err)
	mustOK(t, "sync a", e.sync(actors.SyncRequest{Group: "g", MemberID: a, Generation: 1}).Err)
	b, chB := e.joinNew(short("b", ""))
	mustErr(t, "a heartbeat", e.heartbeat("g", a, "", 1), actors.ErrRebalanceInProgress)
	mustOK(t, "a rejoin", e.join(short("a", a)).Err)
	jb := wait(t, chB, "join b")
	mustOK(t, "join b", jb.Err)
	mustOK(t, "sync a", e.sync(actors.SyncRequest{Group: "g", MemberID: a, Generation: 2}).Err)
	mustOK(t, "sync b", e.sync(actors.SyncRequest{Group: "g", MemberID: b, Generation: 2}).Err)

	// B goes silent; A keeps heartbeating until it is told to rebalance.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := e.heartbeat("g", a, "", 2)
		if errors.Is(err, actors.ErrRebalanceInProgress) {
			break
		}
		mustOK(t, "a heartbeat", err)
		if time.Now().After(deadline) {
			t.Fatal("b's session never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	j := e.join(short("a", a))
	if j.Err != nil || j.Generation != 3 || len(j.Members) != 1 || j.Members[0].MemberID != a {
		t.Fatalf("join after b expired %+v", j)
	}
	mustErr(t, "expired member heartbeat", e.heartbeat("g", b, "", 2), actors.ErrUnknownMemberID)

	// A member that never rejoins during a rebalance is dropped when the
	// rebalance times out, even though its session has not expired.
	c, chC := e.joinNew(short("c", ""))
	_ = c
	keep := time.NewTicker(100 * time.Millisecond)
	defer keep.Stop()
	var jc actors.JoinResult
	for got := false; !got; {
		select {
		case jc = <-chC:
			got = true
		case <-keep.C:
			// A only heartbeats (it ignores the rebalance), which keeps
			// its session but not its membership.
			_ = e.heartbeat("g", a, "", 3)
		case <-time.After(waitAnswer):
			t.Fatal("c's join never completed")
		}
	}
	if jc.Err != nil || jc.Generation != 4 || len(jc.Members) != 1 || jc.Leader != jc.MemberID {
		t.Fatalf("join after a missed the rebalance %+v", jc)
	}
	mustErr(t, "dropped member heartbeat", e.heartbeat("g", a, "", 3), actors.ErrUnknownMemberID)
}

func TestGroupPendingMemberExpires(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	r := consumerJoin("g", "", "a", "t")
	r.SessionTimeout = 100 * time.Millisecond
	first := e.join(r)
	mustErr(t, "first join", first.Err, actors.ErrMemberIDRequired)
	time.Sleep(300 * time.Millisecond)
	r.MemberID = first.MemberID
	mustErr(t, "join after the pending id expired", e.join(r).Err, actors.ErrUnknownMemberID)
}

func TestGroupStaticMembership(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	static := func(member, client string) actors.JoinRequest {
		r := consumerJoin("g", member, client, "t")
		r.InstanceID = "instance-1"
		return r
	}
	// A static member joins at once, without MEMBER_ID_REQUIRED.
	j1 := e.join(static("", "p1"))
	mustOK(t, "static join", j1.Err)
	id1 := j1.MemberID
	mustOK(t, "sync", e.sync(actors.SyncRequest{Group: "g", MemberID: id1, InstanceID: "instance-1", Generation: 1,
		Assignments: []actors.MemberAssignment{{MemberID: id1, Assignment: []byte("a1")}}}).Err)

	// The process restarts: same instance id, no member id. It replaces the
	// old member without a rebalance, and as the leader is told to skip
	// assigning.
	j2 := e.join(static("", "p2"))
	mustOK(t, "static rejoin", j2.Err)
	id2 := j2.MemberID
	if id2 == id1 || j2.Generation != 1 || j2.Leader != id2 || !j2.SkipAssignment || len(j2.Members) != 1 {
		t.Fatalf("static rejoin %+v", j2)
	}
	if d := e.describe("g")[0]; d.State != actors.GroupStable || len(d.Members) != 1 || d.Members[0].MemberID != id2 || string(d.Members[0].Assignment) != "a1" {
		t.Fatalf("describe after static rejoin %+v", d)
	}
	s := e.sync(actors.SyncRequest{Group: "g", MemberID: id2, InstanceID: "instance-1", Generation: 1})
	if s.Err != nil || string(s.Assignment) != "a1" {
		t.Fatalf("sync after static rejoin %+v", s)
	}
	// The old member id is fenced wherever Kafka fences it.
	mustErr(t, "old heartbeat", e.heartbeat("g", id1, "instance-1", 1), actors.ErrFencedInstanceID)
	mustErr(t, "old sync", e.sync(actors.SyncRequest{Group: "g", MemberID: id1, InstanceID: "instance-1", Generation: 1}).Err, actors.ErrFencedInstanceID)
	mustErr(t, "old commit", e.commit(actors.CommitRequest{Group: "g", MemberID: id1, InstanceID: "instance-1", Generation: 1,
		Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 1}}}).Err, actors.ErrFencedInstanceID)
	mustErr(t, "old join", e.join(static(id1, "p1")).Err, actors.ErrFencedInstanceID)
	mustErr(t, "old leave", e.leave("g", actors.LeavingMember{MemberID: id1, InstanceID: "instance-1"}).Members[0], actors.ErrFencedInstanceID)
	mustOK(t, "new heartbeat", e.heartbeat("g", id2, "instance-1", 1))
	mustErr(t, "unknown instance", e.heartbeat("g", id2, "instance-2", 1), actors.ErrUnknownMemberID)

	// A static member parked in a join is fenced when its instance rejoins.
	// (The leader's rejoin starts a rebalance that waits for the pending
	// dynamic member.)
	dynReq := consumerJoin("g", "", "d", "t")
	first := e.join(dynReq)
	mustErr(t, "dynamic first join", first.Err, actors.ErrMemberIDRequired)
	parked := e.joinAsync(static(id2, "p2"))
	ch3 := e.joinAsync(static("", "p3"))
	mustErr(t, "parked join of replaced member", wait(t, parked, "parked join").Err, actors.ErrFencedInstanceID)
	dynReq.MemberID = first.MemberID
	jd := e.join(dynReq)
	j3 := wait(t, ch3, "replacement join")
	mustOK(t, "replacement join", j3.Err)
	mustOK(t, "dynamic join", jd.Err)
	if j3.Generation != 2 || jd.Generation != 2 || j3.MemberID == id2 {
		t.Fatalf("after rebalance: static %+v dynamic %+v", j3, jd)
	}
	// An admin removes the static member by instance id alone.
	lr := e.leave("g", actors.LeavingMember{InstanceID: "instance-1"})
	mustOK(t, "leave by instance id", lr.Members[0])
	mustErr(t, "removed static member", e.heartbeat("g", j3.MemberID, "instance-1", 2), actors.ErrUnknownMemberID)
}

func TestGroupOffsetsSurviveRestart(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	// A simple consumer (no group management) commits into a new group.
	res := e.commit(actors.CommitRequest{Group: "simple", Generation: -1, Offsets: []meta.OffsetCommit{
		{Topic: "t", Partition: 0, Offset: 42, LeaderEpoch: 3, Metadata: "m0"},
		{Topic: "t", Partition: 1, Offset: 7, LeaderEpoch: -1},
		{Topic: "u", Partition: 0, Offset: 1, LeaderEpoch: -1},
	}})
	mustOK(t, "simple commit", res.Err)
	for i, err := range res.Offsets {
		mustOK(t, "offset", err)
		_ = i
	}
	// A consuming group commits and reaches generation 1.
	id, ch := e.joinNew(consumerJoin("consumers", "", "c", "t"))
	mustOK(t, "join", wait(t, ch, "join").Err)
	mustOK(t, "sync", e.sync(actors.SyncRequest{Group: "consumers", MemberID: id, Generation: 1,
		Assignments: []actors.MemberAssignment{{MemberID: id, Assignment: []byte("x")}}}).Err)
	mustOK(t, "member commit", e.commit(actors.CommitRequest{Group: "consumers", MemberID: id, Generation: 1,
		Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 2, Offset: 100, LeaderEpoch: 1}}}).Err)

	// Nothing committed: no offsets and no error.
	if r := e.fetch("never", nil); r.Err != nil || len(r.Offsets) != 0 {
		t.Fatalf("fetch of unknown group %+v", r)
	}

	e.restart()

	got := e.fetch("simple", nil)
	mustOK(t, "fetch after restart", got.Err)
	byKey := map[string]meta.OffsetCommit{}
	for _, o := range got.Offsets {
		byKey[o.Topic+"/"+string(rune('0'+o.Partition))] = o
	}
	if o := byKey["t/0"]; o.Offset != 42 || o.LeaderEpoch != 3 || o.Metadata != "m0" {
		t.Fatalf("t/0 after restart %+v (all %+v)", o, got.Offsets)
	}
	if o := byKey["t/1"]; o.Offset != 7 || len(got.Offsets) != 3 {
		t.Fatalf("offsets after restart %+v", got.Offsets)
	}
	if r := e.fetch("simple", []string{"u"}); len(r.Offsets) != 1 || r.Offsets[0].Offset != 1 {
		t.Fatalf("fetch of one topic %+v", r)
	}
	// The stable group carries on: its member keeps its id and generation.
	mustOK(t, "heartbeat after restart", e.heartbeat("consumers", id, "", 1))
	if d := e.describe("consumers")[0]; d.State != actors.GroupStable || len(d.Members) != 1 || string(d.Members[0].Assignment) != "x" {
		t.Fatalf("describe after restart %+v", d)
	}
	if r := e.fetch("consumers", []string{"t"}); len(r.Offsets) != 1 || r.Offsets[0].Offset != 100 {
		t.Fatalf("member's commit after restart %+v", r)
	}

	listing := e.list()
	names := []string{}
	for _, l := range listing {
		names = append(names, l.Group+"="+l.State)
	}
	if !slices.Equal(names, []string{"consumers=Stable", "simple=Empty"}) {
		t.Fatalf("list %v", names)
	}
	if got := e.list("empty"); len(got) != 1 || got[0].Group != "simple" {
		t.Fatalf("list empty groups %+v", got)
	}
	if got := e.list("Stable", "PreparingRebalance"); len(got) != 1 || got[0].Group != "consumers" || got[0].ProtocolType != "consumer" {
		t.Fatalf("list stable groups %+v", got)
	}

	// Offsets go; the group stays.
	dr := e.deleteOffsets("simple", actors.TopicPartitions{Topic: "t", Partitions: []int32{0}})
	mustOK(t, "delete offsets", dr.Err)
	mustOK(t, "delete offset t/0", dr.Topics[0][0])
	if r := e.fetch("simple", []string{"t"}); len(r.Offsets) != 1 || r.Offsets[0].Partition != 1 {
		t.Fatalf("after offset delete %+v", r)
	}
	errs := e.deleteGroups("simple", "consumers", "never")
	mustOK(t, "delete simple", errs[0])
	mustErr(t, "delete consumers", errs[1], actors.ErrNonEmptyGroup)
	mustErr(t, "delete never", errs[2], actors.ErrGroupIDNotFound)
	if r := e.fetch("simple", nil); len(r.Offsets) != 0 {
		t.Fatalf("offsets of a deleted group %+v", r)
	}
	if d := e.describe("simple")[0]; !errors.Is(d.Err, actors.ErrGroupIDNotFound) || d.State != actors.GroupDead {
		t.Fatalf("describe deleted group %+v", d)
	}
	mustErr(t, "delete twice", e.deleteGroups("simple")[0], actors.ErrGroupIDNotFound)
}

func TestGroupOffsetDeleteSubscribed(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	id, ch := e.joinNew(consumerJoin("g", "", "c", "t"))
	mustOK(t, "join", wait(t, ch, "join").Err)
	mustOK(t, "sync", e.sync(actors.SyncRequest{Group: "g", MemberID: id, Generation: 1}).Err)
	mustOK(t, "commit", e.commit(actors.CommitRequest{Group: "g", MemberID: id, Generation: 1, Offsets: []meta.OffsetCommit{
		{Topic: "t", Partition: 0, Offset: 1}, {Topic: "old", Partition: 0, Offset: 2}}}).Err)
	r := e.deleteOffsets("g", actors.TopicPartitions{Topic: "t", Partitions: []int32{0}}, actors.TopicPartitions{Topic: "old", Partitions: []int32{0}})
	mustOK(t, "delete offsets", r.Err)
	mustErr(t, "delete offsets of a consumed topic", r.Topics[0][0], actors.ErrGroupSubscribedToTopic)
	mustOK(t, "delete offsets of an unconsumed topic", r.Topics[1][0])
	if f := e.fetch("g", nil); len(f.Offsets) != 1 || f.Offsets[0].Topic != "t" {
		t.Fatalf("offsets after delete %+v", f)
	}
	mustErr(t, "delete offsets of unknown group", e.deleteOffsets("none", actors.TopicPartitions{Topic: "t", Partitions: []int32{0}}).Err, actors.ErrGroupIDNotFound)
}

func TestGroupInitialRebalanceDelay(t *testing.T) {
	o := fastGroupOptions()
	o.InitialRebalanceDelay = 200 * time.Millisecond
	e := newGroupEnv(t, o)
	start := time.Now()
	_, chA := e.joinNew(consumerJoin("g", "", "a", "t"))
	time.Sleep(50 * time.Millisecond)
	_, chB := e.joinNew(consumerJoin("g", "", "b", "t"))
	ja, jb := wait(t, chA, "join a"), wait(t, chB, "join b")
	if ja.Err != nil || jb.Err != nil || ja.Generation != 1 || jb.Generation != 1 {
		t.Fatalf("initial joins: a %+v b %+v", ja, jb)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("first rebalance took %v, want the initial delay", el)
	}
}

func TestGroupSlotOwnership(t *testing.T) {
	for _, name := range []string{"", "a", "consumer-group-1", "ünïcode"} {
		s := actors.GroupSlot(name, actors.DefaultGroupSlots)
		if s < 0 || s >= actors.DefaultGroupSlots || s != actors.GroupSlot(name, actors.DefaultGroupSlots) {
			t.Fatalf("slot of %q: %d", name, s)
		}
	}
	var mu sync.Mutex
	owned := map[int]bool{}
	setOwned := func(slot int, v bool) { mu.Lock(); owned[slot] = v; mu.Unlock() }
	o := fastGroupOptions()
	o.OwnsSlot = func(slot int) bool { mu.Lock(); defer mu.Unlock(); return owned[slot] }
	e := newGroupEnv(t, o)
	slot := e.g.Slot("g")
	mustErr(t, "heartbeat to an unowned slot", e.heartbeat("g", "m", "", 1), actors.ErrNotCoordinator)
	setOwned(slot, true)
	if !e.g.Owns("g") {
		t.Fatal("Owns after the slot was taken")
	}
	id, ch := e.joinNew(consumerJoin("g", "", "c", "t"))
	mustOK(t, "join", wait(t, ch, "join").Err)
	mustOK(t, "sync", e.sync(actors.SyncRequest{Group: "g", MemberID: id, Generation: 1}).Err)
	mustOK(t, "commit", e.commit(actors.CommitRequest{Group: "g", MemberID: id, Generation: 1,
		Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 3}}}).Err)

	// The slot is lost and released: the group is unloaded.
	setOwned(slot, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mustOK(t, "release slot", e.g.ReleaseSlot(ctx, slot))
	mustErr(t, "heartbeat after release", e.heartbeat("g", id, "", 1), actors.ErrNotCoordinator)
	// Taken back (another node would load it the same way): the group
	// continues from the store.
	setOwned(slot, true)
	mustOK(t, "heartbeat after reload", e.heartbeat("g", id, "", 1))
	if r := e.fetch("g", nil); len(r.Offsets) != 1 || r.Offsets[0].Offset != 3 {
		t.Fatalf("offsets after reload %+v", r)
	}
}

func TestGroupCloseAnswersParked(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	a, ch := e.joinNew(consumerJoin("g", "", "a", "t"))
	mustOK(t, "join a", wait(t, ch, "join a").Err)
	mustOK(t, "sync a", e.sync(actors.SyncRequest{Group: "g", MemberID: a, Generation: 1}).Err)
	_, chB := e.joinNew(consumerJoin("g", "", "b", "t"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mustOK(t, "close", e.g.Close(ctx))
	mustErr(t, "parked join at close", wait(t, chB, "parked join").Err, actors.ErrNotCoordinator)
	mustErr(t, "heartbeat after close", e.heartbeat("g", a, "", 1), actors.ErrCoordinatorNotAvailable)
}

func TestGroupIdleActorsStopAndReload(t *testing.T) {
	o := fastGroupOptions()
	o.IdleTimeout = 5 * time.Millisecond
	e := newGroupEnv(t, o)
	// Requests keep arriving while idle actors stop: none may be lost and
	// each sees the commits answered before it.
	for i := range 60 {
		c := e.commit(actors.CommitRequest{Group: "idle", Generation: -1, Offsets: []meta.OffsetCommit{{Topic: "t", Offset: int64(i)}}})
		mustOK(t, "commit", c.Err)
		if i%3 == 0 {
			time.Sleep(time.Duration(i%4) * 5 * time.Millisecond)
		}
		f := e.fetch("idle", nil)
		if f.Err != nil || len(f.Offsets) != 1 || f.Offsets[0].Offset != int64(i) {
			t.Fatalf("fetch %d: %+v", i, f)
		}
	}
	if d := e.describe("idle")[0]; d.Err != nil || d.State != actors.GroupEmpty {
		t.Fatalf("describe after reloads %+v", d)
	}
}

func TestGroupPendingBytesBound(t *testing.T) {
	o := fastGroupOptions()
	o.MaxPendingBytes = 1024
	// A long initial delay keeps the first member's join parked, so its
	// bytes stay held while the big join arrives.
	o.InitialRebalanceDelay = time.Minute
	e := newGroupEnv(t, o)
	big := consumerJoin("g", "", "c", "t")
	big.Protocols[0].Metadata = make([]byte, 4096)
	// The first request over the limit is let through when nothing else
	// is held, so park one join first.
	_, parked := e.joinNew(consumerJoin("g", "", "a", "t"))
	mustErr(t, "join past the byte bound", e.join(big).Err, actors.ErrCoordinatorNotAvailable)
	select {
	case r := <-parked:
		t.Fatalf("parked join answered before the rebalance delay: %+v", r)
	default:
	}
}

func TestGroupMembersThatDoNotSyncAreRemoved(t *testing.T) {
	e := newGroupEnv(t, fastGroupOptions())
	short := func(client, member string) actors.JoinRequest {
		r := consumerJoin("g", member, client, "t")
		r.RequireKnownMemberID = false
		r.SessionTimeout, r.RebalanceTimeout = 5*time.Second, 300*time.Millisecond
		return r
	}
	a := e.join(short("a", ""))
	mustOK(t, "join a", a.Err)
	// b and c join; a rejoins; all three are in generation 2.
	chB, chC := e.joinAsync(short("b", "")), e.joinAsync(short("c", ""))
	ja := e.join(short("a", a.MemberID))
	jb, jc := wait(t, chB, "join b"), wait(t, chC, "join c")
	if ja.Err != nil || jb.Err != nil || jc.Err != nil || ja.Generation != 2 || len(ja.Members) != 3 {
		t.Fatalf("generation 2: %+v %+v %+v", ja, jb, jc)
	}
	// Only the leader syncs: the followers are dropped after the
	// rebalance timeout and the leader is told to rejoin.
	mustOK(t, "leader sync", e.sync(actors.SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 2}).Err)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := e.heartbeat("g", a.MemberID, "", 2)
		if errors.Is(err, actors.ErrRebalanceInProgress) {
			break
		}
		mustOK(t, "leader heartbeat", err)
		if time.Now().After(deadline) {
			t.Fatal("followers that never synced were not removed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustErr(t, "b heartbeat", e.heartbeat("g", jb.MemberID, "", 2), actors.ErrUnknownMemberID)
	mustErr(t, "c heartbeat", e.heartbeat("g", jc.MemberID, "", 2), actors.ErrUnknownMemberID)
	if j := e.join(short("a", a.MemberID)); j.Err != nil || j.Generation != 3 || len(j.Members) != 1 {
		t.Fatalf("rejoin alone %+v", j)
	}
}

// answers collects the answers to one request, to check there is exactly
// one.
type answers[R any] chan R

func newAnswers[R any]() answers[R] { return make(answers[R], 2) }

func (a answers[R]) reply(r R) { a <- r }

// only waits for the answer and checks no second one came with it.
func (a answers[R]) only(t *testing.T, what string) R {
	t.Helper()
	r := wait(t, a, what)
	select {
	case again := <-a:
		t.Fatalf("%s answered twice: %+v, then %+v", what, r, again)
	default:
	}
	return r
}

// TestGroupIdleStopUnderLoad keeps one group busy while its actor goes
// idle and stops over and over: requests that race with an actor closing
// its mailbox are handed back and routed to the next actor, so each is
// answered once, without error, and in the order sent (pipelined commits
// of one client land in order).
func TestGroupIdleStopUnderLoad(t *testing.T) {
	o := fastGroupOptions()
	o.IdleTimeout = time.Millisecond
	e := newGroupEnv(t, o)
	const workers, rounds, burst = 4, 50, 4
	errs := make(chan error, workers*rounds)
	// worker w's round i: a burst of commits sent without waiting (the
	// last must win), then a fetch and a describe.
	work := func(w, i int) error {
		topic := fmt.Sprintf("t%d", w)
		pending := make([]answers[actors.CommitResult], burst)
		for k := range burst {
			pending[k] = newAnswers[actors.CommitResult]()
			e.g.CommitOffsets(actors.CommitRequest{Group: "busy", Generation: -1,
				Offsets: []meta.OffsetCommit{{Topic: topic, Offset: int64(i*burst + k)}}}, pending[k].reply)
		}
		for k, a := range pending {
			if r := a.only(t, "commit"); r.Err != nil || len(r.Offsets) != 1 || r.Offsets[0] != nil {
				return fmt.Errorf("worker %d round %d commit %d: %+v", w, i, k, r)
			}
		}
		f := newAnswers[actors.FetchOffsetsResult]()
		e.g.FetchOffsets(actors.FetchOffsetsRequest{Group: "busy", Topics: []string{topic}}, f.reply)
		if r := f.only(t, "fetch"); r.Err != nil || len(r.Offsets) != 1 || r.Offsets[0].Offset != int64(i*burst+burst-1) {
			return fmt.Errorf("worker %d round %d fetch: %+v", w, i, r)
		}
		d := newAnswers[[]actors.GroupDescription]()
		e.g.Describe([]string{"busy"}, d.reply)
		if r := d.only(t, "describe"); r[0].Err != nil || r[0].State != actors.GroupEmpty {
			return fmt.Errorf("worker %d round %d describe: %+v", w, i, r[0])
		}
		return nil
	}
	for i := range rounds {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := work(w, i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		// A pause around the idle timeout: the actor often retires just
		// as the next round's requests arrive.
		time.Sleep(time.Duration(rand.IntN(2500)) * time.Microsecond)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := counter(t, e.bopts, "morax_group_loads_total"); n < 5 {
		t.Errorf("the group was loaded %v times, want the actor to have stopped and reloaded repeatedly", n)
	}
	// Once the load stops, the last actor idles out too.
	waitGauge(t, e.bopts, "morax_group_actors", 0)
}

// TestGroupRequestsAcrossClose sends requests while the coordinator
// closes, and after: each gets one answer, a retriable coordinator error
// if not served, and none waits forever.
func TestGroupRequestsAcrossClose(t *testing.T) {
	o := fastGroupOptions()
	o.IdleTimeout = time.Millisecond
	e := newGroupEnv(t, o)
	mustOK(t, "commit", e.commit(actors.CommitRequest{Group: "g", Generation: -1, Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 1}}}).Err)
	const senders, each = 4, 100
	results := make([][]answers[actors.CommitResult], senders)
	var wg sync.WaitGroup
	for s := range senders {
		results[s] = make([]answers[actors.CommitResult], each)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				a := newAnswers[actors.CommitResult]()
				results[s][i] = a
				// Spread over a few groups so some actors are loading,
				// some idle-stopping, when Close arrives.
				e.g.CommitOffsets(actors.CommitRequest{Group: fmt.Sprintf("g%d", i%3), Generation: -1,
					Offsets: []meta.OffsetCommit{{Topic: "t", Offset: int64(i)}}}, a.reply)
			}
		}()
	}
	time.Sleep(2 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mustOK(t, "close", e.g.Close(ctx))
	wg.Wait()
	for s := range results {
		for i, a := range results[s] {
			r := a.only(t, "commit across close")
			// In flight at Close: served, answered by its unloading group
			// (ErrNotCoordinator), or refused by the stopping coordinator.
			if r.Err != nil && !errors.Is(r.Err, actors.ErrCoordinatorNotAvailable) && !errors.Is(r.Err, actors.ErrNotCoordinator) {
				t.Fatalf("sender %d commit %d: %v, want success or a retriable coordinator error", s, i, r.Err)
			}
		}
	}

	// After Close every kind of request is refused at once.
	notAvailable := func(what string, err error) {
		t.Helper()
		mustErr(t, what+" after close", err, actors.ErrCoordinatorNotAvailable)
	}
	notAvailable("join", e.join(consumerJoin("g", "", "c", "t")).Err)
	notAvailable("sync", e.sync(actors.SyncRequest{Group: "g", MemberID: "m", Generation: 1}).Err)
	notAvailable("heartbeat", e.heartbeat("g", "m", "", 1))
	notAvailable("leave", e.leave("g", actors.LeavingMember{MemberID: "m"}).Err)
	notAvailable("commit", e.commit(actors.CommitRequest{Group: "g", Generation: -1, Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 2}}}).Err)
	notAvailable("fetch", e.fetch("g", nil).Err)
	notAvailable("delete offsets", e.deleteOffsets("g", actors.TopicPartitions{Topic: "t", Partitions: []int32{0}}).Err)
	notAvailable("describe", e.describe("g")[0].Err)
	notAvailable("delete", e.deleteGroups("g")[0])
	ch := make(chan actors.ListGroupsResult, 1)
	e.g.List(context.Background(), nil, func(r actors.ListGroupsResult) { ch <- r })
	notAvailable("list", wait(t, ch, "list").Err)
	mustOK(t, "second close", e.g.Close(ctx))
	mustOK(t, "release after close", e.g.ReleaseSlot(ctx, e.g.Slot("g")))
}
