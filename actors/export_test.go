package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/actors/partitionpb"
)

// SpawnGateway starts the gateway actor without protoactor remote, for
// tests that send it requests from the broker's own actor system (a second
// remote in one test process would race on gRPC's global logger).
func SpawnGateway(b *Broker, cfg RemoteConfig) (*actor.PID, error) {
	return spawnGateway(b, cfg.withDefaults())
}

// RemoteErrorForTest decodes an error as a sending node would.
func RemoteErrorForTest(e *partitionpb.Error) error { return decodeError(e, "test") }
