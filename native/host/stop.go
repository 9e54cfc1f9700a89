package host

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/tetratelabs/wazero/api"

	"github.com/graft-ml/graft/native/host/internal/wasmstop"
)

// Exact deadlines. A host that is not Cooperative runs the plugin with a
// stop flag that the guest checks at every loop iteration (package
// wasmstop): a call arms it, and once the call's context is done the flag
// goes up and the guest traps at its next iteration, wherever it is; the
// instance is then closed, its state being whatever the trap left. This
// is the guarantee wazero's WithCloseOnContextDone gives, at the same
// places, without its cost: wazero's check calls from compiled code into
// the Go runtime at every loop header, and Go's WebAssembly output has one
// in every function, so a guest's own code (tokenizing, allocation, the
// ABI's decoding) ran two to seven times slower than in cooperative mode.
// The flag costs a load and a branch.

// lastStoppable memoizes stoppable's latest result by the plugin's hash:
// the hosts of one process usually run the same plugin, and instrumenting
// it takes tens of milliseconds. One entry, so that a process trying many
// plugins keeps no more than one rewritten copy.
var lastStoppable struct {
	sync.Mutex
	key [sha256.Size]byte
	out []byte
}

// stoppable returns wasm with the stop flag and its checks.
func stoppable(wasm []byte) ([]byte, error) {
	key := sha256.Sum256(wasm)
	last := &lastStoppable
	last.Lock()
	defer last.Unlock()
	if last.out != nil && last.key == key {
		return last.out, nil
	}
	out, err := wasmstop.Instrument(wasm)
	if err != nil {
		return nil, err
	}
	last.key, last.out = key, out
	return out, nil
}

// deadlineChecks returns the module to compile for the deadline mode:
// the plugin with the stop flag for exact deadlines, or the plugin as it
// is, for cooperative ones and, with wazeroDeadlines, for a plugin the
// instrumenter cannot rewrite, which then gets wazero's own checks.
func deadlineChecks(plugin []byte, cooperative bool) (wasm []byte, wazeroDeadlines bool) {
	if cooperative {
		return plugin, false
	}
	if wasm, err := stoppable(plugin); err == nil {
		return wasm, false
	}
	return plugin, true
}

// stopFlag finds an instance's stop flag, when the host instrumented the
// plugin (instrumented); nil otherwise.
func stopFlag(mod api.Module, instrumented bool) api.MutableGlobal {
	if !instrumented {
		return nil
	}
	g, _ := mod.ExportedGlobal(wasmstop.Global).(api.MutableGlobal)
	return g
}

// armStop raises the instance's stop flag once ctx is done, until the
// returned function disarms it. Disarming waits for a raise in progress,
// and lowers the flag again: a call that returned before the guest
// noticed finished its work, and the instance stays usable (one that
// trapped is closed by its caller).
func (in *Instance) armStop(ctx context.Context) (disarm func()) {
	if in.stop == nil || ctx.Done() == nil {
		return func() {}
	}
	raised := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		in.stop.Set(1)
		close(raised)
	})
	return func() {
		if !cancel() {
			<-raised
			in.stop.Set(0)
		}
	}
}
