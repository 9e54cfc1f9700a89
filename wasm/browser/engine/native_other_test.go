//go:build !js

package engine

import (
	"context"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/internal/parity"
)

// nativeTraces runs every parity case with train.Run in this process.
func nativeTraces(t *testing.T) map[string]parity.Trace {
	t.Helper()
	out := map[string]parity.Trace{}
	for _, c := range parity.Cases() {
		m, err := model.Load(modelPath, cpu.New())
		if err != nil {
			t.Fatal(err)
		}
		tr, err := c.Run(context.Background(), m)
		m.Free()
		if err != nil {
			t.Fatal(err)
		}
		out[c.Name] = tr
	}
	return out
}
