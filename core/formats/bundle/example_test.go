package bundle_test

import (
	"fmt"

	"github.com/graft-ml/graft/core/formats/bundle"
)

func Example() {
	data, err := bundle.Encode(map[string][]byte{
		"adapter_config.json":       []byte(`{"peft_type": "LORA"}`),
		"adapter_model.safetensors": {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	files, err := bundle.Decode(data, "adapter.msgpack")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(files["adapter_config.json"]), len(files["adapter_model.safetensors"]))

	_, err = bundle.Decode([]byte(`{}`), "adapter.msgpack")
	fmt.Println(err)
	// Output:
	// {"peft_type": "LORA"} 16
	// bundle adapter.msgpack: the top level is an integer, want a map (not a graft adapter bundle?)
}
