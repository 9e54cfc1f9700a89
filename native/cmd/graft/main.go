// Command graft loads Llama-family models, generates text, evaluates
// datasets and fine-tunes adapters of every PEFT method graft implements.
//
// Usage:
//
//	graft models [--json]
//	graft inspect PATH|--model PATH [--json]
//	graft tokenize --model M --text T [--json]
//	graft generate --model M --prompt P [--chat] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--json]
//	graft chat --model M [--adapter A] [--system S] [--message U [--assistant A --message U ...]] [--json]
//	graft eval --model M --data F.jsonl [--seq-len N] [--json]
//	graft train --model M --data F.jsonl --out DIR --steps N [--method lora|ia3|prefix-tuning|...] [--checkpointing] [--json]
//	graft train --config run.yaml|run.json [flags] [--print-config]
//	graft quantize --type q4_k_m|q5_k_m|q6_k|q8_0|q4_0 IN OUT.gguf [--overwrite]
//	graft version [--json]
//	graft help COMMAND
//	graft completion bash|zsh|fish|powershell
//
// With --json a command prints exactly one JSON object on stdout. --model
// (and inspect's PATH) also takes a Hugging Face repo id already in the
// local cache or an Ollama model already pulled: see graft models.
// graft COMMAND --help lists a command's flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/peft"
)

// commands are graft's commands, in the order help lists them. Each is
// built afresh for every command line, so that flag values never carry
// over from one run to the next (tests run many in one process).
func commands() []*cobra.Command {
	return []*cobra.Command{
		modelsCmd(),
		inspectCmd(),
		tokenizeCmd(),
		generateCmd(),
		chatCmd(),
		evalCmd(),
		exportCmd(),
		mergeCmd(),
		quantizeCmd(),
		trainCmd(),
		versionCmd(),
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status: 0, 1 for a
// failure, 2 for a mistake in the command line itself.
func run(args []string, stdout, stderr io.Writer) int {
	root, cmd, err := execute(args, stdout, stderr)
	var status exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	}
	prefix := "graft"
	if cmd != nil && cmd != root {
		prefix = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// execute runs one command line and returns the root command, the
// command that ran and its error.
func execute(args []string, stdout, stderr io.Writer) (root, cmd *cobra.Command, err error) {
	root = rootCmd(stdout, stderr)
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && !strings.HasPrefix(args[0], cobra.ShellCompRequestCmd) {
		// A misspelt command, before its flags are read as the root's.
		if c, _, _ := root.Find(args[:1]); c == root {
			return root, root, unknownCommand(root, args[0])
		}
	}
	root.SetArgs(longFlagArgs(root, args))
	cmd, err = root.ExecuteC()
	return root, cmd, err
}

// rootCmd builds the graft command and its subcommands, writing to stdout
// and stderr.
func rootCmd(stdout, stderr io.Writer) *cobra.Command {
	// Help lists the commands in the order above, not alphabetically.
	cobra.EnableCommandSorting = false
	var showVersion bool
	root := &cobra.Command{
		Use:   "graft",
		Short: "parameter-efficient fine-tuning of Llama-family models",
		Long: "graft loads Llama-family models (GGUF files, Hugging Face directories, the local Hugging Face\n" +
			"cache and Ollama store), generates text, evaluates datasets and fine-tunes adapters, saved in\n" +
			"Hugging Face PEFT's format. graft train trains every PEFT method graft implements:\n" +
			"  " + wrap(strings.Join(peft.MethodNames(), ", "), 94, "  ") + "\n" +
			"and mixed stacks of them (--method lora+prefix-tuning).",
		// Errors are printed once, by run, as one line; a mistake in the
		// command line does not bury it under the usage.
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				return printVersion(cmd.OutOrStdout(), false)
			}
			// No command: the help, and the status of a usage error.
			cmd.HelpFunc()(cmd, args)
			return exitStatus(2)
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print graft's version (the same as graft version)")
	root.Flags().SortFlags = false
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetHelpFunc(helpFunc)
	root.SetHelpCommand(helpCmd())
	root.SetFlagErrorFunc(flagError)
	root.SuggestionsMinimumDistance = 2
	for _, c := range commands() {
		c.Flags().SortFlags = false
		root.AddCommand(c)
	}
	// Added now rather than when the command line runs, so that a
	// misspelt command is told from these.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" { // cobra's, worded as graft's others are
			c.Short = "print a shell completion script: bash, zsh, fish or powershell"
		}
	}
	return root
}

// helpCmd is graft help COMMAND: the same text as graft COMMAND --help.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show a command's help (the same as graft COMMAND --help)",
		RunE: func(c *cobra.Command, args []string) error {
			root := c.Root()
			target, rest, err := root.Find(args)
			if err != nil {
				return usageError{err}
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest[0])
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		},
	}
}

// unknownCommand is the one-line error for a command graft does not have,
// with the nearest names.
func unknownCommand(parent *cobra.Command, name string) error {
	if s := parent.SuggestionsFor(name); len(s) > 0 {
		return usagef("unknown command %q; did you mean %s?", name, quoteJoin(s))
	}
	return usagef("unknown command %q (graft --help lists the commands)", name)
}

// quoteJoin lists names, quoted, joined by "or".
func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, " or ")
}

// noArgs is cobra.Args for commands that take flags only.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	return nil
}

// usageError marks errors in the command line itself (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitStatus ends graft with a status and nothing more to print.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
