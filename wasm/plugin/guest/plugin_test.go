package guest

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

func TestRejectsBadRequests(t *testing.T) {
	p := New(nil, nil)
	envelope := func(op string, args []byte) []byte {
		b, err := abi.Encode(&abi.Request{Op: op, Args: args})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		req  []byte
		code string
		want string
	}{
		{"empty", nil, abi.CodeBadRequest, "malformed request"},
		{"not msgpack", []byte{0xc1}, abi.CodeBadRequest, "malformed request"},
		{"truncated", envelope(abi.OpInfo, nil)[:3], abi.CodeBadRequest, "malformed request"},
		{"trailing bytes", append(envelope(abi.OpInfo, nil), 0x00), abi.CodeBadRequest, "after the value"},
		{"unknown op", envelope("fly", nil), abi.CodeBadRequest, `unknown operation "fly"`},
		{"args of the wrong type", envelope(abi.OpGenerate, []byte{0xa3, 'a', 'b', 'c'}), abi.CodeBadRequest, "malformed arguments"},
		{"missing args", envelope(abi.OpGenerate, nil), abi.CodeBadRequest, "malformed arguments"},
		{"no model", envelope(abi.OpGenerate, []byte{0x80}), abi.CodeNoModel, "no model is loaded"},
		{"corrupt model", envelope(abi.OpLoadModel, mustEncode(t, &abi.LoadModelArgs{Name: "junk.gguf", GGUF: []byte("GGUF junk")})), abi.CodeFailed, "junk.gguf"},
		{"unknown adapter", envelope(abi.OpExportAdapter, mustEncode(t, &abi.ExportArgs{Name: "nope"})), abi.CodeNotFound, `"nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp abi.Response
			if err := abi.Decode(p.Handle(tc.req), &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Code != tc.code || !strings.Contains(resp.Error, tc.want) {
				t.Fatalf("got %s: %q, want %s: ...%s...", resp.Code, resp.Error, tc.code, tc.want)
			}
			if len(resp.Result) != 0 {
				t.Fatalf("an error response carries a result: %x", resp.Result)
			}
		})
	}
	// The plugin still works after all of that.
	var info abi.Info
	mustCall(t, p, abi.OpInfo, nil, &info)
	if info.ABIVersion != abi.Version || info.Model != nil {
		t.Fatalf("info %+v", info)
	}
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := abi.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMatchesCore checks that the plugin's answers are the core's own:
// the same logits, loss and greedy tokens as model.Load and friends.
func TestMatchesCore(t *testing.T) {
	p := loaded(t)
	m, err := model.Load(modelPath, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()

	const text = "Once upon a time, there was a little girl named Lily."
	var ev abi.EvalResult
	mustCall(t, p, abi.OpEval, &abi.EvalArgs{Texts: []string{text}, Logits: true}, &ev)
	ids := m.Tokenizer.Encode(text, true)
	st, err := m.SequenceLoss(ids)
	if err != nil {
		t.Fatal(err)
	}
	if ev.SumNLL != st.SumNLL || ev.Tokens != st.Tokens || ev.Loss != st.Loss() {
		t.Fatalf("eval %+v, core %+v", ev, st)
	}
	logits, err := m.Forward(m.NewCache(len(ids)), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Logits) != 1 || !slices.Equal(ev.Logits[0], logits) {
		t.Fatalf("logits differ from the core's")
	}

	var gen abi.GenerateResult
	mustCall(t, p, abi.OpGenerate, &abi.GenerateArgs{Prompt: "Once upon a time", MaxTokens: 24}, &gen)
	want, err := m.Generate(m.Tokenizer.Encode("Once upon a time", true), model.GenerateOptions{MaxTokens: 24})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gen.IDs, want) || gen.Text != m.Tokenizer.Decode(want) {
		t.Fatalf("generated %v %q, core %v", gen.IDs, gen.Text, want)
	}
}

func TestGenerateAndEvalArguments(t *testing.T) {
	p := loaded(t)
	for _, tc := range []struct {
		name string
		op   string
		args any
		want string
	}{
		{"text and ids", abi.OpGenerate, &abi.GenerateArgs{Prompt: "a", PromptIDs: []int32{1}}, "not both"},
		{"negative temperature", abi.OpGenerate, &abi.GenerateArgs{Prompt: "a", Temperature: -1}, "temperature"},
		{"negative max tokens", abi.OpGenerate, &abi.GenerateArgs{Prompt: "a", MaxTokens: -1}, "max_tokens"},
		{"nothing to eval", abi.OpEval, &abi.EvalArgs{}, "no texts or sequences"},
		{"empty sequence", abi.OpEval, &abi.EvalArgs{Sequences: [][]int32{{}}}, "sequence 0 has 0 tokens"},
		{"id out of vocabulary", abi.OpEval, &abi.EvalArgs{Sequences: [][]int32{{1, 9999}}}, "vocabulary"},
		{"sequence over the context", abi.OpEval, &abi.EvalArgs{Sequences: [][]int32{make([]int32, 513)}}, "sequence 0 has 513 tokens, want 1 to 512"},
		{"prompt filling the context", abi.OpGenerate, &abi.GenerateArgs{PromptIDs: make([]int32, 512)},
			"prompt has 512 tokens, want 1 to 511 (the model's context is 512)"},
		{"text prompt over the context", abi.OpGenerate, &abi.GenerateArgs{Prompt: strings.Repeat("Once upon a time. ", 200)}, "tokens, want 1 to 511"},
		{"prompt id out of vocabulary", abi.OpGenerate, &abi.GenerateArgs{PromptIDs: []int32{1, -3}}, "token 1 is id -3, outside the vocabulary of 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := call(t, p, tc.op, tc.args, nil)
			if code != abi.CodeBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %s: %q, want %s about %q", code, msg, abi.CodeBadRequest, tc.want)
			}
		})
	}
	var ev abi.EvalResult
	mustCall(t, p, abi.OpEval, &abi.EvalArgs{Sequences: [][]int32{{1, 403, 407}, {1}}}, &ev)
	if ev.Tokens != 2 || !(ev.Loss > 0) || math.Abs(ev.Perplexity-math.Exp(ev.Loss)) > 1e-9 {
		t.Fatalf("eval %+v", ev)
	}
}

// TestReusedBuffers calls a plugin as the wasm exports do: every request
// in one buffer, overwritten by the next, and every response appended to
// one reused buffer. The model loaded from the buffer must not change when
// the buffer does (Handle keeps no slice of a request), and the responses
// must equal Handle's.
func TestReusedBuffers(t *testing.T) {
	var buf, out []byte
	handle := func(p *Plugin, op string, args any) []byte {
		t.Helper()
		buf = append(buf[:0], encodeRequest(t, op, args)...)
		out = p.HandleAppend(out[:0], buf)
		for i := range buf {
			buf[i] = 0xff // what a later request could leave there
		}
		return out
	}
	reused := New(nil, nil)
	var resp abi.Response
	if err := abi.Decode(handle(reused, abi.OpLoadModel, &abi.LoadModelArgs{Name: "stories260K.gguf", GGUF: readFile(t, modelPath)}), &resp); err != nil || resp.Code != "" {
		t.Fatalf("load_model: %+v, %v", resp, err)
	}
	probe := &abi.EvalArgs{Texts: []string{"Once upon a time, a little blue owl named Pip"}, Logits: true}
	fresh := loaded(t)
	for _, op := range []string{abi.OpPing, abi.OpEval, "teleport", abi.OpGenerate} {
		var args any
		switch op {
		case abi.OpEval:
			args = probe
		case abi.OpGenerate:
			args = &abi.GenerateArgs{Prompt: "Once", MaxTokens: 4}
		}
		got := string(handle(reused, op, args))
		req := abi.Request{Op: op}
		if args != nil {
			req.Args, _ = abi.Encode(args)
		}
		b, _ := abi.Encode(&req)
		if want := string(fresh.Handle(b)); got != want {
			t.Fatalf("%s through reused buffers: % x, want % x", op, got[:min(len(got), 32)], want[:min(len(want), 32)])
		}
	}
}
