//go:build race

package segment

// raceEnabled lets slow tests shrink under the race detector, which makes
// the compression libraries many times slower.
const raceEnabled = true
