package gpu

import (
	"errors"
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
)

// Device names Select accepts: the values of the CLI's --device flag.
const (
	DeviceCPU  = "cpu"  // the CPU backend
	DeviceGPU  = "gpu"  // this backend; an error when there is no adapter
	DeviceAuto = "auto" // a hardware GPU when there is one, else the CPU
)

// Select returns the backend a device name asks for, and a note for the
// user saying what was chosen and why (empty for the CPU when it was asked
// for by name).
//
//   - "cpu" is the CPU backend.
//   - "gpu" is this backend on the best adapter, a software one (Mesa's
//     lavapipe) included, since it was asked for by name; the note says
//     so. Without any adapter it is an error wrapping ErrNoAdapter.
//   - "auto" is this backend on a hardware adapter, and otherwise the CPU
//     backend, with a note naming the software adapter it passed over or
//     saying that there was none. It never fails.
func Select(device string) (backend.Backend, string, error) {
	switch device {
	case DeviceCPU, "":
		return cpu.New(), "", nil
	case DeviceGPU:
		g, err := New(Options{AllowSoftware: true})
		if err != nil {
			return nil, "", fmt.Errorf("--device gpu: %w", err)
		}
		note := "running on " + g.Name()
		if g.Info().Software {
			note += "; this adapter is a software renderer, slower than --device cpu"
		}
		return g, note, nil
	case DeviceAuto:
		g, err := New(Options{})
		switch {
		case err == nil:
			return g, "--device auto: running on " + g.Name(), nil
		case errors.Is(err, ErrSoftwareAdapter):
			c := cpu.New()
			return c, fmt.Sprintf("--device auto: %v; not using it: running on %s", err, c.Name()), nil
		default:
			c := cpu.New()
			return c, fmt.Sprintf("--device auto: %v; running on %s", err, c.Name()), nil
		}
	}
	return nil, "", fmt.Errorf("--device %q: want cpu, gpu or auto", device)
}
