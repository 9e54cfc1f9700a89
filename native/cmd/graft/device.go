package main

import (
	"fmt"
	"io"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/gpu"
)

// deviceHelp is the usage text of --device.
const deviceHelp = "where to run: cpu, gpu (WebGPU: Vulkan, Metal or DX12) or auto (a hardware GPU if there is one, else cpu)"

// openDevice returns the backend --device names. For gpu and auto it tells
// stderr which adapter was chosen, or why auto fell back to the CPU; gpu
// without a usable adapter is an error that says what to install.
func openDevice(name string, stderr io.Writer) (backend.Backend, error) {
	be, note, err := gpu.Select(name)
	if err != nil {
		return nil, err
	}
	if note != "" {
		fmt.Fprintln(stderr, "graft:", note)
	}
	return be, nil
}
