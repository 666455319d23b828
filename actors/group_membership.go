package actors

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// The classic group membership protocol: join, sync, heartbeat, leave
// and the rebalances they drive. All of it runs on the group actor.

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
