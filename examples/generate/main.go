// Command generate continues a prompt with the bundled stories260K through
// graft's Go API; it is the README's "Go API" example.
//
//	go run ./examples/generate            # from the repository root
package main

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

func main() {
	if err := generate(os.Stdout, "models/stories260K/stories260K.gguf", "Once upon a time"); err != nil {
		log.Fatal(err)
	}
}

// generate prints text and its greedy continuation by the model at path.
func generate(w io.Writer, path, text string) error {
	m, err := model.Load(path, cpu.New())
	if err != nil {
		return err // names the file (run from elsewhere: "stat models/...: no such file or directory")
	}
	defer m.Free()
	if m.Tokenizer == nil {
		return fmt.Errorf("%s has no tokenizer", path)
	}
	prompt := m.Tokenizer.Encode(text, true) // BOS first
	ids, err := m.Generate(prompt, model.GenerateOptions{
		Sampling:  model.Sampling{Temperature: 0}, // greedy
		MaxTokens: 64,
		StopAtEOS: true,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, text+m.Tokenizer.Decode(ids))
	return err
}
