package safetensors_test

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
)

func ExampleWrite() {
	w, err := tensor.FromFloat32("lora_A.weight", tensor.Shape{2, 2}, []float32{1, 2, 3, 4})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []*tensor.Tensor{w}, map[string]string{"format": "pt"}); err != nil {
		log.Fatal(err)
	}
	f, err := safetensors.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "in-memory")
	if err != nil {
		log.Fatal(err)
	}
	for _, info := range f.Tensors {
		fmt.Println(info.Name, info.DTypeName, info.Shape, info.Begin, info.End)
	}
	got, err := f.ReadTensor("lora_A.weight")
	if err != nil {
		log.Fatal(err)
	}
	values, _ := got.Float32s()
	fmt.Println(values, f.Metadata["format"])
	// Output:
	// lora_A.weight F32 [2 2] 0 16
	// [1 2 3 4] pt
}

func ExampleOpenDir() {
	dir, err := os.MkdirTemp("", "graft-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	a, _ := tensor.FromFloat32("model.embed_tokens.weight", tensor.Shape{2, 2}, []float32{1, 2, 3, 4})
	b, _ := tensor.FromFloat32("model.norm.weight", tensor.Shape{2}, []float32{1, 1})
	// 16-byte shards force one tensor per shard, with an index.
	if err := safetensors.WriteSharded(dir, []*tensor.Tensor{a, b}, 16, map[string]string{"format": "pt"}); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	norm, err := set.ReadTensor("model.norm.weight")
	if err != nil {
		log.Fatal(err)
	}
	shard, _ := set.Shard("model.norm.weight")
	fmt.Println(set.Names(), norm.Shape, filepath.Base(shard.Name))
	// Output:
	// model-00001-of-00002.safetensors
	// model-00002-of-00002.safetensors
	// model.safetensors.index.json
	// [model.embed_tokens.weight model.norm.weight] [2] model-00002-of-00002.safetensors
}
