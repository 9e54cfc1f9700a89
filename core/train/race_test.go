//go:build race

package train

// raceEnabled reports a -race build, whose instrumentation allocates on its
// own schedule.
const raceEnabled = true
