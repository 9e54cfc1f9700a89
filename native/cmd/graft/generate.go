package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/tokenizer"
)

func generateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "continue a prompt",
		Long: "Continue a prompt (BOS prepended), streaming the text to stdout; with --chat, answer it as a\n" +
			"user message through the model's chat template.",
		Example: `  graft generate --model models/stories260K/stories260K.gguf --prompt "Once upon a time" --max-tokens 256
  graft generate --model M --adapter out/pip --prompt "Once upon a time" --temperature 0 --json
  graft generate --chat --model llama3.2 --prompt "Why is the sky blue?"`,
	}
	fs := cmd.Flags()
	mf := addModelFlags(fs)
	mf.addAdapterFlag(fs)
	prompt := fs.String("prompt", "", "prompt text (BOS is prepended)")
	chat := fs.Bool("chat", false, "send --prompt as a user message through the chat template and print only the answer (see graft chat)")
	system := fs.String("system", "", "with --chat: a system message")
	cf := addChatFlags(fs)
	sf := addSamplingFlags(fs, 128)
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout := cmd.OutOrStdout()
		if len(pos) > 0 {
			return usagef("unexpected arguments %q", pos)
		}
		if !*chat && (*system != "" || cf.template != "" || len(cf.vars) > 0) {
			return usagef("--system, --chat-template and --chat-template-var need --chat")
		}
		opt, err := sf.options()
		if err != nil {
			return err
		}
		m, err := mf.load()
		if err != nil {
			return err
		}
		defer m.Free()
		if m.Tokenizer == nil {
			return fmt.Errorf("%s has no tokenizer", mf.path)
		}
		var ids []int32
		if *chat {
			var msgs []data.Message
			if *system != "" {
				msgs = append(msgs, data.Message{Role: data.RoleSystem, Content: *system})
			}
			msgs = append(msgs, data.Message{Role: data.RoleUser, Content: *prompt})
			dopt, err := cf.dataOptions(m)
			if err != nil {
				return err
			}
			if ids, err = data.ChatPrompt(msgs, m.Tokenizer, dopt); err != nil {
				return err
			}
		} else {
			ids = m.Tokenizer.Encode(*prompt, true)
		}
		if len(ids) == 0 {
			return fmt.Errorf("the prompt encodes to no tokens and the tokenizer has no BOS token")
		}
		if !*asJSON {
			if *chat {
				_, err := streamReply(m, ids, opt, stdout)
				return err
			}
			// The prompt goes through the same decoder so that the first new
			// token's leading space is kept after it.
			stream := tokenizer.NewStreamDecoder(m.Tokenizer)
			for _, id := range ids {
				io.WriteString(stdout, stream.Push(id))
			}
			opt.OnToken = func(id int32) error {
				_, err := io.WriteString(stdout, stream.Push(id))
				return err
			}
			defer func() { fmt.Fprintln(stdout, stream.Flush()) }()
		}
		var out []int32
		if opt.MaxTokens >= 0 {
			if out, err = m.Generate(ids, opt); err != nil {
				return err
			}
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				Text string  `json:"text"`
				IDs  []int32 `json:"ids"`
			}{m.Tokenizer.Decode(out), nonNil(out)})
		}
		return nil
	}
	return cmd
}
