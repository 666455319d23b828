package actors

import (
	"slices"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// producerWindowSize is how many recent batches an idempotent producer's
// window remembers, as Kafka does (max.in.flight.requests <= 5).
const producerWindowSize = 5

// producerTable is the idempotence state of a partition's producers. Owned
// by the partition actor: one table for what is committed and one for what
// is committed or pending.
type producerTable map[int64]*meta.ProducerState

func newProducerTable(states []meta.ProducerState) producerTable {
	t := make(producerTable, len(states))
	for i := range states {
		s := states[i]
		s.Batches = slices.Clone(s.Batches)
		t[s.ProducerID] = &s
	}
	return t
}

func (t producerTable) clone() producerTable {
	c := make(producerTable, len(t))
	for id, s := range t {
		cp := *s
		cp.Batches = slices.Clone(s.Batches)
		c[id] = &cp
	}
	return c
}

// check decides what to do with an idempotent batch: a duplicate of a
// remembered batch (dup is set), a valid next batch (nil, nil), or an error.
func (t producerTable) check(h segment.BatchHeader) (dup *meta.ProducerBatch, err error) {
	s := t[h.ProducerID]
	lastSeq := h.BaseSequence + h.LastOffsetDelta // int32 wraps as Kafka's sequences do
	if s == nil {
		// Nothing known (new producer, or its state expired): accept any
		// starting sequence, as Kafka does for an unknown producer.
		return nil, nil
	}
	if h.ProducerEpoch < s.ProducerEpoch {
		return nil, ErrProducerFenced
	}
	if h.ProducerEpoch > s.ProducerEpoch {
		if h.BaseSequence != 0 {
			return nil, ErrOutOfOrderSequence
		}
		return nil, nil
	}
	for i := range s.Batches {
		pb := &s.Batches[i]
		if pb.FirstSeq == h.BaseSequence && pb.LastSeq == lastSeq {
			return pb, nil
		}
	}
	if len(s.Batches) == 0 {
		return nil, nil
	}
	if last := s.Batches[len(s.Batches)-1].LastSeq; h.BaseSequence != nextSeq(last) {
		return nil, ErrOutOfOrderSequence
	}
	return nil, nil
}

// record adds a batch to its producer's window.
func (t producerTable) record(h segment.BatchHeader, base int64, now int64) meta.ProducerState {
	s := t[h.ProducerID]
	if s == nil || h.ProducerEpoch != s.ProducerEpoch {
		s = &meta.ProducerState{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch}
		t[h.ProducerID] = s
	}
	s.Batches = append(s.Batches, meta.ProducerBatch{
		FirstSeq:   h.BaseSequence,
		LastSeq:    h.BaseSequence + h.LastOffsetDelta,
		BaseOffset: base,
		LastOffset: base + int64(h.LastOffsetDelta),
		Timestamp:  h.MaxTimestamp,
	})
	if len(s.Batches) > producerWindowSize {
		s.Batches = slices.Delete(s.Batches, 0, len(s.Batches)-producerWindowSize)
	}
	s.LastUpdate = now
	cp := *s
	cp.Batches = slices.Clone(s.Batches)
	return cp
}

func nextSeq(seq int32) int32 {
	if seq == 1<<31-1 {
		return 0
	}
	return seq + 1
}

// list returns the table's states, for Describe.
func (t producerTable) list() []meta.ProducerState {
	out := make([]meta.ProducerState, 0, len(t))
	for _, s := range t {
		cp := *s
		cp.Batches = slices.Clone(s.Batches)
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b meta.ProducerState) int { return int(a.ProducerID - b.ProducerID) })
	return out
}
