package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tensor"
)

func ExampleOpen() {
	f, err := gguf.Open("../../../models/stories260K/stories260K.gguf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	layers, _ := f.Uint(f.ArchKey("block_count"))
	fmt.Println(f.Architecture(), "v", f.Version, "layers:", layers)

	info, _ := f.Tensor("token_embd.weight")
	fmt.Println(info.Name, info.Shape, gguf.GGMLTypeName(info.GGMLType))

	emb, err := f.ReadTensor("token_embd.weight")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(emb.Data), "bytes")
	// Output:
	// llama v 3 layers: 5
	// token_embd.weight [512 64] F32
	// 131072 bytes
}

func ExampleWrite() {
	w, err := tensor.FromFloat32("lora_a", tensor.Shape{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err != nil {
		log.Fatal(err)
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "adapter.lora.alpha", Value: float32(16)},
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, []*tensor.Tensor{w}, 0); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "adapter.gguf")
	if err != nil {
		log.Fatal(err)
	}
	alpha, _ := f.Float("adapter.lora.alpha")
	back, _ := f.ReadTensor("lora_a")
	values, _ := back.Float32s()
	fmt.Println(f.Version, alpha, back.Shape, values)
	// Output:
	// 3 16 [2 3] [1 2 3 4 5 6]
}
