package gpu

import (
	"errors"
	"fmt"

	"github.com/gogpu/gputypes"
	"github.com/gogpu/wgpu"
)

// ErrNoAdapter is returned (wrapped) by New when no usable WebGPU adapter
// exists: no driver, no Vulkan loader, or only gogpu's shader interpreter,
// which graft never uses because it does not honour workgroup barriers.
var ErrNoAdapter = errors.New("no usable WebGPU adapter")

// ErrSoftwareAdapter is returned (wrapped) by New when the only adapter
// runs on the CPU (Mesa's lavapipe, SwiftShader) and Options.AllowSoftware
// is false: it computes the right answers, but slower than the CPU backend.
var ErrSoftwareAdapter = errors.New("the WebGPU adapter is a software renderer")

// Options configures New.
type Options struct {
	// AllowSoftware accepts an adapter that runs on the CPU, such as
	// Mesa's lavapipe. Tests use it; for real work the CPU backend is
	// faster than a software GPU.
	AllowSoftware bool
}

// AdapterInfo describes the adapter a Backend runs on.
type AdapterInfo struct {
	Name       string // e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)"
	Backend    string // Vulkan, Metal, DX12 or BrowserWebGPU
	DeviceType string // DiscreteGPU, IntegratedGPU, VirtualGPU, CPU or Other
	Driver     string
	// Software is true when the adapter runs on the CPU.
	Software bool
	// MaxBindingBytes is the largest storage buffer a shader may bind, so
	// the largest binding; larger buffers are split into parts (see doc.go).
	MaxBindingBytes uint64
	// ShaderF16 reports whether the adapter offers f16 arithmetic in
	// shaders (graft computes in f32 either way).
	ShaderF16 bool
}

// String is a one-line description for logs, e.g.
// "NVIDIA H200 (Vulkan, DiscreteGPU)".
func (a AdapterInfo) String() string {
	return fmt.Sprintf("%s (%s, %s)", a.Name, a.Backend, a.DeviceType)
}

// usableBackend reports whether an adapter's API is one graft trusts with
// compute shaders.
func usableBackend(b gputypes.Backend) bool {
	switch b {
	case gputypes.BackendVulkan, gputypes.BackendMetal, gputypes.BackendDX12, gputypes.BackendBrowserWebGPU:
		return true
	}
	return false
}

// openAdapter finds the adapter New would use and describes it. The caller
// releases the instance and adapter.
func openAdapter() (*wgpu.Instance, *wgpu.Adapter, AdapterInfo, error) {
	inst, err := wgpu.CreateInstance(&wgpu.InstanceDescriptor{Backends: gputypes.BackendsPrimary})
	if err != nil {
		return nil, nil, AdapterInfo{}, fmt.Errorf("gpu: %w: create instance: %v", ErrNoAdapter, err)
	}
	ad, err := inst.RequestAdapter(&wgpu.RequestAdapterOptions{PowerPreference: gputypes.PowerPreferenceHighPerformance})
	if err != nil || ad == nil {
		inst.Release()
		return nil, nil, AdapterInfo{}, fmt.Errorf("gpu: %w (%v)%s", ErrNoAdapter, err, installHint)
	}
	in := platformInfo(ad.Info())
	info := AdapterInfo{
		Name: in.Name, Backend: in.Backend.String(), DeviceType: in.DeviceType.String(), Driver: in.Driver,
		Software:        in.DeviceType == gputypes.DeviceTypeCPU,
		MaxBindingBytes: ad.Limits().MaxStorageBufferBindingSize,
		ShaderF16:       ad.Features().Contains(gputypes.FeatureShaderF16),
	}
	if !usableBackend(in.Backend) {
		ad.Release()
		inst.Release()
		return nil, nil, info, fmt.Errorf("gpu: %w: only %q on backend %s was found%s", ErrNoAdapter, in.Name, info.Backend, installHint)
	}
	return inst, ad, info, nil
}

// installHint tells a Linux user how to get a Vulkan driver.
const installHint = "; on Linux install a Vulkan driver and loader " +
	"(for a software one: apt-get install -y mesa-vulkan-drivers libvulkan1)"

// Probe reports the adapter New would choose, without creating a device.
// It returns ErrNoAdapter when there is none; a software adapter is
// returned with Software set, not as an error.
func Probe() (AdapterInfo, error) {
	inst, ad, info, err := openAdapter()
	if err != nil {
		return info, err
	}
	ad.Release()
	inst.Release()
	return info, nil
}
