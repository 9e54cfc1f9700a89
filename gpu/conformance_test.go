package gpu

import (
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/backend/backendtest"
)

// TestConformance runs the shared backend suite against the CPU oracle.
func TestConformance(t *testing.T) {
	g := testBackend(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend { return g })
}
