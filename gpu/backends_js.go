//go:build js && wasm

package gpu

import "github.com/gogpu/gputypes"

// platformInfo completes what gogpu reports about an adapter. In the
// browser gogpu talks to navigator.gpu directly and leaves the adapter's
// Backend unset (BackendEmpty): there is no other API it could be, so the
// adapter navigator.gpu returned is the browser's WebGPU.
func platformInfo(in gputypes.AdapterInfo) gputypes.AdapterInfo {
	if in.Backend == gputypes.BackendEmpty {
		in.Backend = gputypes.BackendBrowserWebGPU
	}
	return in
}

// aliasedBindingsAllowed is false in the browser: WebGPU rejects a dispatch
// that binds one buffer to two read-write storage bindings, so
// unaliasLocked binds a copy instead.
const aliasedBindingsAllowed = false
