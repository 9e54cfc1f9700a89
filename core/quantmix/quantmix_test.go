package quantmix

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// llamaTensors lists the tensors of a Llama-family GGUF (llama.cpp's names,
// graft's row-first shapes), with an output head unless tied.
func llamaTensors(layers, dim, ffn, q, kv, vocab int, tied bool) []Tensor {
	ts := []Tensor{{Name: "token_embd.weight", Shape: []int{vocab, dim}}}
	for i := range layers {
		b := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			Tensor{Name: b + "attn_norm.weight", Shape: []int{dim}},
			Tensor{Name: b + "attn_q.weight", Shape: []int{q, dim}},
			Tensor{Name: b + "attn_k.weight", Shape: []int{kv, dim}},
			Tensor{Name: b + "attn_v.weight", Shape: []int{kv, dim}},
			Tensor{Name: b + "attn_output.weight", Shape: []int{dim, q}},
			Tensor{Name: b + "ffn_norm.weight", Shape: []int{dim}},
			Tensor{Name: b + "ffn_gate.weight", Shape: []int{ffn, dim}},
			Tensor{Name: b + "ffn_up.weight", Shape: []int{ffn, dim}},
			Tensor{Name: b + "ffn_down.weight", Shape: []int{dim, ffn}},
		)
	}
	ts = append(ts, Tensor{Name: "output_norm.weight", Shape: []int{dim}})
	if !tied {
		ts = append(ts, Tensor{Name: "output.weight", Shape: []int{vocab, dim}})
	}
	return ts
}

func planMap(t *testing.T, ft FileType, m Model, ts []Tensor) map[string]Choice {
	t.Helper()
	got, err := Plan(ft, m, ts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Choice{}
	for i, c := range got {
		out[ts[i].Name] = c
	}
	return out
}

// TestPlanThirtyLayers spells out the rule for n = 30 by hand: n/8 = 3,
// 7n/8 = 26, so layers 0-2, 26-29 and those with (i-3)%3 == 2 (5, 8, ...,
// 23) give attn_v and ffn_down more bits in Q4_K_M and Q5_K_M.
func TestPlanThirtyLayers(t *testing.T) {
	moreBits := map[int]bool{0: true, 1: true, 2: true, 5: true, 8: true, 11: true, 14: true, 17: true, 20: true, 23: true, 26: true, 27: true, 28: true, 29: true}
	m := Model{Arch: "llama", Layers: 30, Heads: 8, KVHeads: 2}
	for _, tc := range []struct {
		ft                      FileType
		base, more, embd, tdEmb uint32 // tdEmb: the token embedding when tied
	}{
		{Q4KM, Q4_K, Q6_K, Q4_K, Q6_K},
		{Q5KM, Q5_K, Q6_K, Q5_K, Q6_K},
		{MostlyQ6K, Q6_K, Q6_K, Q6_K, Q6_K},
		{MostlyQ80, Q8_0, Q8_0, Q8_0, Q8_0},
		{MostlyQ40, Q4_0, Q4_0, Q4_0, Q6_K},
	} {
		for _, tied := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/tied=%v", tc.ft, tied), func(t *testing.T) {
				ts := llamaTensors(30, 512, 1536, 512, 128, 1024, tied)
				got := planMap(t, tc.ft, m, ts)
				for _, tn := range ts {
					want := tc.base
					var l int
					switch {
					case strings.HasSuffix(tn.Name, "_norm.weight"):
						want = F32 // the source type of a norm (F32 here)
					case tn.Name == "output.weight":
						want = Q6_K
						if tc.ft == MostlyQ80 {
							want = Q8_0
						}
					case tn.Name == "token_embd.weight":
						want = tc.embd
						if tied {
							want = tc.tdEmb
						}
					case strings.HasSuffix(tn.Name, "attn_v.weight"), strings.HasSuffix(tn.Name, "ffn_down.weight"):
						fmt.Sscanf(tn.Name, "blk.%d.", &l)
						if moreBits[l] {
							want = tc.more
						}
					}
					if got[tn.Name].Type != want || got[tn.Name].Fallback != "" {
						t.Errorf("%s: %s (fallback %q), want %s", tn.Name, TypeName(got[tn.Name].Type), got[tn.Name].Fallback, TypeName(want))
					}
				}
			})
		}
	}
}

// snapshot is one section of a llama.cpp type-selection snapshot
// (tests/snapshots/*.schema): the preset's base type and the tensors
// whose type differs from it.
type snapshot struct {
	ft        FileType
	base      string
	overrides map[string]string
}

func readSnapshot(t *testing.T, path string) []snapshot {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []snapshot
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			name, base, _ := strings.Cut(strings.TrimPrefix(line, "["), "] ")
			ft, err := ParseFileType(name)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out = append(out, snapshot{ft: ft, base: base, overrides: map[string]string{}})
		default:
			name, typ, ok := strings.Cut(line, " ")
			if !ok || len(out) == 0 {
				t.Fatalf("%s: bad line %q", path, line)
			}
			out[len(out)-1].overrides[name] = typ
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPlanMatchesLlamaCppSnapshots compares the plan with llama.cpp's own
// choices, recorded by its test-quant-type-selection for real models
// (testdata/*.schema, excerpts of llama.cpp's snapshots; see
// testdata/LICENSE-llama.cpp). Qwen3-0.6B (28 layers, an output head) is
// compared tensor by tensor for every preset graft writes; Gemma 3 4B
// (34 layers, tied embeddings) on its token embedding.
func TestPlanMatchesLlamaCppSnapshots(t *testing.T) {
	t.Run("qwen3-0.6b", func(t *testing.T) {
		secs := readSnapshot(t, "testdata/qwen3-0.6b.schema")
		if len(secs) != len(fileTypes) {
			t.Fatalf("%d sections, want one per preset (%d)", len(secs), len(fileTypes))
		}
		ts := llamaTensors(28, 1024, 3072, 2048, 1024, 151936, false)
		for i := range 28 { // Qwen3's per-head q/k norms
			ts = append(ts, Tensor{Name: fmt.Sprintf("blk.%d.attn_q_norm.weight", i), Shape: []int{128}},
				Tensor{Name: fmt.Sprintf("blk.%d.attn_k_norm.weight", i), Shape: []int{128}})
		}
		m := Model{Arch: "qwen3", Layers: 28, Heads: 16, KVHeads: 8}
		for _, s := range secs {
			got := planMap(t, s.ft, m, ts)
			seen := 0
			for _, tn := range ts {
				if !quantizable(tn) {
					continue
				}
				want := s.base
				if o, ok := s.overrides[tn.Name]; ok {
					want, seen = o, seen+1
				}
				if g := got[tn.Name].Type; !strings.EqualFold(TypeName(g), want) {
					t.Errorf("[%v] %s: %s, llama.cpp %s", s.ft, tn.Name, TypeName(g), want)
				}
			}
			if seen != len(s.overrides) {
				t.Errorf("[%v] the snapshot lists %d tensors that differ, %d of them exist here", s.ft, len(s.overrides), seen)
			}
		}
	})
	t.Run("gemma-3-4b-it", func(t *testing.T) {
		secs := readSnapshot(t, "testdata/gemma-3-4b-it.schema")
		ts := llamaTensors(34, 2560, 10240, 2048, 1024, 262144, true)
		m := Model{Arch: "gemma3", Layers: 34, Heads: 8, KVHeads: 4}
		for _, s := range secs {
			want := s.base
			if o, ok := s.overrides["token_embd.weight"]; ok {
				want = o
			}
			if g := planMap(t, s.ft, m, ts)["token_embd.weight"].Type; !strings.EqualFold(TypeName(g), want) {
				t.Errorf("[%v] token_embd.weight: %s, llama.cpp %s", s.ft, TypeName(g), want)
			}
		}
	})
}

// TestPlanFallbacks covers rows that are not whole blocks, with
// llama.cpp's replacements, and the 70B rule.
func TestPlanFallbacks(t *testing.T) {
	m := Model{Arch: "llama", Layers: 8, Heads: 4, KVHeads: 4}
	for _, tc := range []struct {
		name string
		ft   FileType
		tn   Tensor
		want uint32
		err  bool
	}{
		{"Q4_K to Q5_0", Q4KM, Tensor{Name: "blk.3.attn_q.weight", Shape: []int{288, 288}}, Q5_0, false},
		{"Q5_K to Q5_1", Q5KM, Tensor{Name: "blk.3.attn_q.weight", Shape: []int{288, 288}}, Q5_1, false},
		{"Q6_K to Q8_0", Q4KM, Tensor{Name: "blk.0.ffn_down.weight", Shape: []int{288, 768 + 32}}, Q8_0, false},
		{"Q6_K preset", MostlyQ6K, Tensor{Name: "blk.3.ffn_up.weight", Shape: []int{768, 288}}, Q8_0, false},
		{"output over 32-blocks of the preset is Q8_0", Q4KM, Tensor{Name: "output.weight", Shape: []int{100, 288}}, Q8_0, false},
		{"output Q6_K falls back under Q4_0", MostlyQ40, Tensor{Name: "output.weight", Shape: []int{100, 288}}, Q8_0, false},
		{"F16 when not even 32 divides", Q4KM, Tensor{Name: "blk.3.attn_q.weight", Shape: []int{172, 172}}, F16, false},
		{"Q8_0 has no fallback", MostlyQ80, Tensor{Name: "blk.3.attn_q.weight", Shape: []int{172, 172}}, 0, true},
		{"rows whole: no fallback", Q4KM, Tensor{Name: "blk.3.attn_q.weight", Shape: []int{288, 512}}, Q4_K, false},
		{"bias stays", Q4KM, Tensor{Name: "blk.3.attn_q.bias", Shape: []int{512}, Type: F32}, F32, false},
		{"rope_freqs stays", Q4KM, Tensor{Name: "rope_freqs.weight", Shape: []int{32}, Type: F32}, F32, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := []Tensor{tc.tn}
			if tc.tn.Name == "output.weight" {
				ts = append(ts, Tensor{Name: "token_embd.weight", Shape: tc.tn.Shape})
			}
			got, err := Plan(tc.ft, m, ts)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.tn.Name) {
					t.Fatalf("err %v, want an error naming %s", err, tc.tn.Name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Type != tc.want {
				t.Errorf("%s, want %s", TypeName(got[0].Type), TypeName(tc.want))
			}
			if fellBack := !strings.HasPrefix(tc.name, "rows whole") && !strings.Contains(tc.name, "stays") && !strings.HasPrefix(tc.name, "output over"); fellBack != (got[0].Fallback != "") {
				t.Errorf("fallback reason %q, want one: %v", got[0].Fallback, fellBack)
			}
		})
	}
	t.Run("70B attn_v", func(t *testing.T) {
		ts := llamaTensors(80, 512, 1024, 512, 64, 256, false)
		got := planMap(t, Q4KM, Model{Arch: "llama", Layers: 80, Heads: 64, KVHeads: 8}, ts)
		// Layer 13 is not one of the more-bits layers (80/8 = 10): Q4_K
		// becomes Q5_K on a 70B, as llama.cpp's snapshot of Llama 3.1 70B
		// shows; ffn_down is untouched.
		if g := got["blk.13.attn_v.weight"].Type; g != Q5_K {
			t.Errorf("blk.13.attn_v: %s, want Q5_K", TypeName(g))
		}
		if g := got["blk.13.ffn_down.weight"].Type; g != Q4_K {
			t.Errorf("blk.13.ffn_down: %s, want Q4_K", TypeName(g))
		}
		if g := got["blk.12.attn_v.weight"].Type; g != Q6_K {
			t.Errorf("blk.12.attn_v: %s, want Q6_K", TypeName(g))
		}
		for _, m := range []Model{
			{Arch: "qwen2", Layers: 80, Heads: 64, KVHeads: 8}, // Qwen2-72B: llama.cpp's loader calls it 70B too
		} {
			if g := planMap(t, Q4KM, m, ts)["blk.13.attn_v.weight"].Type; g != Q5_K {
				t.Errorf("%+v: blk.13.attn_v %s, want Q5_K", m, TypeName(g))
			}
		}
		for _, m := range []Model{
			{Arch: "llama", Layers: 80, Heads: 64, KVHeads: 64}, // the 65B
			{Arch: "gemma3", Layers: 80, Heads: 64, KVHeads: 8},
			{Arch: "llama", Layers: 79, Heads: 64, KVHeads: 8},
		} {
			if g := planMap(t, Q4KM, m, ts)["blk.13.attn_v.weight"].Type; g != Q4_K {
				t.Errorf("%+v: blk.13.attn_v %s, want Q4_K", m, TypeName(g))
			}
		}
	})
}

func TestParseFileType(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FileType
	}{{"q4_k_m", 15}, {"Q5_K_M", 17}, {"q6_k", 18}, {"q8_0", 7}, {"Q4_0", 2}} {
		got, err := ParseFileType(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseFileType("q3_k_xl"); err == nil || !strings.Contains(err.Error(), "q4_k_m") {
		t.Errorf("unknown type: %v, want an error listing the known ones", err)
	}
}
