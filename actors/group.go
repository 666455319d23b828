package actors

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
)

// groupRequest is a request to one group's actor, routed by the manager.
type groupRequest interface {
	// failGroup answers the request with err when it cannot be handled.
	failGroup(err error)
}

// Requests to a group actor; each carries its reply callback.
type (
	joinMsg struct {
		req   JoinRequest
		reply func(JoinResult)
	}
	syncMsg struct {
		req   SyncRequest
		reply func(SyncResult)
	}
	heartbeatMsg struct {
		req   HeartbeatRequest
		reply func(error)
	}
	leaveMsg struct {
		req   LeaveRequest
		reply func(LeaveResult)
	}
	commitMsg struct {
		req   CommitRequest
		reply func(CommitResult)
	}
	fetchOffsetsMsg struct {
		req   FetchOffsetsRequest
		reply func(FetchOffsetsResult)
	}
	deleteOffsetsMsg struct {
		req   DeleteOffsetsRequest
		reply func(DeleteOffsetsResult)
	}
	describeMsg struct {
		group string
		reply func(GroupDescription)
	}
	deleteMsg struct {
		reply func(error)
	}
)

func (m *joinMsg) failGroup(err error) {
	m.reply(JoinResult{Err: err, MemberID: m.req.MemberID, Generation: -1})
}
func (m *syncMsg) failGroup(err error)      { m.reply(SyncResult{Err: err}) }
func (m *heartbeatMsg) failGroup(err error) { m.reply(err) }
func (m *leaveMsg) failGroup(err error)     { m.reply(LeaveResult{Err: err}) }
func (m *commitMsg) failGroup(err error)    { m.reply(CommitResult{Err: err}) }
func (m *fetchOffsetsMsg) failGroup(err error) {
	m.reply(FetchOffsetsResult{Err: err})
}
func (m *deleteOffsetsMsg) failGroup(err error) { m.reply(DeleteOffsetsResult{Err: err}) }
func (m *describeMsg) failGroup(err error) {
	m.reply(GroupDescription{Group: m.group, Err: err, State: GroupDead})
}
func (m *deleteMsg) failGroup(err error) { m.reply(err) }

// Internal messages of a group actor: from the manager, its I/O goroutine
// and its timers, all through its mailbox.
type (
	// stopGroup unloads the group: parked and later requests get err, and
	// the actor retires once its I/O is drained.
	stopGroup struct{ err error }
	// groupIODone reports a finished I/O job.
	groupIODone struct {
		job *groupIO
		err error
	}
	// memberExpiry fires a session timeout unless the member heartbeat
	// since (seq).
	memberExpiry struct {
		id  string
		seq uint64
	}
	// pendingExpiry fires when a member told MEMBER_ID_REQUIRED did not
	// rejoin within its session timeout.
	pendingExpiry struct{ id string }
	// joinDeadline ends the join phase of rebalance seq.
	joinDeadline struct{ seq uint64 }
	// syncDeadline removes members that did not sync in rebalance seq.
	syncDeadline struct{ seq uint64 }
	// idleCheck asks whether the actor has been idle for the idle timeout.
	idleCheck struct{}
)

// groupIO is one metadata store operation of a group. A group runs them
// one at a time in order, off the actor goroutine, so commits apply in the
// order received and a fetch sees every commit answered before it.
type groupIO struct {
	what string
	// run does the I/O on its own goroutine; it may answer requests itself.
	run func(ctx context.Context) error
	// done runs on the actor afterwards; nil when there is nothing to do.
	done func(err error)
	// answer, when set, is an error of run that done turns into the
	// client's answer (deleting a group the store does not hold) rather
	// than a failure, so it is not logged: a client must not be able to
	// fill the node's log with warnings by asking for what is not there.
	answer error
}

// groupMember is a member of a group.
type groupMember struct {
	id               string
	instanceID       string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []GroupProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte

	// joinReply and syncReply are set while the member's JoinGroup or
	// SyncGroup is parked; a parked member's session does not expire.
	joinReply func(JoinResult)
	syncReply func(SyncResult)

	hbSeq   uint64 // bumped by each heartbeat; stale expiry timers carry an older one
	hbTimer *time.Timer
}

// matches reports whether a rejoin carries the member's current protocols.
func (m *groupMember) matches(ps []GroupProtocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b GroupProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

func (m *groupMember) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *groupMember) topics(protocol string) []string {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Topics
		}
	}
	return nil
}

// groupActor coordinates one consumer group with Kafka's classic protocol.
// Every field is owned by the actor's goroutine; I/O goroutines and timers
// talk to it only through messages.
type groupActor struct {
	gs   *Groups
	name string
	// mb is the actor's own mailbox: the way its timers and I/O
	// goroutine reach it, and what it closes to retire.
	mb *mailbox

	// loaded is set once the stored state was read; blocked holds requests
	// in stash while a load or a delete is in flight.
	loaded  bool
	blocked bool
	stash   []groupRequest
	// stopErr is set once the manager unloads the group.
	stopErr error

	// exists is whether the group exists for the protocol: stored, or with
	// members or commits since it was loaded. stored is whether a row for
	// it is in the metadata store.
	exists bool
	stored bool

	state        string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*groupMember
	order        []string // member ids in join order: the leader's member list order
	pending      map[string]*time.Timer
	static       map[string]string // instance id -> member id
	// subscribed are the topics the current generation consumes; nil when
	// unknown (treated as every topic).
	subscribed map[string]bool

	// rebalanceSeq identifies the current rebalance; timers of an older one
	// are ignored.
	rebalanceSeq uint64
	joinTimer    *time.Timer
	// initialJoin is set while an empty group's first rebalance waits for
	// more members; newMemberAdded and remaining extend that wait.
	initialJoin    bool
	newMemberAdded bool
	remaining      time.Duration
	pendingSync    map[string]bool // members yet to sync this generation
	syncTimer      *time.Timer
	saving         bool // the leader's assignment is being stored

	io     []*groupIO
	ioBusy bool

	// lastRequest is when the latest request arrived; idleTimer checks
	// idleness once the idle timeout has passed since.
	lastRequest time.Time
	idleTimer   *time.Timer
}

func newGroupActor(gs *Groups, name string, mb *mailbox) *groupActor {
	g := &groupActor{gs: gs, name: name, mb: mb}
	g.reset()
	return g
}

// reset forgets everything but the actor's plumbing: the group as it is
// before its first member (and after a delete).
func (g *groupActor) reset() {
	g.stopTimers()
	g.exists, g.stored = false, false
	g.state, g.generation, g.protocolType, g.protocol, g.leader = GroupEmpty, 0, "", "", ""
	g.members, g.order = map[string]*groupMember{}, nil
	g.pending, g.static = map[string]*time.Timer{}, map[string]string{}
	g.subscribed, g.pendingSync = nil, nil
	g.initialJoin, g.newMemberAdded, g.saving = false, false, false
}

// Receive implements actor.Actor.
func (g *groupActor) Receive(ctx actor.Context) {
	if !g.mb.receive(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.gs.b.metrics.groupLoads.Inc()
		g.lastRequest = time.Now()
		g.armIdle(g.gs.opts.IdleTimeout)
		g.load()
	case *actor.Stopping:
		g.stopTimers()
		if g.idleTimer != nil {
			g.idleTimer.Stop()
		}
	case *actor.Stopped:
		// Everything sent to the actor has been received, and handed back
		// if it was a request: the manager may start the group again.
		g.gs.manager.tell(&groupDrained{group: g.name, mb: g.mb})
	case *idleCheck:
		g.idleTimer = nil
		if g.stopErr != nil {
			return
		}
		switch left := g.gs.opts.IdleTimeout - time.Since(g.lastRequest); {
		case !g.idle():
			g.armIdle(g.gs.opts.IdleTimeout)
		case left > 0:
			g.armIdle(left)
		default:
			g.retire(ctx)
		}
	case *routeGroup:
		g.lastRequest = time.Now()
		g.request(m.req)
	case *stopGroup:
		g.stop(ctx, m.err)
	case *groupIODone:
		g.ioBusy = false
		if m.err != nil && (m.job.answer == nil || !errors.Is(m.err, m.job.answer)) {
			g.gs.b.Options().Logger.Warn("group metadata operation failed", "group", g.name, "op", m.job.what, "err", m.err)
		}
		if m.job.done != nil {
			m.job.done(m.err)
		}
		g.startIO()
		if g.stopErr != nil && !g.ioBusy {
			g.retire(ctx)
		}
	case *memberExpiry:
		mem := g.members[m.id]
		if mem == nil || mem.hbSeq != m.seq {
			return
		}
		if mem.joinReply != nil || mem.syncReply != nil {
			g.touch(mem) // parked members are alive by definition
			return
		}
		g.gs.b.Options().Logger.Info("group member session expired", "group", g.name, "member", m.id)
		g.removeAndRebalance(mem)
	case *pendingExpiry:
		if _, ok := g.pending[m.id]; ok {
			g.removePending(m.id)
		}
	case *joinDeadline:
		if m.seq != g.rebalanceSeq || g.state != GroupPreparingRebalance {
			return
		}
		if g.initialJoin && g.newMemberAdded && g.remaining > 0 {
			g.newMemberAdded = false
			d := min(g.gs.opts.InitialRebalanceDelay, g.remaining)
			g.remaining -= d
			g.joinTimer = g.after(d, &joinDeadline{seq: g.rebalanceSeq})
			return
		}
		g.initialJoin = false
		g.completeJoin()
	case *syncDeadline:
		if m.seq != g.rebalanceSeq || (g.state != GroupCompletingRebalance && g.state != GroupStable) || len(g.pendingSync) == 0 {
			return
		}
		for _, id := range slices.Clone(g.order) {
			if g.pendingSync[id] {
				g.gs.b.Options().Logger.Info("group member did not sync in time", "group", g.name, "member", id)
				g.removeMember(g.members[id], ErrRebalanceInProgress)
			}
		}
		g.prepareRebalance("members did not sync in time")
	}
}

// request handles a request from a client, or holds it while the group's
// state is loading or being deleted.
func (g *groupActor) request(r groupRequest) {
	if g.stopErr != nil {
		r.failGroup(g.stopErr)
		return
	}
	if g.blocked || !g.loaded {
		g.stash = append(g.stash, r)
		if !g.blocked {
			g.load() // the previous load failed: try again
		}
		return
	}
	switch m := r.(type) {
	case *joinMsg:
		g.join(m)
	case *syncMsg:
		g.sync(m)
	case *heartbeatMsg:
		g.heartbeat(m)
	case *leaveMsg:
		g.leave(m)
	case *commitMsg:
		g.commit(m)
	case *fetchOffsetsMsg:
		g.fetchOffsets(m)
	case *deleteOffsetsMsg:
		g.deleteOffsets(m)
	case *describeMsg:
		m.reply(g.describe())
	case *deleteMsg:
		g.delete(m)
	}
}

// replay handles the requests held while blocked, until one blocks again.
func (g *groupActor) replay() {
	for !g.blocked && g.loaded && len(g.stash) > 0 {
		r := g.stash[0]
		g.stash = g.stash[1:]
		g.request(r)
	}
	if len(g.stash) == 0 {
		g.stash = nil
	}
}

// load reads the group's stored state, holding requests meanwhile.
func (g *groupActor) load() {
	g.blocked = true
	var (
		stored storedGroup
		found  bool
	)
	g.enqueue(&groupIO{
		what: "load group",
		run: func(ctx context.Context) error {
			row, err := g.gs.b.Meta().Group(ctx, g.name)
			if errors.Is(err, meta.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			found = true
			stored, err = decodeGroupState(row.State)
			if err == nil && stored.ProtocolType == "" {
				stored.ProtocolType = row.ProtocolType
			}
			return err
		},
		done: func(err error) {
			g.blocked = false
			if g.stopErr != nil {
				return
			}
			if err != nil {
				stash := g.stash
				g.stash = nil
				for _, r := range stash {
					r.failGroup(errGroupStore("load group "+g.name, err))
				}
				return
			}
			g.loaded = true
			if found {
				g.restore(stored)
			}
			g.replay()
		},
	})
}

// restore continues a group from its stored state: a stable group keeps
// its members, each with a fresh session, so they carry on without
// rejoining if they are still there.
func (g *groupActor) restore(s storedGroup) {
	g.exists, g.stored = true, true
	g.generation, g.protocolType = s.Generation, s.ProtocolType
	if s.State != GroupStable {
		return
	}
	g.state, g.protocol, g.leader = GroupStable, s.Protocol, s.Leader
	for _, sm := range s.Members {
		mem := sm.member()
		mem.protocolType = s.ProtocolType
		g.members[mem.id] = mem
		g.order = append(g.order, mem.id)
		if mem.instanceID != "" {
			g.static[mem.instanceID] = mem.id
		}
		g.touch(mem)
	}
	if g.members[g.leader] == nil {
		g.leader = g.order[0]
	}
	g.subscribed = g.subscribedTopics()
}

// stop unloads the group: every waiting client is answered with err, and
// the actor retires once its queued metadata writes are done.
func (g *groupActor) stop(ctx actor.Context, err error) {
	if g.stopErr != nil {
		return
	}
	g.stopErr = err
	for _, id := range g.order {
		mem := g.members[id]
		if mem.joinReply != nil {
			r := mem.joinReply
			mem.joinReply = nil
			r(JoinResult{Err: err, MemberID: id, Generation: -1})
		}
		if mem.syncReply != nil {
			r := mem.syncReply
			mem.syncReply = nil
			r(SyncResult{Err: err})
		}
	}
	stash := g.stash
	g.stash = nil
	for _, r := range stash {
		r.failGroup(err)
	}
	g.stopTimers()
	if !g.ioBusy {
		g.retire(ctx)
	}
}

func (g *groupActor) stopTimers() {
	for _, mem := range g.members {
		if mem.hbTimer != nil {
			mem.hbTimer.Stop()
		}
	}
	for _, t := range g.pending {
		t.Stop()
	}
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}

// idle reports whether the actor holds nothing that is not in the
// metadata store, so it may stop.
func (g *groupActor) idle() bool {
	return len(g.members) == 0 && len(g.pending) == 0 && len(g.stash) == 0 &&
		!g.ioBusy && len(g.io) == 0 && !g.blocked && g.state == GroupEmpty
}

// armIdle starts the idle timer.
func (g *groupActor) armIdle(d time.Duration) {
	g.idleTimer = g.after(d, &idleCheck{})
}

// retire closes the actor's mailbox: requests still on their way are
// handed back to the manager, which keeps those for the group until the
// actor has stopped and then starts a new one for them. The manager
// learns of it first, so it routes nothing more here.
func (g *groupActor) retire(ctx actor.Context) {
	if g.mb.closed.Load() {
		return
	}
	g.gs.manager.tell(&groupRetired{group: g.name, mb: g.mb})
	g.mb.close(ctx)
}

func (g *groupActor) enqueue(job *groupIO) {
	g.io = append(g.io, job)
	g.startIO()
}

func (g *groupActor) startIO() {
	if g.ioBusy || len(g.io) == 0 {
		return
	}
	job := g.io[0]
	g.io = g.io[1:]
	g.ioBusy = true
	mb, timeout := g.mb, g.gs.b.Options().IOTimeout
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := job.run(ctx)
		cancel()
		mb.tell(&groupIODone{job: job, err: err})
	}()
}

// after sends msg to the actor once d has passed.
func (g *groupActor) after(d time.Duration, msg any) *time.Timer {
	mb := g.mb
	return time.AfterFunc(d, func() { mb.tell(msg) })
}

// touch restarts a member's session timeout.
func (g *groupActor) touch(mem *groupMember) {
	mem.hbSeq++
	if mem.hbTimer != nil {
		mem.hbTimer.Stop()
	}
	mem.hbTimer = g.after(mem.sessionTimeout, &memberExpiry{id: mem.id, seq: mem.hbSeq})
}

// checkInstance validates a request's static membership as Kafka does: an
// instance id no member holds is an unknown member; one held by another
// member id means the request comes from a replaced (fenced) process.
func (g *groupActor) checkInstance(instanceID, memberID string) error {
	if instanceID == "" {
		return nil
	}
	cur, ok := g.static[instanceID]
	switch {
	case !ok:
		return ErrUnknownMemberID
	case cur != memberID:
		return ErrFencedInstanceID
	}
	return nil
}

// snapshot is the group's current state as stored: members only for a
// stable group (a restarted coordinator makes the others rejoin).
func (g *groupActor) snapshot() storedGroup {
	s := storedGroup{State: GroupEmpty, Generation: g.generation, ProtocolType: g.protocolType}
	if g.state == GroupEmpty || len(g.members) == 0 {
		return s
	}
	s.State, s.Protocol, s.Leader = g.state, g.protocol, g.leader
	for _, id := range g.order {
		s.Members = append(s.Members, storeMember(g.members[id]))
	}
	return s
}

func (g *groupActor) saveJob(s storedGroup, done func(error)) *groupIO {
	return &groupIO{
		what: "save group",
		run: func(ctx context.Context) error {
			state, err := s.encode()
			if err != nil {
				return err
			}
			fence, err := g.gs.slotFence(g.name)
			if err != nil {
				return err
			}
			return g.gs.b.Meta().SaveGroup(ctx, meta.Group{Name: g.name, ProtocolType: s.ProtocolType, State: state}, fence)
		},
		done: func(err error) {
			if err == nil {
				g.stored, g.exists = true, true
			}
			if done != nil {
				done(err)
			}
		},
	}
}
