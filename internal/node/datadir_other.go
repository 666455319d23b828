//go:build !unix

package node

// lockDataDir is not available here: the embedded node cannot prove that a
// previous run is dead, so it waits for that run's leases to expire.
func lockDataDir(string) (release func() error, err error) { return nil, nil }
