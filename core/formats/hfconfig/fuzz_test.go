package hfconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that every config
// Parse accepts survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"model_type": "mistral", "sliding_window": null, "eos_token_id": [], "rope_parameters": {"rope_theta": 5, "rope_type": "yarn", "beta_fast": 32}, "hidden_size": 64, "intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 9}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted config: %v", err)
		}
		again, err := Parse(out, "fuzz")
		if err != nil {
			t.Fatalf("Parse of Marshal output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, again, out)
		}
	})
}
