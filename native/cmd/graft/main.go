// Command graft loads Llama-family models, generates text, evaluates
// datasets and fine-tunes adapters.
//
// Usage:
//
//	graft models [--json]
//	graft inspect PATH [--json]
//	graft tokenize --model M --text T [--json]
//	graft generate --model M --prompt P [--chat] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--json]
//	graft chat --model M [--adapter A] [--system S] [--message U [--assistant A --message U ...]] [--json]
//	graft eval --model M --data F.jsonl [--seq-len N] [--json]
//	graft train --model M --data F.jsonl --out DIR --steps N [--method lora] [--checkpointing] [--json]
//	graft train --config run.yaml|run.json [flags] [--print-config]
//
// With --json a command prints exactly one JSON object on stdout. --model
// (and inspect's PATH) also takes a Hugging Face repo id already in the
// local cache or an Ollama model already pulled: see graft models.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"models", "list the models in the local Hugging Face cache and Ollama store", runModels},
		{"inspect", "show a model's architecture, tensors and tokenizer", runInspect},
		{"tokenize", "print the token ids of a text", runTokenize},
		{"generate", "continue a prompt", runGenerate},
		{"chat", "chat with a model through its chat template (interactive, or --message)", runChat},
		{"eval", "score a JSONL dataset: loss and perplexity", runEval},
		{"export", "export an adapter as a GGUF LoRA for llama.cpp or a msgpack bundle", runExport},
		{"merge", "merge adapters into the base and save it as GGUF or Hugging Face safetensors", runMerge},
		{"train", "fine-tune an adapter of any PEFT method and save it in its reference format", runTrain},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "graft %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "graft %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "graft: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: graft COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'graft COMMAND --help' for a command's flags")
}

// usageError marks errors in the command line itself (exit status 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// parseFlags parses flags that may come before or after positional
// arguments (graft inspect PATH --json) and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
