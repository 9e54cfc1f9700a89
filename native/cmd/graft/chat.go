package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tokenizer"
)

// stdin is what graft chat reads in interactive mode; tests replace it.
var stdin io.Reader = os.Stdin

// samplingFlags are the flags of the commands that generate text.
type samplingFlags struct {
	maxTokens   int
	temperature float64
	topK        int
	topP        float64
	seed        uint64
	ignoreEOS   bool
}

func addSamplingFlags(fs *pflag.FlagSet, maxTokens int) *samplingFlags {
	f := &samplingFlags{}
	fs.IntVar(&f.maxTokens, "max-tokens", maxTokens, "new tokens at most")
	fs.Float64Var(&f.temperature, "temperature", 0.8, "sampling temperature; 0 is greedy")
	fs.IntVar(&f.topK, "top-k", 40, "sample from the K most likely tokens; 0 disables")
	fs.Float64Var(&f.topP, "top-p", 0.95, "sample from the smallest set with this total probability; 1 disables")
	fs.Uint64Var(&f.seed, "seed", 0, "random seed")
	fs.BoolVar(&f.ignoreEOS, "ignore-eos", false, "keep generating past the end-of-sequence and end-of-turn tokens")
	return f
}

// options checks the flags and returns the generation options.
func (f *samplingFlags) options() (model.GenerateOptions, error) {
	switch {
	case f.maxTokens < 0:
		return model.GenerateOptions{}, usagef("--max-tokens must be ≥ 0, got %d", f.maxTokens)
	case f.temperature < 0:
		return model.GenerateOptions{}, usagef("--temperature must be ≥ 0, got %g", f.temperature)
	case f.topK < 0:
		return model.GenerateOptions{}, usagef("--top-k must be ≥ 0, got %d", f.topK)
	case f.topP < 0 || f.topP > 1:
		return model.GenerateOptions{}, usagef("--top-p must be in [0, 1], got %g", f.topP)
	}
	sampling := model.Sampling{Temperature: float32(f.temperature), TopK: f.topK, TopP: float32(f.topP), Seed: f.seed}
	if err := sampling.Validate(); err != nil {
		return model.GenerateOptions{}, usageError{err}
	}
	opt := model.GenerateOptions{Sampling: sampling, MaxTokens: f.maxTokens, StopAtEOS: !f.ignoreEOS}
	if f.maxTokens == 0 {
		opt.MaxTokens = -1 // nothing to generate
	}
	return opt, nil
}

// chatFlags choose and feed the chat template.
type chatFlags struct {
	template string
	vars     map[string]any
}

func addChatFlags(fs *pflag.FlagSet) *chatFlags {
	f := &chatFlags{}
	fs.StringVar(&f.template, "chat-template", "", chatTemplateHelp)
	fs.Var(templateVars{&f.vars}, "chat-template-var", chatTemplateVarHelp)
	return f
}

// dataOptions are the data options that render m's conversations.
func (f *chatFlags) dataOptions(m *model.Model) (data.Options, error) {
	opt := data.Options{ChatTemplate: f.template, ChatTemplateVars: f.vars}
	var err error
	opt.ModelChatTemplate, opt.ModelChatTemplateSource, err = m.ChatTemplate()
	return opt, err
}

// messageList is a flag that appends messages of one role to a shared,
// ordered conversation (--system, --message, --assistant).
type messageList struct {
	msgs *[]data.Message
	role string
}

func (l messageList) String() string { return "" }
func (l messageList) Type() string   { return "text" }
func (l messageList) Set(v string) error {
	*l.msgs = append(*l.msgs, data.Message{Role: l.role, Content: v})
	return nil
}

func chatCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "chat with a model through its chat template (interactive, or --message)",
		Long: "Chat with a model through its chat template: interactively, one message per line of stdin,\n" +
			"or answering the conversation given as --system, --message and --assistant flags.",
		Example: `  graft chat --model Qwen/Qwen2.5-0.5B-Instruct --adapter out/qa
  graft chat --model llama3.2 --system "Be brief." --message "Why is the sky blue?" --json`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	mf := addModelFlags(fs)
	mf.addAdapterFlag(fs)
	cf := addChatFlags(fs)
	sf := addSamplingFlags(fs, 512)
	var msgs []data.Message
	fs.Var(messageList{&msgs, data.RoleSystem}, "system", "system message `text` (first, or in order with the other messages)")
	fs.Var(messageList{&msgs, data.RoleUser}, "message", "user message `text`; repeat, with --assistant between, for a conversation; none: chat interactively, one message per line of stdin")
	fs.Var(messageList{&msgs, data.RoleAssistant}, "assistant", "an earlier answer `text`, in order between --message flags")
	asJSON := fs.Bool("json", false, "with --message: print one JSON object (the reply, its ids, the template and the prompt)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runChat(mf, cf, sf, msgs, *asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

func runChat(mf *modelFlags, cf *chatFlags, sf *samplingFlags, msgs []data.Message, asJSON bool, stdout, stderr io.Writer) error {
	gen, err := sf.options()
	if err != nil {
		return err
	}
	interactive := true
	for _, m := range msgs {
		if m.Role == data.RoleUser {
			interactive = false
		}
	}
	if interactive && asJSON {
		return usagef("--json needs the conversation as --message flags")
	}
	if !interactive && msgs[len(msgs)-1].Role != data.RoleUser {
		return usagef("the conversation must end with a --message for the model to answer")
	}
	m, err := mf.load()
	if err != nil {
		return err
	}
	defer m.Free()
	if m.Tokenizer == nil {
		return fmt.Errorf("%s has no tokenizer", mf.path)
	}
	opt, err := cf.dataOptions(m)
	if err != nil {
		return err
	}
	name, err := data.ChatTemplateName(m.Tokenizer, opt)
	if err != nil {
		return usageError{err}
	}
	if !interactive {
		prompt, err := data.ChatPrompt(msgs, m.Tokenizer, opt)
		if err != nil {
			return err
		}
		var out []int32
		if !asJSON {
			out, err = streamReply(m, prompt, gen, stdout)
			return err
		}
		if gen.MaxTokens >= 0 {
			if out, err = m.Generate(prompt, gen); err != nil {
				return err
			}
		}
		return writeJSON(stdout, struct {
			Text     string  `json:"text"`
			IDs      []int32 `json:"ids"`
			Template string  `json:"template"`
			Prompt   string  `json:"prompt"`
		}{m.Tokenizer.Decode(out), nonNil(out), name, promptText(m.Tokenizer, prompt)})
	}

	fmt.Fprintf(stderr, "chat template: %s; one message per line, end with EOF (Ctrl-D)\n", name)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for {
		fmt.Fprint(stderr, "> ")
		if !sc.Scan() {
			fmt.Fprintln(stderr)
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		msgs = append(msgs, data.Message{Role: data.RoleUser, Content: line})
		prompt, err := data.ChatPrompt(msgs, m.Tokenizer, opt)
		if err != nil {
			return err
		}
		out, err := streamReply(m, prompt, gen, stdout)
		if err != nil {
			return err
		}
		msgs = append(msgs, data.Message{Role: data.RoleAssistant, Content: m.Tokenizer.Decode(out)})
	}
}

// streamReply generates an answer to prompt, printing it as it comes, and
// ends the line.
func streamReply(m *model.Model, prompt []int32, gen model.GenerateOptions, stdout io.Writer) ([]int32, error) {
	stream := tokenizer.NewStreamDecoder(m.Tokenizer)
	gen.OnToken = func(id int32) error {
		_, err := io.WriteString(stdout, stream.Push(id))
		return err
	}
	var out []int32
	var err error
	if gen.MaxTokens >= 0 {
		out, err = m.Generate(prompt, gen)
	}
	fmt.Fprintln(stdout, stream.Flush())
	return out, err
}

// promptText spells a prompt out with its special tokens, as the template
// rendered it.
func promptText(tok tokenizer.Tokenizer, ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if s := tok.TokenBytes(id); len(s) > 0 {
			b.Write(s)
		} else {
			b.WriteString(tok.TokenString(id))
		}
	}
	return b.String()
}
