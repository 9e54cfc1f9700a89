package data_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/tokenizer"
)

// stories260K's tokenizer, in llama2.c's format (bundled beside the model).
func loadTokenizer() tokenizer.Tokenizer {
	raw, err := os.ReadFile("../../models/stories260K/tok512.bin")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(raw, 512)
	if err != nil {
		log.Fatal(err)
	}
	return tok
}

func ExampleTokenize() {
	tok := loadTokenizer()
	jsonl := `{"prompt": "Pip the owl said,", "completion": " \"Hoot!\""}
{"messages": [{"role": "user", "content": "Who lives in the tree?"}, {"role": "assistant", "content": "Pip does."}]}
`
	recs, err := data.ReadJSONL(strings.NewReader(jsonl), "demo.jsonl")
	if err != nil {
		log.Fatal(err)
	}
	examples, err := data.Tokenize(recs, tok, data.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	for _, ex := range examples {
		var context, targets []int32
		for i, id := range ex.IDs {
			if ex.Loss[i] {
				targets = append(targets, id)
			} else {
				context = append(context, id)
			}
		}
		fmt.Printf("%q -> %q\n", tok.Decode(context), tok.Decode(targets))
	}
	// Output:
	// "Pip the owl said," -> "\"Hoot!\""
	// "User: Who lives in the tree?\nAssistant:" -> "Pip does.\n"
}

func ExampleLoader() {
	tok := loadTokenizer()
	var recs []data.Record
	for _, s := range []string{"Pip the blue owl lived in the Mossy Hollow.", "Pip liked to fly at night.", "Dot the mouse was her friend."} {
		recs = append(recs, data.Record{Text: &s})
	}
	examples, err := data.Tokenize(recs, tok, data.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	loader, err := data.NewLoader(examples, data.LoaderOptions{Batch: 2, SeqLen: 16, Pack: true, Shuffle: true})
	if err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range loader.StepsPerEpoch() {
		b := loader.Next(rng)
		fmt.Printf("step %d: %dx%d batch, %d tokens in the loss\n", step, b.B, b.T, b.Tokens())
	}
	// The saved state resumes the loader exactly here.
	state := loader.State()
	fmt.Printf("resume at epoch %d, step %d\n", state.Epoch, state.Step)
	// Output:
	// step 0: 2x16 batch, 31 tokens in the loss
	// step 1: 2x16 batch, 26 tokens in the loss
	// resume at epoch 1, step 0
}

func ExampleSplit() {
	tok := loadTokenizer()
	var recs []data.Record
	for i := range 10 {
		s := fmt.Sprintf("Story number %d.", i)
		recs = append(recs, data.Record{Text: &s})
	}
	examples, err := data.Tokenize(recs, tok, data.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	train, eval, err := data.Split(examples, 0.2, 7)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(train), "train,", len(eval), "eval")
	// Output: 8 train, 2 eval
}
