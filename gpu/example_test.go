package gpu_test

import (
	"fmt"
	"log"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/gpu"
)

// Pick the device the way graft's --device auto does, and multiply a
// batch of activations by a Q8_0 weight that stays quantized on the GPU.
func ExampleSelect() {
	be, note, err := gpu.Select(gpu.DeviceAuto)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(note) // which adapter, or why it runs on the CPU

	vals := make([]float32, 64*32)
	for i := range vals {
		vals[i] = float32(i%7) - 3
	}
	raw := make([]byte, 64*34) // 64 blocks of 32 values
	if err := tensor.Encode(tensor.Q8_0, vals, raw); err != nil {
		log.Fatal(err)
	}
	t, err := tensor.New("w", tensor.Q8_0, tensor.Shape{64, 32}, raw)
	if err != nil {
		log.Fatal(err)
	}
	w, err := be.Load(t)
	if err != nil {
		log.Fatal(err)
	}
	x, y := be.Zeros(4, 32), be.Zeros(4, 64)
	be.MatMul(y, x, w, backend.MatMul{TransB: true})
	out := make([]float32, 4*64)
	if err := be.Read(y, 0, out); err != nil { // waits for the GPU
		log.Fatal(err)
	}
	if g, ok := be.(*gpu.Backend); ok {
		fmt.Println(g.ReadBacks(), "read-back")
		g.Close()
	}
}

// New refuses a software adapter unless asked; Probe says what is there.
func ExampleProbe() {
	info, err := gpu.Probe()
	if err != nil {
		fmt.Println("no GPU:", err)
		return
	}
	fmt.Println(info, "software:", info.Software)
}
