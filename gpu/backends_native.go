//go:build !(js && wasm)

package gpu

import (
	"github.com/gogpu/gputypes"

	// Natively the Vulkan, Metal and DX12 HAL backends register themselves
	// here; in the browser gogpu talks to navigator.gpu instead.
	_ "github.com/gogpu/wgpu/hal/allbackends"
)

// platformInfo returns what gogpu reports about a native adapter as it is:
// the HAL names its backend.
func platformInfo(in gputypes.AdapterInfo) gputypes.AdapterInfo { return in }

// aliasedBindingsAllowed is true natively: gogpu's Vulkan, Metal and DX12
// backends accept one buffer in several read-write bindings of a dispatch,
// so in-place operations bind it directly, without a copy.
const aliasedBindingsAllowed = true
