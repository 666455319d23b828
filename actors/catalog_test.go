package actors_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// failingTopicReads is a metadata store whose topic reads fail while
// armed, as they do while PostgreSQL restarts.
type failingTopicReads struct {
	meta.Store
	fail atomic.Bool
}

var errStoreDown = errors.New("failed to connect: the database system is shutting down")

func (s *failingTopicReads) Topic(ctx context.Context, name string) (meta.Topic, error) {
	if s.fail.Load() {
		return meta.Topic{}, errStoreDown
	}
	return s.Store.Topic(ctx, name)
}

func (s *failingTopicReads) TopicByID(ctx context.Context, id meta.TopicID) (meta.Topic, error) {
	if s.fail.Load() {
		return meta.Topic{}, errStoreDown
	}
	return s.Store.TopicByID(ctx, id)
}

// TestTopicLoadFailureIsStorageError: a topic that cannot be read because
// the metadata store is away is ErrStorage (retriable: KAFKA_STORAGE_ERROR,
// HTTP 503), not an unclassified error. The fault suite found Metadata
// answering UNKNOWN_SERVER_ERROR for a topic during a PostgreSQL restart,
// on which franz-go fails every buffered record of the topic instead of
// retrying.
func TestTopicLoadFailureIsStorageError(t *testing.T) {
	be := embedded(t)
	store := &failingTopicReads{Store: be.meta}
	be.meta = store
	b := startBroker(t, be, testOptions("node-1"))
	tp := createTopic(t, b, "load-fails", 1, nil)
	store.fail.Store(true)
	ctx := context.Background()
	if _, err := b.RefreshTopic(ctx, tp.Name); !errors.Is(err, actors.ErrStorage) || !errors.Is(err, errStoreDown) {
		t.Errorf("RefreshTopic with the store down: %v, want ErrStorage wrapping the store's error", err)
	}
	if _, err := b.TopicByID(ctx, meta.TopicID{1}); !errors.Is(err, actors.ErrStorage) {
		t.Errorf("TopicByID with the store down: %v, want ErrStorage", err)
	}
	store.fail.Store(false)
	if _, err := b.RefreshTopic(ctx, "no-such-topic"); !errors.Is(err, actors.ErrUnknownTopic) || errors.Is(err, actors.ErrStorage) {
		t.Errorf("RefreshTopic of a missing topic: %v, want ErrUnknownTopic only", err)
	}
}
