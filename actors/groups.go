package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
)

// Groups is the node's consumer-group coordinator (Kafka's classic group
// protocol). Each group is one actor, started on demand by a manager actor
// that also decides which groups this node coordinates: a group belongs to
// a slot (GroupSlot) and the node serves only slots it owns
// (GroupOptions.OwnsSlot). Committed offsets and the state of each completed
// rebalance are kept in the metadata store, so another Groups (after a
// restart, or on the node that takes a slot over) continues the group.
//
// Every method answers through its reply callback exactly once, possibly
// on another goroutine and possibly before it returns; callbacks must not
// block.
type Groups struct {
	b      *Broker
	opts   GroupOptions
	system *actor.ActorSystem
	// manager is the mailbox of the manager actor; groupKind is what the
	// group actors' mailboxes share.
	manager   *mailbox
	groupKind *mailboxKind
	// pending bounds the bytes of requests queued in or parked by group
	// actors (invariant 5); shared by every group, so a lock-free counter.
	pending *budget
	closing atomic.Bool
}

// NewGroups starts the group coordinator on b's actor system and metadata
// store. Close it before closing b.
func NewGroups(b *Broker, opts GroupOptions) *Groups {
	g := &Groups{b: b, opts: opts.withDefaults(), system: b.ActorSystem()}
	g.pending = &budget{limit: g.opts.MaxPendingBytes}
	limit := int64(g.opts.MailboxRequests)
	g.groupKind = newMailboxKind(b.metrics, "group", limit, fmt.Errorf("%w: group actor stopped", ErrCoordinatorNotAvailable))
	// A group actor closes its mailbox when it goes idle (or is unloaded):
	// the requests that were on their way go back to the manager, which
	// routes them again, so unloading an idle group is invisible to
	// clients. The manager's own mailbox answers them once it has closed.
	g.groupKind.handBack = func(r Request) { g.manager.tell(&groupReturned{route: r.(*routeGroup)}) }
	managerKind := newMailboxKind(b.metrics, "group-manager", limit, fmt.Errorf("%w: coordinator stopping", ErrCoordinatorNotAvailable))
	// Several coordinators may share an actor system (a restarted one
	// starts before the old manager has stopped), so the name is unique.
	name := "groups-" + g.system.ProcessRegistry.NextId()
	mb, err := spawnOwner(g.system.Root, g.system.Root, managerKind, name, func(mb *mailbox) actor.Actor { return newGroupManager(g, mb) })
	if err != nil {
		// Only a name already taken fails a spawn, and the name is unique.
		panic(err)
	}
	g.manager = mb
	return g
}

// Options returns the coordinator's effective options.
func (g *Groups) Options() GroupOptions { return g.opts }

// Slot is the coordinator slot of a group under these options.
func (g *Groups) Slot(group string) int { return GroupSlot(group, g.opts.Slots) }

// Owns reports whether this node coordinates group (FindCoordinator).
func (g *Groups) Owns(group string) bool {
	return g.opts.OwnsSlot == nil || g.opts.OwnsSlot(g.Slot(group))
}

// Close stops every group actor after its metadata writes finish; parked
// joins and syncs are answered with ErrNotCoordinator so clients look the
// coordinator up again. Requests after Close get ErrCoordinatorNotAvailable.
// If ctx ends first, the actors still finish their writes and stop.
func (g *Groups) Close(ctx context.Context) error {
	if !g.closing.CompareAndSwap(false, true) {
		return nil
	}
	done := make(chan struct{})
	g.manager.tell(&stopGroups{slot: -1, closing: true, done: done})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop group actors: %w", ctx.Err())
	}
}

// ReleaseSlot unloads the groups of a slot (their metadata writes finish
// first; parked joins and syncs get ErrNotCoordinator). Clustering calls it
// after OwnsSlot turned false for the slot, when its lease is lost or
// handed over; if the slot is still owned, the groups reload from the
// metadata store on their next request.
func (g *Groups) ReleaseSlot(ctx context.Context, slot int) error {
	if g.closing.Load() {
		return nil // Close unloaded (or is unloading) every group
	}
	done := make(chan struct{})
	g.manager.tell(&stopGroups{slot: slot, done: done})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("release group slot %d: %w", slot, ctx.Err())
	}
}

// slotFence is the fence for the metadata writes of a group's coordinator,
// or ErrNotCoordinator when this node no longer owns the group's slot.
func (g *Groups) slotFence(group string) (meta.Fence, error) {
	slot := g.Slot(group)
	f, ok := g.b.SlotFence(slot)
	if !ok {
		return meta.Fence{}, fmt.Errorf("%w: slot %d moved", ErrNotCoordinator, slot)
	}
	return f, nil
}

// answerOnce wraps a reply callback so it releases the request's reserved
// bytes and runs at most once, whichever path answers first.
func answerOnce[R any](g *Groups, n int64, reply func(R)) func(R) {
	var done atomic.Bool
	return func(r R) {
		if !done.CompareAndSwap(false, true) {
			return
		}
		g.pending.release(n)
		if reply != nil {
			reply(r)
		}
	}
}

// admit checks what can be refused before a request reaches its group:
// the coordinator stopping, the group id, the byte budget.
func (g *Groups) admit(group string, needID bool, n int64) error {
	if g.closing.Load() {
		return fmt.Errorf("%w: coordinator stopping", ErrCoordinatorNotAvailable)
	}
	if needID && group == "" {
		return ErrInvalidGroupID
	}
	if !g.pending.tryAcquire(n) {
		return fmt.Errorf("%w: %d bytes of group requests pending", ErrCoordinatorNotAvailable, g.pending.used.Load())
	}
	return nil
}

// route sends a request to its group's actor through the manager.
func (g *Groups) route(group string, r groupRequest) {
	g.manager.request(&routeGroup{group: group, req: r})
}

// requestOverhead approximates a request's fixed cost in the byte budget.
const requestOverhead = 256

// Join handles a JoinGroup. The answer may be parked until the rebalance's
// join phase ends.
func (g *Groups) Join(req JoinRequest, reply func(JoinResult)) {
	n := int64(requestOverhead + len(req.MemberID) + len(req.InstanceID) + len(req.ClientID) + len(req.ClientHost))
	for _, p := range req.Protocols {
		n += int64(len(p.Name) + len(p.Metadata))
		for _, t := range p.Topics {
			n += int64(len(t))
		}
	}
	if err := g.admit(req.Group, true, n); err != nil {
		reply(JoinResult{Err: err, MemberID: req.MemberID, Generation: -1})
		return
	}
	reply = answerOnce(g, n, reply)
	if req.SessionTimeout < g.opts.MinSessionTimeout || req.SessionTimeout > g.opts.MaxSessionTimeout {
		reply(JoinResult{Err: fmt.Errorf("%w: %v not in [%v, %v]", ErrInvalidSessionTimeout, req.SessionTimeout, g.opts.MinSessionTimeout, g.opts.MaxSessionTimeout),
			MemberID: req.MemberID, Generation: -1})
		return
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	g.route(req.Group, &joinMsg{req: req, reply: reply})
}

// Sync handles a SyncGroup. A member's answer may be parked until the
// leader's assignment is stored.
func (g *Groups) Sync(req SyncRequest, reply func(SyncResult)) {
	n := int64(requestOverhead + len(req.MemberID) + len(req.InstanceID))
	for _, a := range req.Assignments {
		n += int64(len(a.MemberID) + len(a.Assignment))
	}
	if err := g.admit(req.Group, true, n); err != nil {
		reply(SyncResult{Err: err})
		return
	}
	g.route(req.Group, &syncMsg{req: req, reply: answerOnce(g, n, reply)})
}

// Heartbeat handles a Heartbeat; the answer is nil or the error Kafka sends.
func (g *Groups) Heartbeat(req HeartbeatRequest, reply func(error)) {
	n := int64(requestOverhead)
	if err := g.admit(req.Group, true, n); err != nil {
		reply(err)
		return
	}
	g.route(req.Group, &heartbeatMsg{req: req, reply: answerOnce(g, n, reply)})
}

// Leave handles a (batched) LeaveGroup.
func (g *Groups) Leave(req LeaveRequest, reply func(LeaveResult)) {
	n := int64(requestOverhead + 64*len(req.Members))
	if err := g.admit(req.Group, true, n); err != nil {
		reply(LeaveResult{Err: err})
		return
	}
	g.route(req.Group, &leaveMsg{req: req, reply: answerOnce(g, n, reply)})
}

// CommitOffsets handles an OffsetCommit. The answer comes once the offsets
// are in the metadata store.
func (g *Groups) CommitOffsets(req CommitRequest, reply func(CommitResult)) {
	n := int64(requestOverhead)
	for _, o := range req.Offsets {
		n += int64(64 + len(o.Topic) + len(o.Metadata))
	}
	if err := g.admit(req.Group, false, n); err != nil {
		reply(CommitResult{Err: err})
		return
	}
	g.route(req.Group, &commitMsg{req: req, reply: answerOnce(g, n, reply)})
}

// FetchOffsets handles an OffsetFetch for one group. It is ordered after
// the group's commits already received, so a commit is visible to a fetch
// sent after its answer.
func (g *Groups) FetchOffsets(req FetchOffsetsRequest, reply func(FetchOffsetsResult)) {
	n := int64(requestOverhead)
	if err := g.admit(req.Group, false, n); err != nil {
		reply(FetchOffsetsResult{Err: err})
		return
	}
	g.route(req.Group, &fetchOffsetsMsg{req: req, reply: answerOnce(g, n, reply)})
}

// DeleteOffsets handles an OffsetDelete.
func (g *Groups) DeleteOffsets(req DeleteOffsetsRequest, reply func(DeleteOffsetsResult)) {
	n := int64(requestOverhead)
	if err := g.admit(req.Group, true, n); err != nil {
		reply(DeleteOffsetsResult{Err: err})
		return
	}
	g.route(req.Group, &deleteOffsetsMsg{req: req, reply: answerOnce(g, n, reply)})
}

// gather fans one request out per group and answers with every result in
// the order of groups.
func gather[R any](g *Groups, groups []string, failed func(string, error) R, send func(group string, reply func(R))) func(reply func([]R)) {
	return func(reply func([]R)) {
		out := make([]R, len(groups))
		if len(groups) == 0 {
			reply(out)
			return
		}
		var mu sync.Mutex
		left := len(groups)
		for i, name := range groups {
			n := int64(requestOverhead)
			one := func(r R) {
				mu.Lock()
				out[i] = r
				left--
				last := left == 0
				mu.Unlock()
				if last {
					reply(out)
				}
			}
			if err := g.admit(name, false, n); err != nil {
				one(failed(name, err))
				continue
			}
			send(name, answerOnce(g, n, one))
		}
	}
}

// Describe handles DescribeGroups: one description per group, in order.
func (g *Groups) Describe(groups []string, reply func([]GroupDescription)) {
	gather(g, groups,
		func(name string, err error) GroupDescription {
			return GroupDescription{Group: name, Err: err, State: GroupDead}
		},
		func(name string, one func(GroupDescription)) { g.route(name, &describeMsg{group: name, reply: one}) },
	)(reply)
}

// Delete handles DeleteGroups: one error (nil for success) per group, in
// order. Only empty groups are deleted, with their committed offsets.
func (g *Groups) Delete(groups []string, reply func([]error)) {
	gather(g, groups,
		func(_ string, err error) error { return err },
		func(name string, one func(error)) { g.route(name, &deleteMsg{reply: one}) },
	)(reply)
}

// List handles ListGroups: the groups this node coordinates, filtered by
// state when states is not empty (compared case-insensitively, as Kafka
// does). Groups not loaded are listed from their stored state.
func (g *Groups) List(ctx context.Context, states []string, reply func(ListGroupsResult)) {
	if g.closing.Load() {
		reply(ListGroupsResult{Err: fmt.Errorf("%w: coordinator stopping", ErrCoordinatorNotAvailable)})
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(ctx, g.b.Options().IOTimeout)
		defer cancel()
		res, err := g.list(ctx, states)
		reply(ListGroupsResult{Err: err, Groups: res})
	}()
}

func (g *Groups) list(ctx context.Context, states []string) ([]GroupListing, error) {
	stored, err := g.b.Meta().ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: list groups: %w", ErrCoordinatorNotAvailable, err)
	}
	liveCh := make(chan liveAnswer, 1)
	g.manager.request(&liveGroups{reply: liveCh})
	var live []string
	select {
	case a := <-liveCh:
		if a.err != nil {
			return nil, a.err
		}
		live = a.names
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: list live groups: %w", ErrCoordinatorNotAvailable, ctx.Err())
	}
	descCh := make(chan []GroupDescription, 1)
	g.Describe(live, func(d []GroupDescription) { descCh <- d })
	var descs []GroupDescription
	select {
	case descs = <-descCh:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: describe live groups: %w", ErrCoordinatorNotAvailable, ctx.Err())
	}
	byName := map[string]GroupListing{}
	for _, d := range descs {
		if d.Err == nil {
			byName[d.Group] = GroupListing{Group: d.Group, ProtocolType: d.ProtocolType, State: d.State}
		}
	}
	isLive := map[string]bool{}
	for _, name := range live {
		isLive[name] = true
	}
	for _, sg := range stored {
		if isLive[sg.Name] || !g.Owns(sg.Name) {
			continue
		}
		s, err := decodeGroupState(sg.State)
		if err != nil {
			g.b.Options().Logger.Warn("skip group with undecodable state in ListGroups", "group", sg.Name, "err", err)
			continue
		}
		byName[sg.Name] = GroupListing{Group: sg.Name, ProtocolType: sg.ProtocolType, State: s.State}
	}
	out := make([]GroupListing, 0, len(byName))
	for _, l := range byName {
		if len(states) > 0 && !slices.ContainsFunc(states, func(s string) bool { return strings.EqualFold(s, l.State) }) {
			continue
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b GroupListing) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}

// Messages to the group manager.
type (
	// routeGroup delivers req to its group's actor, starting it if needed.
	// The group actor receives it as it is, so a request handed back from
	// a closed group mailbox still names its group.
	routeGroup struct {
		group string
		req   groupRequest
	}
	// groupReturned hands back a request that reached a group actor after
	// it closed its mailbox.
	groupReturned struct{ route *routeGroup }
	// groupRetired says a group actor closed its mailbox: it serves nothing
	// more and stops once the requests on their way are handed back.
	groupRetired struct {
		group string
		mb    *mailbox
	}
	// groupDrained says a retired group actor has stopped: every request
	// it will hand back has reached the manager before this message.
	groupDrained struct {
		group string
		mb    *mailbox
	}
	// stopGroups stops the actors of one slot (or all, slot -1) and closes
	// done once they have stopped.
	stopGroups struct {
		slot    int
		closing bool
		done    chan struct{}
	}
	// liveGroups asks for the names of the running group actors.
	liveGroups struct{ reply chan liveAnswer }
	liveAnswer struct {
		names []string
		err   error
	}
)

// A route carries a group request: refusing the route refuses the request,
// with the errors Kafka clients retry on for a coordinator.
func (m *routeGroup) fail(err error) { m.req.failGroup(coordinatorErr(err)) }

// coordinatorErr makes a refusal by a mailbox (ErrBackpressure) one of
// the errors Kafka clients retry on for a coordinator.
func coordinatorErr(err error) error {
	if errors.Is(err, ErrCoordinatorNotAvailable) || errors.Is(err, ErrNotCoordinator) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCoordinatorNotAvailable, err)
}

// size is zero: group requests are held against the coordinator's own
// byte budget (Groups.pending), reserved before they are routed.
func (m *routeGroup) size() int { return 0 }

// A handed-back request told to a manager that has closed is answered
// like any request reaching it.
func (m *groupReturned) fail(err error) { m.route.fail(err) }
func (m *groupReturned) size() int      { return 0 }

// Once the manager has closed, every group actor has stopped.
func (m *stopGroups) fail(error) { close(m.done) }
func (m *stopGroups) size() int  { return 0 }

func (m *liveGroups) fail(err error) { m.reply <- liveAnswer{err: coordinatorErr(err)} }
func (m *liveGroups) size() int      { return 0 }

// groupChild is the manager's record of one group actor.
type groupChild struct {
	mb   *mailbox
	slot int
	// retired is set once the actor closed its mailbox. Requests for the
	// group then wait in held until the actor has handed back, in back,
	// those that were on their way to it; both go to the next actor in
	// that order, the order the manager received them in.
	retired bool
	back    []*routeGroup
	held    []*routeGroup
}

// groupManager owns the map of group actors and the decision of which
// groups this node serves. Only its goroutine touches its fields.
type groupManager struct {
	gs       *Groups
	mb       *mailbox // its own
	children map[string]*groupChild
	// waiting are stopGroups requests waiting for their actors to stop.
	waiting []*stopGroups
	closing bool
	seq     int
}

func newGroupManager(gs *Groups, mb *mailbox) *groupManager {
	return &groupManager{gs: gs, mb: mb, children: map[string]*groupChild{}}
}

// Receive implements actor.Actor.
func (m *groupManager) Receive(ctx actor.Context) {
	if !m.mb.receive(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *routeGroup:
		m.route(ctx, msg)
	case *groupReturned:
		if c := m.children[msg.route.group]; c != nil {
			c.back = append(c.back, msg.route)
			return
		}
		m.route(ctx, msg.route) // not reached: the actor is drained after handing back
	case *groupRetired:
		if c := m.children[msg.group]; c != nil && c.mb == msg.mb {
			c.retired = true
		}
	case *groupDrained:
		c := m.children[msg.group]
		if c == nil || c.mb != msg.mb {
			return
		}
		delete(m.children, msg.group)
		m.gs.b.metrics.groupActors.Set(float64(len(m.children)))
		m.checkWaiting(ctx)
		for _, r := range append(c.back, c.held...) {
			m.route(ctx, r)
		}
	case *stopGroups:
		if msg.closing {
			m.closing = true
		}
		for _, c := range m.children {
			if msg.slot < 0 || c.slot == msg.slot {
				c.mb.tell(&stopGroup{err: fmt.Errorf("%w: group unloaded from this node", ErrNotCoordinator)})
			}
		}
		m.waiting = append(m.waiting, msg)
		m.checkWaiting(ctx)
	case *liveGroups:
		names := make([]string, 0, len(m.children))
		for name, c := range m.children {
			if !c.retired {
				names = append(names, name)
			}
		}
		msg.reply <- liveAnswer{names: names}
	}
}

func (m *groupManager) route(ctx actor.Context, msg *routeGroup) {
	if m.closing {
		msg.fail(fmt.Errorf("%w: coordinator stopping", ErrCoordinatorNotAvailable))
		return
	}
	slot := GroupSlot(msg.group, m.gs.opts.Slots)
	if m.gs.opts.OwnsSlot != nil && !m.gs.opts.OwnsSlot(slot) {
		msg.fail(fmt.Errorf("%w: slot %d", ErrNotCoordinator, slot))
		return
	}
	c := m.children[msg.group]
	if c == nil {
		m.seq++
		name := msg.group
		mb, err := spawnOwner(ctx, m.gs.system.Root, m.gs.groupKind, fmt.Sprintf("g-%d", m.seq),
			func(mb *mailbox) actor.Actor { return newGroupActor(m.gs, name, mb) })
		if err != nil {
			msg.fail(fmt.Errorf("%w: start group actor: %w", ErrCoordinatorNotAvailable, err))
			return
		}
		c = &groupChild{mb: mb, slot: slot}
		m.children[msg.group] = c
		m.gs.b.metrics.groupActors.Set(float64(len(m.children)))
	}
	if c.retired {
		c.held = append(c.held, msg)
		return
	}
	if !c.mb.offer(msg) {
		// The actor closed its mailbox after the last request reached it,
		// and its groupRetired is still queued behind this route.
		c.retired = true
		c.held = append(c.held, msg)
	}
}

// checkWaiting closes the done channel of every stopGroups request whose
// actors have all stopped, and closes the manager's mailbox once the
// coordinator is closing and no group actor is left.
func (m *groupManager) checkWaiting(ctx actor.Context) {
	kept := m.waiting[:0]
	for _, w := range m.waiting {
		busy := false
		for _, c := range m.children {
			if w.slot < 0 || c.slot == w.slot {
				busy = true
				break
			}
		}
		if busy {
			kept = append(kept, w)
			continue
		}
		close(w.done)
	}
	m.waiting = kept
	if m.closing && len(m.children) == 0 {
		m.mb.close(ctx)
	}
}

// errGroupStore wraps a metadata store failure as the retriable error Kafka
// clients expect from a coordinator that cannot write.
func errGroupStore(what string, err error) error {
	if errors.Is(err, ErrCoordinatorNotAvailable) || errors.Is(err, ErrNotCoordinator) {
		return err
	}
	if errors.Is(err, meta.ErrFenced) {
		// The slot moved to another node: clients look it up again.
		return fmt.Errorf("%w: %s: %w", ErrNotCoordinator, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCoordinatorNotAvailable, what, err)
}
