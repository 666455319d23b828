package actors

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

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
// and its timers.
type (
	// stopGroup unloads the group: parked and later requests get err, and
	// the actor reports quiet once its I/O is drained.
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
	// idleCheck asks whether the actor has been idle since it had seen
	// routed requests. (protoactor's receive timeout races with the
	// mailbox, so the actor keeps its own timer.)
	idleCheck struct{ routed uint64 }
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
	self *actor.PID

	// routed counts requests received from the manager, for the handshake
	// that lets the manager stop an idle actor without losing one.
	routed uint64
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

	// idleTimer is armed while the actor may become idle; see idleCheck.
	idleTimer *time.Timer
}

func newGroupActor(gs *Groups, name string) *groupActor {
	g := &groupActor{gs: gs, name: name}
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
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.self = ctx.Self()
		g.armIdle()
		g.load()
	case *actor.Stopping:
		g.stopTimers()
		if g.idleTimer != nil {
			g.idleTimer.Stop()
		}
	case *idleCheck:
		g.idleTimer = nil
		if g.stopErr == nil && g.routed == m.routed && g.idle() {
			g.quiet() // the manager stops it unless requests are on their way
			return
		}
		g.armIdle()
	case groupRequest:
		g.routed++
		g.armIdle()
		g.request(m)
	case *stopGroup:
		g.stop(m.err)
	case *groupIODone:
		g.ioBusy = false
		if m.err != nil {
			g.gs.b.Options().Logger.Warn("group metadata operation failed", "group", g.name, "op", m.job.what, "err", m.err)
		}
		if m.job.done != nil {
			m.job.done(m.err)
		}
		g.startIO()
		if g.stopErr != nil && !g.ioBusy {
			g.quiet()
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
		g.quiet()
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

// stop unloads the group: every waiting client is answered with err.
func (g *groupActor) stop(err error) {
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
		g.quiet()
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
// metadata store, so the manager may stop it.
func (g *groupActor) idle() bool {
	return len(g.members) == 0 && len(g.pending) == 0 && len(g.stash) == 0 &&
		!g.ioBusy && len(g.io) == 0 && !g.blocked && g.state == GroupEmpty
}

// armIdle starts the idle timer unless it runs.
func (g *groupActor) armIdle() {
	if g.idleTimer == nil {
		g.idleTimer = g.after(g.gs.opts.IdleTimeout, &idleCheck{routed: g.routed})
	}
}

// quiet tells the manager that every request it routed here is handled.
func (g *groupActor) quiet() {
	g.gs.system.Root.Send(g.gs.manager, &groupQuiet{group: g.name, pid: g.self, routed: g.routed})
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
	root, self, timeout := g.gs.system.Root, g.self, g.gs.b.Options().IOTimeout
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := job.run(ctx)
		cancel()
		root.Send(self, &groupIODone{job: job, err: err})
	}()
}

// after sends msg to the actor once d has passed.
func (g *groupActor) after(d time.Duration, msg any) *time.Timer {
	root, self := g.gs.system.Root, g.self
	return time.AfterFunc(d, func() { root.Send(self, msg) })
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

func newMemberID(prefix string) string { return prefix + "-" + uuid.NewString() }

func newGroupMember(id string, r JoinRequest) *groupMember {
	return &groupMember{
		id:               id,
		instanceID:       r.InstanceID,
		clientID:         r.ClientID,
		clientHost:       r.ClientHost,
		protocolType:     r.ProtocolType,
		protocols:        r.Protocols,
		sessionTimeout:   r.SessionTimeout,
		rebalanceTimeout: r.RebalanceTimeout,
	}
}

// supportsProtocols reports whether a member with these protocols may join:
// any protocol into an empty group, else the group's protocol type and at
// least one protocol every member supports.
func (g *groupActor) supportsProtocols(protocolType string, ps []GroupProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.allSupport(p.Name) {
			return true
		}
	}
	return false
}

func (g *groupActor) allSupport(name string) bool {
	for _, mem := range g.members {
		if !slices.ContainsFunc(mem.protocols, func(p GroupProtocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol for the next generation as Kafka does:
// among the protocols every member supports, each member votes for the one
// it prefers most; the most votes win, ties going to the leader's
// preference.
func (g *groupActor) selectProtocol() string {
	if len(g.order) == 0 {
		return ""
	}
	first := g.members[g.leader]
	if first == nil {
		first = g.members[g.order[0]]
	}
	var candidates []string
	for _, p := range first.protocols {
		if g.allSupport(p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, mem := range g.members {
		for _, p := range mem.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// subscribedTopics is the union of the members' topics under the selected
// protocol, or nil when any member's are unknown.
func (g *groupActor) subscribedTopics() map[string]bool {
	set := map[string]bool{}
	for _, mem := range g.members {
		ts := mem.topics(g.protocol)
		if ts == nil {
			return nil
		}
		for _, t := range ts {
			set[t] = true
		}
	}
	return set
}

func (g *groupActor) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, mem := range g.members {
		d = max(d, mem.rebalanceTimeout)
	}
	return d
}

// joinResult is a member's view of the current generation; the leader
// also gets every member's metadata.
func (g *groupActor) joinResult(id string, withMembers bool) JoinResult {
	r := JoinResult{MemberID: id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader}
	if withMembers && id == g.leader {
		r.Members = make([]JoinMember, 0, len(g.order))
		for _, mid := range g.order {
			mem := g.members[mid]
			r.Members = append(r.Members, JoinMember{MemberID: mid, InstanceID: mem.instanceID, Metadata: mem.metadata(g.protocol)})
		}
	}
	return r
}

func (g *groupActor) join(m *joinMsg) {
	r := m.req
	if !g.supportsProtocols(r.ProtocolType, r.Protocols) {
		m.reply(JoinResult{Err: ErrInconsistentGroupProtocol, MemberID: r.MemberID, Generation: -1})
		return
	}
	if r.MemberID == "" {
		g.joinNew(m)
	} else {
		g.joinKnown(m)
	}
	// A join may have been the last one the rebalance waited for.
	if g.state == GroupPreparingRebalance {
		g.checkJoinComplete()
	}
}

// joinNew handles a join without a member id.
func (g *groupActor) joinNew(m *joinMsg) {
	r := m.req
	if r.InstanceID != "" {
		if old, ok := g.static[r.InstanceID]; ok {
			g.replaceStatic(m, old)
			return
		}
	}
	if len(g.members)+len(g.pending) >= g.gs.opts.MaxSize {
		m.reply(JoinResult{Err: ErrGroupMaxSizeReached, Generation: -1})
		return
	}
	g.exists = true
	if r.InstanceID != "" {
		g.addMember(newGroupMember(newMemberID(r.InstanceID), r), m.reply)
		return
	}
	id := newMemberID(r.ClientID)
	if r.RequireKnownMemberID {
		// The member exists once it rejoins with the id, so a client
		// that never saw the answer leaves no member behind.
		g.pending[id] = g.after(r.SessionTimeout, &pendingExpiry{id: id})
		m.reply(JoinResult{Err: ErrMemberIDRequired, MemberID: id, Generation: -1})
		return
	}
	g.addMember(newGroupMember(id, r), m.reply)
}

// joinKnown handles a join with a member id.
func (g *groupActor) joinKnown(m *joinMsg) {
	r := m.req
	if t, ok := g.pending[r.MemberID]; ok {
		t.Stop()
		delete(g.pending, r.MemberID)
		g.addMember(newGroupMember(r.MemberID, r), m.reply)
		return
	}
	if err := g.checkInstance(r.InstanceID, r.MemberID); err != nil {
		m.reply(JoinResult{Err: err, MemberID: r.MemberID, Generation: -1})
		return
	}
	mem := g.members[r.MemberID]
	if mem == nil {
		m.reply(JoinResult{Err: ErrUnknownMemberID, MemberID: r.MemberID, Generation: -1})
		return
	}
	switch g.state {
	case GroupPreparingRebalance:
		g.updateMember(mem, m)
	case GroupCompletingRebalance:
		if mem.matches(r.Protocols) {
			// It missed the answer of this generation's join: repeat it.
			m.reply(g.joinResult(mem.id, true))
			g.touch(mem)
			return
		}
		g.updateMember(mem, m)
		g.prepareRebalance("member " + mem.id + " changed its protocols")
	case GroupStable:
		if mem.id != g.leader && mem.matches(r.Protocols) {
			// A follower with nothing new gets the current generation
			// and syncs again.
			m.reply(g.joinResult(mem.id, false))
			g.touch(mem)
			return
		}
		// A leader's join forces a rebalance: that is how a consumer
		// reacts to metadata changes its members' subscriptions do not show.
		g.updateMember(mem, m)
		g.prepareRebalance("member " + mem.id + " rejoined")
	default:
		m.reply(JoinResult{Err: ErrUnknownMemberID, MemberID: r.MemberID, Generation: -1})
	}
}

// updateMember takes a rejoining member's new protocols and parks its join.
func (g *groupActor) updateMember(mem *groupMember, m *joinMsg) {
	r := m.req
	mem.protocols, mem.sessionTimeout, mem.rebalanceTimeout = r.Protocols, r.SessionTimeout, r.RebalanceTimeout
	if mem.joinReply != nil {
		// Only the latest join of a member is answered with the generation.
		mem.joinReply(JoinResult{Err: ErrRebalanceInProgress, MemberID: mem.id, Generation: -1})
	}
	mem.joinReply = m.reply
}

// addMember adds a member whose join waits for the rebalance it starts.
func (g *groupActor) addMember(mem *groupMember, reply func(JoinResult)) {
	mem.joinReply = reply
	if len(g.members) == 0 {
		g.protocolType = mem.protocolType
	}
	g.members[mem.id] = mem
	g.order = append(g.order, mem.id)
	if g.leader == "" {
		g.leader = mem.id
	}
	if mem.instanceID != "" {
		g.static[mem.instanceID] = mem.id
	}
	g.newMemberAdded = true
	if g.state != GroupPreparingRebalance {
		g.prepareRebalance("member " + mem.id + " joined")
	}
}

// replaceStatic handles a static member rejoining without its member id
// (a restarted process): the new member id replaces the old one, whose
// parked requests are fenced. In a stable group whose protocol does not
// change this needs no rebalance (KIP-345).
func (g *groupActor) replaceStatic(m *joinMsg, oldID string) {
	r := m.req
	old := g.members[oldID]
	if old.joinReply != nil {
		old.joinReply(JoinResult{Err: ErrFencedInstanceID, MemberID: oldID, Generation: -1})
		old.joinReply = nil
	}
	if old.syncReply != nil {
		old.syncReply(SyncResult{Err: ErrFencedInstanceID})
		old.syncReply = nil
	}
	if old.hbTimer != nil {
		old.hbTimer.Stop()
	}
	mem := newGroupMember(newMemberID(r.InstanceID), r)
	mem.assignment = old.assignment
	delete(g.members, oldID)
	g.members[mem.id] = mem
	g.order[slices.Index(g.order, oldID)] = mem.id
	g.static[r.InstanceID] = mem.id
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[mem.id] = true
	}
	if g.leader == oldID {
		g.leader = mem.id
	}
	switch g.state {
	case GroupStable:
		if g.selectProtocol() == g.protocol {
			g.touch(mem)
			res := g.joinResult(mem.id, true)
			res.SkipAssignment = mem.id == g.leader
			g.enqueue(g.saveJob(g.snapshot(), func(err error) {
				if err != nil {
					m.reply(JoinResult{Err: errGroupStore("save group", err), MemberID: mem.id, Generation: -1})
					return
				}
				m.reply(res)
			}))
			return
		}
		mem.joinReply = m.reply
		g.prepareRebalance("static member " + r.InstanceID + " changed the group's protocol")
	case GroupCompletingRebalance:
		// The leader may have the old member id in its assignment: the
		// new id would get nothing, so assign again.
		mem.joinReply = m.reply
		g.prepareRebalance("static member " + r.InstanceID + " rejoined during sync")
	default:
		mem.joinReply = m.reply
	}
}

// prepareRebalance starts a join phase: every member must rejoin within
// the rebalance timeout.
func (g *groupActor) prepareRebalance(reason string) {
	if g.state == GroupCompletingRebalance {
		g.resetSyncs(ErrRebalanceInProgress)
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	g.pendingSync = nil
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	wasEmpty := g.state == GroupEmpty
	g.state = GroupPreparingRebalance
	g.rebalanceSeq++
	g.gs.b.Options().Logger.Debug("group preparing rebalance", "group", g.name, "generation", g.generation, "reason", reason)
	timeout := g.maxRebalanceTimeout()
	if wasEmpty && g.gs.opts.InitialRebalanceDelay > 0 {
		// An empty group's first members usually start together: wait a
		// little for the rest instead of rebalancing once per member.
		g.initialJoin, g.newMemberAdded = true, false
		d := min(g.gs.opts.InitialRebalanceDelay, timeout)
		g.remaining = max(timeout-g.gs.opts.InitialRebalanceDelay, 0)
		g.joinTimer = g.after(d, &joinDeadline{seq: g.rebalanceSeq})
		return
	}
	g.initialJoin = false
	g.joinTimer = g.after(timeout, &joinDeadline{seq: g.rebalanceSeq})
	g.checkJoinComplete()
}

// checkJoinComplete ends the join phase early once every member rejoined
// and no member told to rejoin with its id is outstanding.
func (g *groupActor) checkJoinComplete() {
	if g.state != GroupPreparingRebalance || g.initialJoin || len(g.pending) > 0 {
		return
	}
	for _, mem := range g.members {
		if mem.joinReply == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are dropped, the generation advances, a protocol is chosen, and every
// joined member gets its answer (the leader with the member list).
func (g *groupActor) completeJoin() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	for _, id := range slices.Clone(g.order) {
		if mem := g.members[id]; mem.joinReply == nil && mem.instanceID == "" {
			g.removeMember(mem, ErrUnknownMemberID)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that did not rejoin are left: wait for them
		// to rejoin or for their sessions to expire.
		g.joinTimer = g.after(g.maxRebalanceTimeout(), &joinDeadline{seq: g.rebalanceSeq})
		return
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader, g.subscribed = GroupEmpty, "", "", nil
		g.enqueue(g.saveJob(g.snapshot(), nil))
		return
	}
	g.protocol = g.selectProtocol()
	g.subscribed = g.subscribedTopics()
	g.state = GroupCompletingRebalance
	g.pendingSync = map[string]bool{}
	for _, id := range g.order {
		mem := g.members[id]
		g.pendingSync[id] = true
		if mem.joinReply != nil {
			reply := mem.joinReply
			mem.joinReply = nil
			reply(g.joinResult(id, true))
		}
		g.touch(mem)
	}
	g.gs.b.Options().Logger.Debug("group join phase complete", "group", g.name, "generation", g.generation, "members", len(g.members), "protocol", g.protocol)
	g.syncTimer = g.after(g.maxRebalanceTimeout(), &syncDeadline{seq: g.rebalanceSeq})
}

// electJoinedLeader keeps the leader if it rejoined, else picks a member
// that did; false if none did.
func (g *groupActor) electJoinedLeader() bool {
	if mem := g.members[g.leader]; mem != nil && mem.joinReply != nil {
		return true
	}
	for _, id := range g.order {
		if g.members[id].joinReply != nil {
			g.leader = id
			return true
		}
	}
	return false
}

// resetSyncs answers parked syncs with err and drops the assignments of a
// generation that will not become stable.
func (g *groupActor) resetSyncs(err error) {
	for _, mem := range g.members {
		mem.assignment = nil
		if mem.syncReply != nil {
			reply := mem.syncReply
			mem.syncReply = nil
			reply(SyncResult{Err: err})
		}
	}
}

// removeMember drops a member, answering its parked requests with err. It
// does not start a rebalance.
func (g *groupActor) removeMember(mem *groupMember, err error) {
	if mem.joinReply != nil {
		reply := mem.joinReply
		mem.joinReply = nil
		reply(JoinResult{Err: err, MemberID: mem.id, Generation: -1})
	}
	if mem.syncReply != nil {
		reply := mem.syncReply
		mem.syncReply = nil
		reply(SyncResult{Err: err})
	}
	if mem.hbTimer != nil {
		mem.hbTimer.Stop()
	}
	delete(g.members, mem.id)
	g.order = slices.DeleteFunc(g.order, func(id string) bool { return id == mem.id })
	if mem.instanceID != "" && g.static[mem.instanceID] == mem.id {
		delete(g.static, mem.instanceID)
	}
	delete(g.pendingSync, mem.id)
	if g.leader == mem.id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// removeAndRebalance drops a member (left or expired) and rebalances the rest.
func (g *groupActor) removeAndRebalance(mem *groupMember) {
	g.removeMember(mem, ErrUnknownMemberID)
	switch g.state {
	case GroupStable, GroupCompletingRebalance:
		g.prepareRebalance("member " + mem.id + " left")
	case GroupPreparingRebalance:
		g.checkJoinComplete()
	}
}

func (g *groupActor) removePending(id string) {
	if t := g.pending[id]; t != nil {
		t.Stop()
	}
	delete(g.pending, id)
	g.checkJoinComplete()
}

func (g *groupActor) sync(m *syncMsg) {
	r := m.req
	if err := g.checkInstance(r.InstanceID, r.MemberID); err != nil {
		m.reply(SyncResult{Err: err})
		return
	}
	mem := g.members[r.MemberID]
	switch {
	case mem == nil:
		m.reply(SyncResult{Err: ErrUnknownMemberID})
		return
	case r.Generation != g.generation:
		m.reply(SyncResult{Err: ErrIllegalGeneration})
		return
	case r.ProtocolType != "" && r.ProtocolType != g.protocolType,
		r.Protocol != "" && r.Protocol != g.protocol:
		m.reply(SyncResult{Err: ErrInconsistentGroupProtocol})
		return
	}
	switch g.state {
	case GroupPreparingRebalance:
		m.reply(SyncResult{Err: ErrRebalanceInProgress})
	case GroupCompletingRebalance:
		if mem.syncReply != nil {
			mem.syncReply(SyncResult{Err: ErrRebalanceInProgress})
		}
		mem.syncReply = m.reply
		delete(g.pendingSync, mem.id)
		if mem.id == g.leader && !g.saving {
			g.storeAssignments(r.Assignments)
		}
	case GroupStable:
		delete(g.pendingSync, mem.id)
		m.reply(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: mem.assignment})
		g.touch(mem)
	default:
		m.reply(SyncResult{Err: ErrUnknownMemberID})
	}
}

// storeAssignments saves the leader's assignment; once it is stored the
// group is stable and every parked sync is answered.
func (g *groupActor) storeAssignments(list []MemberAssignment) {
	assign := make(map[string][]byte, len(list))
	for _, a := range list {
		if g.members[a.MemberID] != nil {
			assign[a.MemberID] = a.Assignment
		}
	}
	snap := g.snapshot()
	snap.State = GroupStable
	for i := range snap.Members {
		snap.Members[i].Assignment = assign[snap.Members[i].ID]
	}
	g.saving = true
	seq := g.rebalanceSeq
	g.enqueue(g.saveJob(snap, func(err error) {
		g.saving = false
		if g.stopErr != nil || seq != g.rebalanceSeq || g.state != GroupCompletingRebalance {
			return // the parked syncs were answered already
		}
		if err != nil {
			g.resetSyncs(errGroupStore("save group assignment", err))
			g.prepareRebalance("could not store the assignment")
			return
		}
		g.stored = true
		g.state = GroupStable
		for _, id := range g.order {
			mem := g.members[id]
			mem.assignment = assign[id]
			if mem.syncReply != nil {
				reply := mem.syncReply
				mem.syncReply = nil
				reply(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: mem.assignment})
				g.touch(mem)
			}
		}
		g.gs.b.Options().Logger.Debug("group stable", "group", g.name, "generation", g.generation)
	}))
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
			return g.gs.b.Meta().SaveGroup(ctx, meta.Group{Name: g.name, ProtocolType: s.ProtocolType, State: state})
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

func (g *groupActor) heartbeat(m *heartbeatMsg) {
	r := m.req
	if err := g.checkInstance(r.InstanceID, r.MemberID); err != nil {
		m.reply(err)
		return
	}
	mem := g.members[r.MemberID]
	if mem == nil {
		m.reply(ErrUnknownMemberID)
		return
	}
	if r.Generation != g.generation {
		m.reply(ErrIllegalGeneration)
		return
	}
	switch g.state {
	case GroupPreparingRebalance:
		g.touch(mem)
		m.reply(ErrRebalanceInProgress)
	case GroupCompletingRebalance, GroupStable:
		g.touch(mem)
		m.reply(nil)
	default:
		m.reply(ErrUnknownMemberID)
	}
}

func (g *groupActor) leave(m *leaveMsg) {
	res := LeaveResult{Members: make([]error, len(m.req.Members))}
	for i, lm := range m.req.Members {
		if _, ok := g.pending[lm.MemberID]; ok && lm.MemberID != "" {
			g.removePending(lm.MemberID)
			continue
		}
		if cur, ok := g.static[lm.InstanceID]; ok && lm.InstanceID != "" {
			if lm.MemberID != "" && lm.MemberID != cur {
				res.Members[i] = ErrFencedInstanceID
				continue
			}
			g.gs.b.Options().Logger.Debug("static group member left", "group", g.name, "instance", lm.InstanceID, "reason", lm.Reason)
			g.removeAndRebalance(g.members[cur])
			continue
		}
		if mem := g.members[lm.MemberID]; mem != nil {
			g.gs.b.Options().Logger.Debug("group member left", "group", g.name, "member", lm.MemberID, "reason", lm.Reason)
			g.removeAndRebalance(mem)
			continue
		}
		res.Members[i] = ErrUnknownMemberID
	}
	m.reply(res)
}

func (g *groupActor) commit(m *commitMsg) {
	r := m.req
	if !g.exists && r.Generation >= 0 {
		// No such group: a commit from an old generation of it.
		m.reply(CommitResult{Err: ErrIllegalGeneration})
		return
	}
	// A commit without generation into an empty group comes from a client
	// that manages its own partitions (simple consumer, admin tools).
	if simple := r.Generation < 0 && g.state == GroupEmpty; !simple {
		if err := g.checkInstance(r.InstanceID, r.MemberID); err != nil {
			m.reply(CommitResult{Err: err})
			return
		}
		mem := g.members[r.MemberID]
		if mem == nil {
			m.reply(CommitResult{Err: ErrUnknownMemberID})
			return
		}
		if r.Generation != g.generation {
			m.reply(CommitResult{Err: ErrIllegalGeneration})
			return
		}
		g.touch(mem)
		if g.state == GroupCompletingRebalance {
			// It knows the new generation but not its assignment yet.
			m.reply(CommitResult{Err: ErrRebalanceInProgress})
			return
		}
	}
	res := CommitResult{Offsets: make([]error, len(r.Offsets))}
	valid := make([]meta.OffsetCommit, 0, len(r.Offsets))
	for i, o := range r.Offsets {
		if len(o.Metadata) > g.gs.opts.MaxOffsetMetadata {
			res.Offsets[i] = ErrOffsetMetadataTooLarge
			continue
		}
		valid = append(valid, o)
	}
	if len(valid) == 0 {
		m.reply(res)
		return
	}
	g.exists = true
	// A group that only ever had commits is saved too, so ListGroups and
	// DescribeGroups know it.
	var save *groupIO
	if !g.stored {
		save = g.saveJob(g.snapshot(), nil)
		g.stored = true
	}
	g.enqueue(&groupIO{
		what: "commit offsets",
		run: func(ctx context.Context) error {
			var err error
			if save != nil {
				err = save.run(ctx)
			}
			if err == nil {
				err = g.gs.b.Meta().CommitOffsets(ctx, g.name, valid)
			}
			if err != nil {
				res.Err = errGroupStore("commit offsets", err)
			}
			m.reply(res)
			return err
		},
		done: func(err error) {
			if err != nil && save != nil {
				g.stored = false
			}
		},
	})
}

func (g *groupActor) fetchOffsets(m *fetchOffsetsMsg) {
	topics := m.req.Topics
	g.enqueue(&groupIO{
		what: "fetch offsets",
		run: func(ctx context.Context) error {
			offs, err := g.gs.b.Meta().FetchOffsets(ctx, g.name, topics)
			if err != nil {
				m.reply(FetchOffsetsResult{Err: errGroupStore("fetch offsets", err)})
				return err
			}
			m.reply(FetchOffsetsResult{Offsets: offs})
			return nil
		},
	})
}

func (g *groupActor) deleteOffsets(m *deleteOffsetsMsg) {
	if !g.exists {
		m.reply(DeleteOffsetsResult{Err: ErrGroupIDNotFound})
		return
	}
	// Offsets of an empty group may all go; a consuming group keeps those
	// of the topics it reads; other protocols keep everything.
	subscribed := func(string) bool { return false }
	if g.state != GroupEmpty {
		if g.protocolType != "consumer" {
			m.reply(DeleteOffsetsResult{Err: ErrNonEmptyGroup})
			return
		}
		subscribed = func(t string) bool { return g.subscribed == nil || g.subscribed[t] }
	}
	res := DeleteOffsetsResult{Topics: make([][]error, len(m.req.Topics))}
	var del []TopicPartitions
	for i, t := range m.req.Topics {
		res.Topics[i] = make([]error, len(t.Partitions))
		if subscribed(t.Topic) {
			for j := range t.Partitions {
				res.Topics[i][j] = ErrGroupSubscribedToTopic
			}
			continue
		}
		del = append(del, t)
	}
	g.enqueue(&groupIO{
		what: "delete offsets",
		run: func(ctx context.Context) error {
			for _, t := range del {
				if err := g.gs.b.Meta().DeleteOffsets(ctx, g.name, t.Topic, t.Partitions); err != nil {
					res.Err = errGroupStore("delete offsets of "+t.Topic, err)
					m.reply(res)
					return err
				}
			}
			m.reply(res)
			return nil
		},
	})
}

func (g *groupActor) describe() GroupDescription {
	if !g.exists {
		return GroupDescription{Group: g.name, Err: ErrGroupIDNotFound, State: GroupDead}
	}
	d := GroupDescription{Group: g.name, State: g.state, ProtocolType: g.protocolType}
	stable := g.state == GroupStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, id := range g.order {
		mem := g.members[id]
		md := GroupMemberDescription{MemberID: id, InstanceID: mem.instanceID, ClientID: mem.clientID, ClientHost: mem.clientHost}
		if stable {
			md.Metadata, md.Assignment = mem.metadata(g.protocol), mem.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

func (g *groupActor) delete(m *deleteMsg) {
	if len(g.members) > 0 || g.state != GroupEmpty {
		m.reply(ErrNonEmptyGroup)
		return
	}
	// Requests wait until the delete is done, so none sees half a group.
	g.blocked = true
	g.enqueue(&groupIO{
		what: "delete group",
		run:  func(ctx context.Context) error { return g.gs.b.Meta().DeleteGroup(ctx, g.name) },
		done: func(err error) {
			g.blocked = false
			switch {
			case errors.Is(err, meta.ErrNotFound) && !g.exists:
				m.reply(ErrGroupIDNotFound)
			case err != nil && !errors.Is(err, meta.ErrNotFound):
				m.reply(errGroupStore("delete group", err))
			default:
				g.reset()
				m.reply(nil)
			}
			if g.stopErr == nil {
				g.replay()
			}
		},
	})
}
