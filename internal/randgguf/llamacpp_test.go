package randgguf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/internal/randgguf"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// llamaCppDir holds tools/llamacpp; `make llamacpp` installs
// node-llama-cpp there.
const llamaCppDir = "../../tools/llamacpp"

// familyTokenizer is the tokenizer each family's real GGUF files carry:
// byte-level BPE with the family's pre-tokenizer, SentencePiece with
// Gemma's settings for Gemma 3; the test vocabularies of tokfixture.
func familyTokenizer(t *testing.T, fx *tokfixture.Fixture, f randgguf.Family) (kvs []gguf.KV, vocab int) {
	t.Helper()
	if f == randgguf.Gemma3 {
		for _, s := range fx.Cases.SPM {
			if s.Name == "gemma-spm" {
				return fx.SPM.GGUFKVs(s), len(fx.SPM.Tokens)
			}
		}
		t.Fatal("tokfixture has no gemma-spm settings")
	}
	pre := map[randgguf.Family]string{randgguf.Llama3: "llama-bpe", randgguf.SmolLM2: "smollm", randgguf.Qwen2: "qwen2", randgguf.Qwen3: "qwen2"}[f]
	for _, p := range fx.Cases.Pres {
		if p.Pre == pre {
			return fx.BPE.GGUFKVs(p), len(fx.BPE.Tokens)
		}
	}
	t.Fatalf("tokfixture has no pre-tokenizer %q", pre)
	return nil, 0
}

const (
	oracleTokens = 32 // the sequence whose log-probabilities are compared
	oracleGreedy = 20 // greedy tokens generated after it
)

// TestFamiliesMatchLlamaCpp is the acceptance check of the architectures:
// for every family, a random-weight GGUF written with llama.cpp's
// converter's keys and tensor names (randgguf.NewFamily) is run by
// llama.cpp (node-llama-cpp's prebuilt CPU build, F32 KV cache) and by
// graft on the same 32 tokens. The next-token log-probabilities must agree
// to 1e-3 relative, and the 20 greedy tokens that follow must be the same.
//
// The norm: each position's log-probabilities are centred on their mean
// (which removes the softmax's per-position constant: centred
// log-probabilities are centred logits), and the error is the L2 norm of
// graft's minus llama.cpp's over all 32 x vocab values divided by the L2
// norm of llama.cpp's. The largest single difference is logged beside it.
func TestFamiliesMatchLlamaCpp(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the llama.cpp check runs where Node.js is present")
	}
	if _, err := os.Stat(filepath.Join(llamaCppDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		t.Fatalf("node is present but node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp` (%v)", err)
	}
	fx, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range randgguf.Families {
		t.Run(string(f), func(t *testing.T) {
			kvs, V := familyTokenizer(t, fx, f)
			ids, _ := oracleData(V)
			m, err := randgguf.NewFamily(f, V, 17, kvs)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), string(f)+".gguf")
			if err := m.WriteGGUF(path); err != nil {
				t.Fatal(err)
			}
			want := runForward(t, node, path, ids, oracleGreedy)
			if want.Vocab != V || len(want.LogProbs) != len(ids) {
				t.Fatalf("llama.cpp returned vocab %d and %d positions, want %d and %d", want.Vocab, len(want.LogProbs), V, len(ids))
			}
			gm, err := model.LoadGGUF(path, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			defer gm.Free()
			got, greedy := graftForward(t, gm, ids, oracleGreedy)
			rel, rms, worst := compareLogProbs(t, want, got, V, len(ids))
			t.Logf("centred log-probs: relative L2 error %.3g (RMS of llama.cpp's %.3g), max |diff| %.3g; greedy graft %v, llama.cpp %v",
				rel, rms, worst, greedy, want.Greedy)
			if rel > 1e-3 {
				t.Errorf("graft's log-probabilities differ from llama.cpp's by %.3g relative (L2 of centred values), over 1e-3", rel)
			}
			if len(want.Greedy) != len(greedy) {
				t.Fatalf("llama.cpp generated %d tokens, graft %d", len(want.Greedy), len(greedy))
			}
			for i := range greedy {
				if greedy[i] != want.Greedy[i] {
					t.Errorf("greedy token %d: graft %d, llama.cpp %d", i, greedy[i], want.Greedy[i])
					break
				}
			}
		})
	}
}

// compareLogProbs measures graft's log-probabilities (n positions x V)
// against llama.cpp's: the relative L2 error of the centred values, the
// RMS of llama.cpp's centred values and the largest single difference.
func compareLogProbs(t *testing.T, want forwardResult, got []float64, V, n int) (rel, rms, worst float64) {
	t.Helper()
	var num, den float64
	for p := range n {
		if len(want.LogProbs[p]) != V {
			t.Fatalf("position %d: llama.cpp gave %d values, want %d", p, len(want.LogProbs[p]), V)
		}
		lw := make([]float64, V)
		for v, x := range want.LogProbs[p] {
			if x == nil {
				t.Fatalf("llama.cpp gave probability 0 at position %d, token %d: the model's logits are too spread to compare", p, v)
			}
			lw[v] = *x
		}
		gw, gg := centred(lw), centred(got[p*V:(p+1)*V])
		for v := range V {
			d := gg[v] - gw[v]
			num, den = num+d*d, den+gw[v]*gw[v]
			worst = max(worst, math.Abs(d))
		}
	}
	return math.Sqrt(num / den), math.Sqrt(den / float64(n*V)), worst
}

// centred returns x less its mean, in float64.
func centred[T float32 | float64](x []T) []float64 {
	var mean float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - mean
	}
	return out
}

// graftForward returns graft's log-probabilities at every position of ids
// ([len(ids) * Vocab]) and n greedy tokens generated after them.
func graftForward(t *testing.T, m *model.Model, ids []int32, n int) ([]float64, []int32) {
	t.Helper()
	V := m.Config.Vocab
	cache := m.NewCache(len(ids) + n)
	defer m.FreeCache(cache)
	logits, err := m.Forward(cache, ids, true)
	if err != nil {
		t.Fatal(err)
	}
	logp := make([]float64, len(logits))
	for p := range ids {
		row := logits[p*V : (p+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(sum)
		for v, x := range row {
			logp[p*V+v] = float64(x) - lse
		}
	}
	var greedy []int32
	last := logits[(len(ids)-1)*V:]
	for range n {
		best := 0
		for v, x := range last {
			if x > last[best] {
				best = v
			}
		}
		greedy = append(greedy, int32(best))
		if last, err = m.Forward(cache, []int32{int32(best)}, false); err != nil {
			t.Fatal(err)
		}
	}
	return logp, greedy
}

type forwardResult struct {
	Vocab    int          `json:"vocab"`
	LogProbs [][]*float64 `json:"logprobs"`
	Greedy   []int32      `json:"greedy"`
}

// runForward runs tools/llamacpp/forward.mjs on the model at path.
func runForward(t *testing.T, node, path string, ids []int32, n int) forwardResult {
	t.Helper()
	res, err := forwardLlamaCpp(node, absPath(t, path), ids, n)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// forwardLlamaCpp is runForward for any goroutine: it returns its error.
func forwardLlamaCpp(node, abs string, ids []int32, n int) (forwardResult, error) {
	toks := make([]string, len(ids))
	for i, id := range ids {
		toks[i] = strconv.Itoa(int(id))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "forward.mjs", "--model", abs, "--tokens", strings.Join(toks, ","), "--generate", strconv.Itoa(n))
	cmd.Dir = llamaCppDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			return forwardResult{}, fmt.Errorf("node-llama-cpp does not load: run `make llamacpp`\n%s", stderr.String())
		}
		return forwardResult{}, fmt.Errorf("node forward.mjs: %v\n%s", err, stderr.String())
	}
	var res forwardResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return forwardResult{}, fmt.Errorf("node forward.mjs printed no JSON: %v\n%.500s\n%s", err, stdout.String(), stderr.String())
	}
	return res, nil
}

// TestFamiliesLoRAExportMatchesLlamaCpp trains LoRA (all seven projections,
// the family's module names) for ten steps on each family, exports it as a
// GGUF LoRA (peft.ConvertGGUFLoRA, what `graft export --format gguf-lora`
// writes) and checks that it shifts llama.cpp's log-probabilities over 32
// tokens as the adapter shifts graft's: the largest difference of the
// shifts is at most 1e-3 of the largest shift. (Gemma 3 comes closest, at
// about 8e-4: llama.cpp's CPU GELU reads a table indexed by the input
// rounded to f16, so its FFN activations are off by up to ~5e-4 relative;
// the other families agree to ~3e-6.)
func TestFamiliesLoRAExportMatchesLlamaCpp(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the llama.cpp check runs where Node.js is present")
	}
	if _, err := os.Stat(filepath.Join(llamaCppDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		t.Fatalf("node is present but node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp` (%v)", err)
	}
	fx, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range randgguf.Families {
		t.Run(string(f), func(t *testing.T) {
			kvs, V := familyTokenizer(t, fx, f)
			rm, err := randgguf.NewFamily(f, V, 23, kvs)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			base := filepath.Join(dir, "base.gguf")
			if err := rm.WriteGGUF(base); err != nil {
				t.Fatal(err)
			}
			m, err := model.LoadGGUF(base, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			ids, examples := oracleData(V)
			res, err := train.Run(context.Background(), m, train.Spec{
				Examples: examples, Method: "lora", Steps: 10, Batch: 4, SeqLen: 32, LR: 1e-2, Seed: 1,
				Options: map[string]any{"r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
				Out:     filepath.Join(dir, "adapter"),
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := peft.ConvertGGUFLoRA(peft.Dir(filepath.Join(dir, "adapter")), peft.GGUFBaseOf(m))
			if err != nil {
				t.Fatal(err)
			}
			lora := filepath.Join(dir, "adapter.gguf")
			if err := conv.WriteFile(lora); err != nil {
				t.Fatal(err)
			}
			adapted, _ := graftForward(t, m, ids, 0)
			res.Adapter.Unload()
			plain, _ := graftForward(t, m, ids, 0)
			want := runLogits(t, node, base, lora, ids)

			var shiftScale, shiftErr float64
			for p := range ids {
				for v := range V {
					lb, ll := want.Base[p][v], want.LoRA[p][v]
					if lb == nil || ll == nil {
						t.Fatalf("llama.cpp gave probability 0 at position %d, token %d", p, v)
					}
					i := p*V + v
					graftShift := adapted[i] - plain[i]
					shiftScale = max(shiftScale, math.Abs(graftShift))
					shiftErr = max(shiftErr, math.Abs((*ll-*lb)-graftShift))
				}
			}
			t.Logf("log-prob shift: max |graft| %.4g, max |llama.cpp - graft| %.3g (relative %.3g)", shiftScale, shiftErr, shiftErr/shiftScale)
			if shiftScale < 0.1 {
				t.Fatalf("the adapter shifts log-probabilities by only %.3g; the check would prove nothing", shiftScale)
			}
			if rel := shiftErr / shiftScale; rel > 1e-3 {
				t.Errorf("llama.cpp's shift differs from graft's by %.3g relative to the shift", rel)
			}
		})
	}
}

// oracleData is a 32-token sequence to compare on and eight 33-token
// training sequences over a vocabulary of V.
func oracleData(V int) ([]int32, []data.Example) {
	r := rand.New(rand.NewPCG(5, 6))
	ids := make([]int32, oracleTokens)
	for i := range ids {
		ids[i] = int32(r.IntN(V))
	}
	var examples []data.Example
	for s := range 8 {
		e := data.Example{IDs: make([]int32, 33), Loss: make([]bool, 33)}
		for i := range e.IDs {
			e.IDs[i] = int32((s*37 + i*i*11 + i*5) % V)
			e.Loss[i] = i > 0
		}
		examples = append(examples, e)
	}
	return ids, examples
}

type logitsResult struct {
	Vocab int          `json:"vocab"`
	Base  [][]*float64 `json:"base"`
	LoRA  [][]*float64 `json:"lora"`
}

// runLogits runs tools/llamacpp/logits.mjs: llama.cpp's log-probabilities
// for the base alone and with the GGUF LoRA.
func runLogits(t *testing.T, node, base, lora string, ids []int32) logitsResult {
	t.Helper()
	toks := make([]string, len(ids))
	for i, id := range ids {
		toks[i] = strconv.Itoa(int(id))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "logits.mjs", "--model", absPath(t, base), "--lora", absPath(t, lora), "--tokens", strings.Join(toks, ","))
	cmd.Dir = llamaCppDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node logits.mjs: %v\n%s", err, stderr.String())
	}
	var res logitsResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("node logits.mjs printed no JSON: %v\n%.500s\n%s", err, stdout.String(), stderr.String())
	}
	if len(res.Base) != len(ids) || len(res.LoRA) != len(ids) {
		t.Fatalf("llama.cpp returned %d and %d positions, want %d", len(res.Base), len(res.LoRA), len(ids))
	}
	return res
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
