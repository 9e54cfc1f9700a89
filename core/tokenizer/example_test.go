package tokenizer_test

import (
	"fmt"
	"log"
	"os"

	"github.com/graft-ml/graft/core/tokenizer"
)

func ExampleLoadLlama2C() {
	data, err := os.ReadFile("../../models/stories260K/tok512.bin")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(data, 512)
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("Once upon a time", true)
	var pieces []string
	for _, id := range ids[1:] {
		pieces = append(pieces, tok.TokenString(id))
	}
	fmt.Println(ids)
	fmt.Printf("%q\n", pieces)
	fmt.Printf("%q\n", tok.Decode(ids))
	// Output:
	// [1 403 407 261 378]
	// ["▁Once" "▁upon" "▁a" "▁time"]
	// "Once upon a time"
}

func ExampleNewSentencePiece() {
	// A vocabulary as GGUF stores it, without byte tokens: characters it
	// lacks become the unknown token.
	tok, err := tokenizer.NewSentencePiece(tokenizer.SentencePieceConfig{
		Tokens:         []string{"<unk>", "<s>", "</s>", "▁", "h", "i", "hi", "▁hi"},
		Scores:         []float32{0, 0, 0, -1, -1, -1, -2, -3},
		BOS:            1,
		EOS:            2,
		UNK:            0,
		AddSpacePrefix: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Encode("hi hi!", true))
	// Output: [1 7 7 0]
}

func ExampleBuildGPT2TokenizerJSON() {
	enc, err := os.ReadFile("../../testdata/gpt2/encoder.json")
	if err != nil {
		log.Fatal(err)
	}
	merges, err := os.ReadFile("../../testdata/gpt2/vocab.bpe")
	if err != nil {
		log.Fatal(err)
	}
	js, err := tokenizer.BuildGPT2TokenizerJSON(enc, merges)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.ParseHFTokenizer(js, "gpt2/tokenizer.json")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Encode("Hello world<|endoftext|>", false))
	// Output: [15496 995 50256]
}

func ExampleParseHFTokenizer() {
	// A toy byte-level vocabulary: "Ġ" is GPT-2's spelling of a space byte.
	js := `{
	  "added_tokens": [{"id": 5, "content": "<|end|>", "special": true}],
	  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
	  "decoder": {"type": "ByteLevel"},
	  "model": {"type": "BPE",
	    "vocab": {"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġab": 4},
	    "merges": ["a b", "Ġ ab"]}
	}`
	tok, err := tokenizer.ParseHFTokenizer([]byte(js), "toy.json")
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("ab ab<|end|>", false)
	fmt.Println(ids, tok.EOS())
	fmt.Printf("%q\n", tok.Decode(ids))
	// Output:
	// [3 4 5] -1
	// "ab ab"
}

func ExampleStreamDecoder() {
	data, err := os.ReadFile("../../models/stories260K/tok512.bin")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(data, 512)
	if err != nil {
		log.Fatal(err)
	}
	// "日" is not in this vocabulary, so it arrives as three byte tokens;
	// the decoder holds them back until the character is complete.
	d := tokenizer.NewStreamDecoder(tok)
	for _, id := range tok.Encode("a 日", true) {
		fmt.Printf("%d:%q ", id, d.Push(id))
	}
	fmt.Printf("flush:%q\n", d.Flush())
	// Output: 1:"" 261:"a" 410:" " 233:"" 154:"" 168:"日" flush:""
}
