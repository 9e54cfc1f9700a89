package cpu_test

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// A linear layer y = x W^T with a Q8_0 weight: the weight stays quantized
// in the backend and is dequantized a few rows at a time inside MatMul.
func Example() {
	be := cpu.NewWithThreads(2)
	fmt.Println(be.Threads(), "threads") // Name also says which kernels run: cpu.Kernels()

	// W is [out=2, in=32]: row 0 is all 1, row 1 counts 0..31 / 8.
	w := make([]float32, 64)
	for j := range 32 {
		w[j], w[32+j] = 1, float32(j)/8
	}
	data := make([]byte, 2*tensor.Q8_0.BlockBytes())
	if err := tensor.Encode(tensor.Q8_0, w, data); err != nil {
		panic(err)
	}
	wt, err := tensor.New("proj.weight", tensor.Q8_0, tensor.Shape{2, 32}, data)
	if err != nil {
		panic(err)
	}
	weight, err := be.Load(wt)
	if err != nil {
		panic(err)
	}

	x := be.Zeros(1, 32) // one token
	ones := make([]float32, 32)
	for i := range ones {
		ones[i] = 1
	}
	if err := be.Write(x, 0, ones); err != nil {
		panic(err)
	}
	y := be.Zeros(1, 2)
	be.MatMul(y, x, weight, backend.MatMul{TransB: true})

	out := make([]float32, 2)
	if err := be.Read(y, 0, out); err != nil {
		panic(err)
	}
	fmt.Printf("%s %v -> y %.2f\n", weight.DType(), weight.Shape(), out)
	// Output:
	// 2 threads
	// Q8_0 [2 32] -> y [32.00 62.01]
}

// Training a row of logits toward a target: cross-entropy gives the loss
// and its gradient in one pass, and AdamW applies the update.
func ExampleBackend_CrossEntropy() {
	be := cpu.New()
	logits := be.Zeros(1, 4)
	grad := be.Zeros(1, 4)
	m, v := be.Zeros(1, 4), be.Zeros(1, 4)
	target := []int32{2}
	for step := 1; step <= 50; step++ {
		loss := be.CrossEntropy(grad, logits, target, nil, 1)
		if step == 1 || step == 50 {
			fmt.Printf("step %d: loss %.3f\n", step, loss)
		}
		be.AdamWStep(logits, grad, m, v, backend.AdamW{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: step})
	}
	// Output:
	// step 1: loss 1.386
	// step 50: loss 0.018
}
