//go:build !(js && wasm)

package gpu

// Natively the Vulkan, Metal and DX12 HAL backends register themselves
// here; in the browser gogpu talks to navigator.gpu instead.
import _ "github.com/gogpu/wgpu/hal/allbackends"
