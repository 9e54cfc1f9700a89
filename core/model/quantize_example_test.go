package model_test

import (
	"fmt"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

// QuantizeNF4 turns a loaded model into a QLoRA base: the decoder
// projections become NF4 (here with double-quantized scales), while the
// embedding, norms and output head keep their type. Adapters attached
// afterwards train on top of it.
func ExampleQuantizeNF4() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		panic(err)
	}
	defer m.Free()
	if err := model.QuantizeNF4(m, true); err != nil {
		panic(err)
	}
	fmt.Println(m.WeightDTypes)
	fmt.Println(m.Layers[0].Q.Weight.DType(), m.Embed.DType())
	// Output:
	// map[F32:13 NF4:35]
	// NF4 F32
}
