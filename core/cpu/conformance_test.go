package cpu_test

import (
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/backend/backendtest"
	"github.com/graft-ml/graft/core/cpu"
)

// TestConformance runs the shared backend suite on the CPU backend with
// other thread counts than the oracle's, which exercises the suite itself
// and checks that results do not depend on how work is split.
func TestConformance(t *testing.T) {
	for _, threads := range []int{1, 3} {
		t.Run(cpu.NewWithThreads(threads).Name(), func(t *testing.T) {
			backendtest.Run(t, func(*testing.T) backend.Backend { return cpu.NewWithThreads(threads) })
		})
	}
}
