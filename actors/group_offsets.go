package actors

import (
	"context"
	"errors"

	"github.com/morax-dev/morax/persistence/meta"
)

// Committed offsets and group administration (describe, delete), on the
// group actor.

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
			var fence meta.Fence
			if err == nil {
				fence, err = g.gs.slotFence(g.name)
			}
			if err == nil {
				err = g.gs.b.Meta().CommitOffsets(ctx, g.name, valid, fence)
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
		what:   "delete group",
		run:    func(ctx context.Context) error { return g.gs.b.Meta().DeleteGroup(ctx, g.name) },
		answer: meta.ErrNotFound,
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
