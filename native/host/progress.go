package host

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// progressKey carries a call's progress callback in its context, which
// wazero hands to the host functions the guest calls.
type progressKey struct{}

// progressImport is graft.progress: it decodes the guest's abi.Progress
// and passes it to the call's callback; a callback error (or a malformed
// message) asks the guest to stop.
func progressImport(ctx context.Context, m api.Module, ptr, n uint32) uint32 {
	cb, _ := ctx.Value(progressKey{}).(func(abi.Progress) error)
	if cb == nil {
		return 0
	}
	raw, ok := m.Memory().Read(ptr, n)
	if !ok {
		return 1
	}
	var p abi.Progress
	if err := abi.Decode(raw, &p); err != nil {
		return 1
	}
	if err := cb(p); err != nil {
		return 1
	}
	return 0
}

// interruptedImport is graft.interrupted: whether the running call's
// context is done, so the guest should stop at its next safe point.
func interruptedImport(ctx context.Context) uint32 {
	if ctx.Err() != nil {
		return 1
	}
	return 0
}
