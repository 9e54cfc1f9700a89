package hfconfig_test

import (
	"fmt"
	"log"

	"github.com/graft-ml/graft/core/formats/hfconfig"
)

func ExampleParse() {
	text := []byte(`{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 576,
  "intermediate_size": 1536,
  "num_hidden_layers": 30,
  "num_attention_heads": 9,
  "num_key_value_heads": 3,
  "rms_norm_eps": 1e-05,
  "tie_word_embeddings": true,
  "vocab_size": 49152,
  "bos_token_id": 0,
  "eos_token_id": 0
}`)
	c, err := hfconfig.Parse(text, "SmolLM-135M/config.json")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.ModelType, c.HeadDim, c.KVDim(), c.RopeTheta, c.TieWordEmbeddings, c.MaxPositionEmbeddings)
	// Output: llama 64 192 10000 true 2048
}

func ExampleConfig_Marshal() {
	c, err := hfconfig.Parse([]byte(`{"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
		"eos_token_id": [1, 2], "initializer_range": 0.02}`), "tiny")
	if err != nil {
		log.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output:
	// {
	//   "architectures": [
	//     "Qwen2ForCausalLM"
	//   ],
	//   "bos_token_id": null,
	//   "eos_token_id": [
	//     1,
	//     2
	//   ],
	//   "head_dim": 16,
	//   "hidden_act": "silu",
	//   "hidden_size": 64,
	//   "initializer_range": 0.02,
	//   "intermediate_size": 128,
	//   "max_position_embeddings": 32768,
	//   "model_type": "qwen2",
	//   "num_attention_heads": 4,
	//   "num_hidden_layers": 2,
	//   "num_key_value_heads": 2,
	//   "rms_norm_eps": 1e-06,
	//   "rope_scaling": null,
	//   "rope_theta": 10000.0,
	//   "sliding_window": 4096,
	//   "tie_word_embeddings": false,
	//   "vocab_size": 100
	// }
}
