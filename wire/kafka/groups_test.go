package kafka_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// groupNode starts a test node whose coordinator waits only briefly for
// the first members of a group (Kafka's 3 s default would slow every test).
func groupNode(t *testing.T) *kafkatest.Node {
	t.Helper()
	var fast *actors.Groups
	n := kafkatest.Start(t, kafkatest.Options{Server: func(c *kafka.Config) {
		fast = actors.NewGroups(c.Broker, actors.GroupOptions{InitialRebalanceDelay: 100 * time.Millisecond})
		c.Groups = fast
	}})
	// Registered after the node's own cleanup, so it runs first: the
	// coordinator stops while the broker still runs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := fast.Close(ctx); err != nil {
			t.Errorf("close groups: %v", err)
		}
	})
	return n
}

func groupCreateTopic(t *testing.T, n *kafkatest.Node, name string, partitions int32) {
	t.Helper()
	if _, err := n.Broker.CreateTopic(context.Background(), meta.Topic{Name: name, Partitions: partitions}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// produce writes count records to topic, round-robin over partitions, with
// values prefix-i.
func groupProduce(t *testing.T, n *kafkatest.Node, topic string, partitions int32, prefix string, count int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, count)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// member is a kgo group consumer whose assignment and records the test
// watches.
type groupMember struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	assigned map[int32]bool
	values   []string
}

func startGroupMember(t *testing.T, n *kafkatest.Node, group, topic string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{assigned: map[int32]bool{}, done: make(chan struct{})}
	update := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				if add {
					m.assigned[p] = true
				} else {
					delete(m.assigned, p)
				}
			}
		}
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(n.Addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second),
		kgo.OnPartitionsAssigned(update(true)),
		kgo.OnPartitionsRevoked(update(false)),
		kgo.OnPartitionsLost(update(false)),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl, m.cancel = cl, cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			m.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { m.values = append(m.values, string(r.Value)) })
			m.mu.Unlock()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop leaves the group and closes the client.
func (m *groupMember) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	<-m.done
	m.cl.Close()
}

func (m *groupMember) snapshot() (map[int32]bool, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.assigned), slices.Clone(m.values)
}

func groupEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGroupConsumersSplitAndRebalance(t *testing.T) {
	n := groupNode(t)
	groupCreateTopic(t, n, "split", 4)
	groupProduce(t, n, "split", 4, "v", 40)

	a := startGroupMember(t, n, "split-g", "split")
	b := startGroupMember(t, n, "split-g", "split")
	groupEventually(t, "both members to share all partitions", func() bool {
		pa, _ := a.snapshot()
		pb, _ := b.snapshot()
		if len(pa) == 0 || len(pb) == 0 || len(pa)+len(pb) != 4 {
			return false
		}
		for p := range pa {
			if pb[p] {
				return false
			}
		}
		return true
	})
	groupEventually(t, "every record consumed once between them", func() bool {
		_, va := a.snapshot()
		_, vb := b.snapshot()
		return len(va)+len(vb) >= 40
	})
	_, va := a.snapshot()
	_, vb := b.snapshot()
	all := append(va, vb...)
	slices.Sort(all)
	if len(slices.Compact(all)) != 40 {
		t.Fatalf("consumed %d distinct of 40 (a %d, b %d)", len(slices.Compact(all)), len(va), len(vb))
	}

	// One member leaves: the other takes every partition.
	b.stop()
	groupEventually(t, "the remaining member to own every partition", func() bool {
		pa, _ := a.snapshot()
		return len(pa) == 4
	})
}

func TestGroupCommitAndResume(t *testing.T) {
	// Current clients, and clients of brokers before MEMBER_ID_REQUIRED
	// (2.2 speaks JoinGroup v4, 0.11 JoinGroup v2 and OffsetFetch v3).
	for _, v := range []struct {
		name string
		max  *kversion.Versions
	}{{"latest", nil}, {"2.2", kversion.V2_2_0()}, {"0.11", kversion.V0_11_0()}} {
		t.Run(v.name, func(t *testing.T) {
			var opts []kgo.Opt
			if v.max != nil {
				opts = append(opts, kgo.MaxVersions(v.max))
			}
			n := groupNode(t)
			groupCreateTopic(t, n, "resume", 3)
			groupProduce(t, n, "resume", 3, "first", 30)

			a := startGroupMember(t, n, "resume-g", "resume", append(opts, kgo.DisableAutoCommit())...)
			groupEventually(t, "the first batch", func() bool {
				_, v := a.snapshot()
				return len(v) >= 30
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := a.cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			a.stop()

			// The committed offsets are where the next member of the
			// group starts.
			groupProduce(t, n, "resume", 3, "second", 9)
			b := startGroupMember(t, n, "resume-g", "resume", opts...)
			groupEventually(t, "the second batch", func() bool {
				_, v := b.snapshot()
				return len(v) >= 9
			})
			time.Sleep(300 * time.Millisecond)
			_, got := b.snapshot()
			for _, s := range got {
				if !strings.HasPrefix(s, "second") {
					t.Fatalf("resumed consumer got %q: it did not start at the committed offsets (got %v)", s, got)
				}
			}
			if len(got) != 9 {
				t.Fatalf("resumed consumer got %d records, want 9: %v", len(got), got)
			}
		})
	}
}

// groupRequest sends a raw request through a plain client (routed to the
// coordinator for group requests) and checks it succeeded at the protocol
// level.
func groupRequest[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func TestGroupAPIsRaw(t *testing.T) {
	n := groupNode(t)
	groupCreateTopic(t, n, "raw", 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	host, portStr, _ := net.SplitHostPort(n.Addr)
	port, _ := strconv.Atoi(portStr)

	// FindCoordinator, batched (v4+): this node for every group.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"a", "b"}
	fcr := groupRequest[*kmsg.FindCoordinatorResponse](t, cl, fc)
	if len(fcr.Coordinators) != 2 {
		t.Fatalf("find coordinator: %+v", fcr)
	}
	for _, c := range fcr.Coordinators {
		if c.ErrorCode != 0 || c.NodeID != kafka.BrokerID(n.Broker.NodeID()) || c.Host != host || int(c.Port) != port {
			t.Fatalf("coordinator %+v, want this node at %s", c, n.Addr)
		}
	}
	// FindCoordinator v3 (single key) as older clients send it.
	old, err := kgo.NewClient(kgo.SeedBrokers(n.Addr), kgo.MaxVersions(kversion.V2_8_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	fc3 := kmsg.NewPtrFindCoordinatorRequest()
	fc3.CoordinatorKey = "a"
	if r := groupRequest[*kmsg.FindCoordinatorResponse](t, old, fc3); r.Version != 3 || r.ErrorCode != 0 || r.NodeID != kafka.BrokerID(n.Broker.NodeID()) || int(r.Port) != port {
		t.Fatalf("find coordinator v3 %+v", r)
	}

	// OffsetFetch with no commit: -1 and no error, for several groups.
	of := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range []string{"nobody", "simple"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = "raw", []int32{0, 1}
		rg.Topics = append(rg.Topics, rt)
		of.Groups = append(of.Groups, rg)
	}
	ofr := groupRequest[*kmsg.OffsetFetchResponse](t, cl, of)
	if len(ofr.Groups) != 2 {
		t.Fatalf("offset fetch %+v", ofr)
	}
	for _, g := range ofr.Groups {
		if g.ErrorCode != 0 || len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 2 {
			t.Fatalf("offset fetch group %+v", g)
		}
		for _, p := range g.Topics[0].Partitions {
			if p.Offset != -1 || p.ErrorCode != 0 || p.LeaderEpoch != -1 {
				t.Fatalf("uncommitted partition %+v", p)
			}
		}
	}

	// A simple commit (generation -1, no member), and one to a missing
	// partition and topic. Current clients address topics by id (v10).
	rawTopic, err := n.Broker.Topic(context.Background(), "raw")
	if err != nil {
		t.Fatal(err)
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation, oc.MemberID = "simple", -1, ""
	for _, tp := range []struct {
		topic string
		id    [16]byte
		part  int32
	}{{"raw", rawTopic.ID, 0}, {"raw", rawTopic.ID, 5}, {"missing", [16]byte{1, 2, 3}, 0}} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = tp.topic, tp.id
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = tp.part, 17, 2, kmsg.StringPtr("md")
		rt.Partitions = append(rt.Partitions, rp)
		oc.Topics = append(oc.Topics, rt)
	}
	ocr := groupRequest[*kmsg.OffsetCommitResponse](t, cl, oc)
	want := []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code}
	if ocr.Version >= 10 {
		want[2] = kerr.UnknownTopicID.Code
	}
	for i, rt := range ocr.Topics {
		if rt.Partitions[0].ErrorCode != want[i] {
			t.Fatalf("commit %d (v%d): code %d, want %d", i, ocr.Version, rt.Partitions[0].ErrorCode, want[i])
		}
	}
	// Fetch everything the group committed (null topics).
	all := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = "simple"
	all.Groups = append(all.Groups, rg)
	allr := groupRequest[*kmsg.OffsetFetchResponse](t, cl, all)
	if g := allr.Groups[0]; g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Topic != "raw" || len(g.Topics[0].Partitions) != 1 ||
		g.Topics[0].Partitions[0].Offset != 17 || g.Topics[0].Partitions[0].LeaderEpoch != 2 || *g.Topics[0].Partitions[0].Metadata != "md" {
		t.Fatalf("fetch all offsets %+v", allr.Groups[0])
	}

	// A classic join at v4+ without a member id is MEMBER_ID_REQUIRED.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = "joined", 10000, 10000, "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"raw"}
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", meta.AppendTo(nil)
	jg.Protocols = append(jg.Protocols, jp)
	jr := groupRequest[*kmsg.JoinGroupResponse](t, cl, jg)
	if jr.ErrorCode != kerr.MemberIDRequired.Code || jr.MemberID == "" {
		t.Fatalf("first join %+v", jr)
	}
	jg.MemberID = jr.MemberID
	jr = groupRequest[*kmsg.JoinGroupResponse](t, cl, jg)
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != jg.MemberID || len(jr.Members) != 1 || *jr.Protocol != "range" {
		t.Fatalf("second join %+v", jr)
	}
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID, sg.Generation = "joined", jg.MemberID, 1
	sr := groupRequest[*kmsg.SyncGroupResponse](t, cl, sg)
	var asg kmsg.ConsumerMemberAssignment
	if sr.ErrorCode != 0 || asg.ReadFrom(sr.MemberAssignment) != nil {
		t.Fatalf("sync %+v", sr)
	}
	// The consumed topic's offsets stay; another's can go.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "joined"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "raw"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = append(od.Topics, odt)
	odr := groupRequest[*kmsg.OffsetDeleteResponse](t, cl, od)
	if odr.ErrorCode != 0 || odr.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete of a consumed topic %+v", odr)
	}

	// DescribeGroups: a stable group in full, an unknown one as Dead.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"joined", "unknown"}
	dgr := groupRequest[*kmsg.DescribeGroupsResponse](t, cl, dg)
	if g := dgr.Groups[0]; g.ErrorCode != 0 || g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 1 || g.Members[0].ClientHost == "" {
		t.Fatalf("describe joined %+v", g)
	}
	if g := dgr.Groups[1]; g.State != "Dead" || (dgr.Version >= 6 && g.ErrorCode != kerr.GroupIDNotFound.Code) {
		t.Fatalf("describe unknown %+v (v%d)", g, dgr.Version)
	}

	// ListGroups with a state filter.
	lg := kmsg.NewPtrListGroupsRequest()
	lg.StatesFilter = []string{"Empty"}
	lgr := groupRequest[*kmsg.ListGroupsResponse](t, cl, lg)
	if lgr.ErrorCode != 0 || len(lgr.Groups) != 1 || lgr.Groups[0].Group != "simple" || lgr.Groups[0].GroupState != "Empty" {
		t.Fatalf("list empty groups %+v", lgr)
	}

	// DeleteGroups: only empty groups.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"simple", "joined", "unknown"}
	delr := groupRequest[*kmsg.DeleteGroupsResponse](t, cl, del)
	codes := []int16{delr.Groups[0].ErrorCode, delr.Groups[1].ErrorCode, delr.Groups[2].ErrorCode}
	if !slices.Equal(codes, []int16{0, kerr.NonEmptyGroup.Code, kerr.GroupIDNotFound.Code}) {
		t.Fatalf("delete groups codes %v", codes)
	}

	// Leave (batched, v3+), then the heartbeat of the gone member.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = "joined"
	lvm := kmsg.NewLeaveGroupRequestMember()
	lvm.MemberID = jg.MemberID
	lv.Members = append(lv.Members, lvm)
	lvr := groupRequest[*kmsg.LeaveGroupResponse](t, cl, lv)
	if lvr.ErrorCode != 0 || len(lvr.Members) != 1 || lvr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave %+v", lvr)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "joined", jg.MemberID, 1
	if r := groupRequest[*kmsg.HeartbeatResponse](t, cl, hb); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after leave: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
