package tensor_test

import (
	"fmt"

	"github.com/graft-ml/graft/core/tensor"
)

// QuantizeNF4 packs a weight into bitsandbytes' NF4 layout; the result is
// the Data of a tensor of dtype NF4, and any element range decodes on its
// own, here the second row of a [2, 3] weight, which lies inside the
// first 64-element block.
func ExampleQuantizeNF4() {
	w := []float32{0.5, -1, 0.25, 0, 0.75, -0.125}
	q := tensor.QuantizeNF4(w, false)
	t, err := tensor.New("w", tensor.NF4, tensor.Shape{2, 3}, q.Bytes())
	if err != nil {
		panic(err)
	}
	row := make([]float32, 3)
	if err := tensor.DequantizeNF4Range(q, 3, row); err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes, absmax %v, codes %x\n", len(t.Data), q.Absmax[0], q.Codes)
	fmt.Printf("row 1: %.4f\n", row)
	// Output:
	// 19 bytes, absmax 1, codes c0a7e6
	// row 1: [0.0000 0.7230 -0.0911]
}
