package actors

import (
	"context"
	"errors"
	"time"

	"github.com/morax-dev/morax/persistence/objstore"
)

// retentionLoop asks every running partition to apply retention once per
// RetentionInterval.
func (b *Broker) retentionLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.registry.tell(&retentionTick{})
		}
	}
}

// sweepLoop removes orphan segment objects: uploaded but never committed
// (a crash or failure between upload and commit), or left behind by a
// delete that failed half way. It runs every OrphanMinAge/4.
func (b *Broker) sweepLoop(ctx context.Context) {
	t := time.NewTicker(max(b.opts.OrphanMinAge/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := b.SweepOrphans(ctx)
			if err != nil && ctx.Err() == nil {
				b.opts.Logger.Warn("orphan sweep", "err", err)
			} else if n > 0 {
				b.opts.Logger.Info("orphan sweep removed objects", "count", n)
			}
		}
	}
}

// SweepOrphans deletes segment objects older than OrphanMinAge that no
// committed segment refers to, and returns how many it deleted. Younger
// objects may belong to a flush between upload and commit, so they stay.
// When the store writes through temporary files (objstore.StaleTempRemover),
// it also deletes those that crashed Puts left, past the same age: no live
// Put lasts that long.
func (b *Broker) SweepOrphans(ctx context.Context) (int, error) {
	cutoff := time.Now().Add(-b.opts.OrphanMinAge)
	var batch []string
	deleted := 0
	check := func() error {
		if len(batch) == 0 {
			return nil
		}
		committed, err := b.meta.CommittedKeys(ctx, batch)
		if err != nil {
			return err
		}
		for _, k := range batch {
			if committed[k] {
				continue
			}
			if err := b.objects.Delete(ctx, k); err != nil {
				return err
			}
			deleted++
			b.metrics.orphansDeleted.Inc()
		}
		batch = batch[:0]
		return nil
	}
	err := b.objects.List(ctx, "seg/", func(o objstore.ObjectInfo) error {
		if o.LastModified.After(cutoff) {
			return nil
		}
		batch = append(batch, o.Key)
		if len(batch) >= 500 {
			return check()
		}
		return nil
	})
	if err == nil {
		err = check()
	}
	if r, ok := b.objects.(objstore.StaleTempRemover); ok {
		n, terr := r.RemoveStaleTemps(ctx, b.opts.OrphanMinAge)
		if n > 0 {
			b.opts.Logger.Info("orphan sweep removed stale temporary files", "count", n)
		}
		err = errors.Join(err, terr)
	}
	return deleted, err
}
