//go:build race

package host

// raceEnabled reports a -race build, whose instrumented host kernels make
// the long-running checks too slow to repeat there (test-native runs them).
const raceEnabled = true
