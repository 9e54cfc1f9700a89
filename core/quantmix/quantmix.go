// Package quantmix chooses the storage type of every tensor of a GGUF
// model for one of llama.cpp's quantization presets ("file types":
// Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, ...), as llama.cpp's quantize tool
// does (llama_tensor_get_type in src/llama-quant.cpp), so that a file
// graft quantizes has the same type on the same tensor as one made with
// `llama-quantize`.
//
// Types are ggml type ids (the numbers GGUF stores), not graft's dtypes:
// the choice is llama.cpp's, whichever types graft can encode, and the
// writer maps each id to an encoder.
package quantmix

import (
	"fmt"
	"sort"
	"strings"
)

// GGML type ids, as ggml's enum ggml_type numbers them.
const (
	F32  uint32 = 0
	F16  uint32 = 1
	Q4_0 uint32 = 2
	Q4_1 uint32 = 3
	Q5_0 uint32 = 6
	Q5_1 uint32 = 7
	Q8_0 uint32 = 8
	Q2_K uint32 = 10
	Q3_K uint32 = 11
	Q4_K uint32 = 12
	Q5_K uint32 = 13
	Q6_K uint32 = 14
	BF16 uint32 = 30
)

// blockElems is the number of values in one block of each quantized type;
// a row must be a whole number of blocks.
var blockElems = map[uint32]int{
	Q4_0: 32, Q4_1: 32, Q5_0: 32, Q5_1: 32, Q8_0: 32,
	Q2_K: 256, Q3_K: 256, Q4_K: 256, Q5_K: 256, Q6_K: 256,
}

var typeNames = map[uint32]string{
	F32: "F32", F16: "F16", BF16: "BF16", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0", Q5_1: "Q5_1", Q8_0: "Q8_0",
	Q2_K: "Q2_K", Q3_K: "Q3_K", Q4_K: "Q4_K", Q5_K: "Q5_K", Q6_K: "Q6_K",
}

// TypeName spells a ggml type id as ggml does ("Q4_K").
func TypeName(t uint32) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("GGMLType(%d)", t)
}

// FileType is llama.cpp's llama_ftype: the preset a file was quantized
// with, stored in GGUF as general.file_type.
type FileType uint32

// The presets graft writes, with llama.cpp's numbers.
const (
	MostlyQ40 FileType = 2
	MostlyQ41 FileType = 3
	MostlyQ80 FileType = 7
	MostlyQ50 FileType = 8
	MostlyQ51 FileType = 9
	Q4KS      FileType = 14
	Q4KM      FileType = 15
	Q5KS      FileType = 16
	Q5KM      FileType = 17
	MostlyQ6K FileType = 18
)

var fileTypes = []struct {
	ft   FileType
	name string
	base uint32 // llama_ftype_get_default_type
}{
	{MostlyQ40, "Q4_0", Q4_0},
	{MostlyQ41, "Q4_1", Q4_1},
	{MostlyQ50, "Q5_0", Q5_0},
	{MostlyQ51, "Q5_1", Q5_1},
	{MostlyQ80, "Q8_0", Q8_0},
	{Q4KS, "Q4_K_S", Q4_K},
	{Q4KM, "Q4_K_M", Q4_K},
	{Q5KS, "Q5_K_S", Q5_K},
	{Q5KM, "Q5_K_M", Q5_K},
	{MostlyQ6K, "Q6_K", Q6_K},
}

// Names lists the presets ParseFileType accepts, lower-case, as
// `graft quantize --type` spells them.
func Names() []string {
	var out []string
	for _, f := range fileTypes {
		out = append(out, strings.ToLower(f.name))
	}
	return out
}

// ParseFileType reads a preset name, case-blind: "q4_k_m", "Q8_0".
func ParseFileType(name string) (FileType, error) {
	for _, f := range fileTypes {
		if strings.EqualFold(name, f.name) {
			return f.ft, nil
		}
	}
	return 0, fmt.Errorf("unknown quantization type %q: want one of %s", name, strings.Join(Names(), ", "))
}

// String is llama.cpp's name of the preset ("Q4_K_M").
func (f FileType) String() string {
	for _, e := range fileTypes {
		if e.ft == f {
			return e.name
		}
	}
	return fmt.Sprintf("FileType(%d)", uint32(f))
}

// BaseType is the type most tensors of the preset get (Q4_K for Q4_K_M).
func (f FileType) BaseType() (uint32, error) {
	for _, e := range fileTypes {
		if e.ft == f {
			return e.base, nil
		}
	}
	return 0, fmt.Errorf("quantization preset %d is not one graft writes", uint32(f))
}

// Model is what the choice reads of the model besides its tensors.
type Model struct {
	Arch           string // general.architecture
	Layers         int    // block_count
	Heads, KVHeads int
}

// Tensor is one tensor of the file: its GGUF name and its shape in
// graft's order (rows first, so the last dimension is the row length,
// ggml's ne[0]).
type Tensor struct {
	Name  string
	Shape []int
	// Type is the tensor's type in the source, kept for tensors that are
	// not quantized (norms, biases, rope_freqs).
	Type uint32
}

// Choice is the type chosen for one tensor.
type Choice struct {
	Type uint32
	// Fallback says why the type differs from the preset's rule: the row
	// is not a whole number of the rule's blocks ("" when it is).
	Fallback string
}

// category is llama.cpp's tensor_category.
type category int

const (
	catOther category = iota
	catTokenEmbd
	catAttnQ
	catAttnV
	catAttnK
	catAttnQKV
	catAttnKVB
	catAttnOut
	catFFNUp
	catFFNGate
	catFFNDown
	catOutput
)

func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight" || name == "per_layer_token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_qkv.weight"):
		return catAttnQKV
	case strings.Contains(name, "attn_kv_b.weight"):
		return catAttnKVB
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOut
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

// quantizable is llama.cpp's tensor_allows_quantization for the tensors of
// the Llama-family models graft writes: matrices whose name ends in
// "weight", except norms and the few small tensors it keeps (expert
// gates, positional embeddings).
func quantizable(t Tensor) bool {
	if len(t.Shape) < 2 || !strings.HasSuffix(t.Name, "weight") {
		return false
	}
	for _, keep := range []string{"_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d", "attn_rel_b.weight", ".position_embd"} {
		if strings.Contains(t.Name, keep) {
			return false
		}
	}
	return t.Name != "position_embd.weight" && t.Name != "token_types.weight"
}

// layerOf reads the block index of a "blk.N." name, -1 for others.
func layerOf(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "blk.%d.", &i); err != nil {
		return -1
	}
	return i
}

// useMoreBits is the layer pattern of Q4_K_M and Q5_K_M: the first and
// last eighth of the layers, and every third layer between.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// Plan returns the type of every tensor under preset ft, in the order of
// tensors.
//
// As llama.cpp does, it walks the tensors sorted by block index then name
// (its model loader's order) and counts the attn_v and ffn_down tensors as
// it goes: the i-th of n gets more bits when useMoreBits(i, n). The output
// head, and the token embedding when there is no output head (tied
// embeddings), get Q6_K unless the preset is Q8_0, or Q8_0 where the row
// is not a whole number of the preset's blocks. A type whose blocks do not
// divide the row falls back as llama.cpp's tensor_type_fallback does:
// Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, Q2_K and Q3_K to Q4_0, and to
// F16 when even 32 does not divide it; Q4_0 and Q8_0 have no fallback, so
// such a row is an error, as in llama.cpp. Tensors that are not quantized keep
// their source type.
func Plan(ft FileType, m Model, tensors []Tensor) ([]Choice, error) {
	base, err := ft.BaseType()
	if err != nil {
		return nil, err
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		la, lb := layerOf(tensors[order[a]].Name), layerOf(tensors[order[b]].Name)
		if la != lb {
			return la < lb
		}
		return tensors[order[a]].Name < tensors[order[b]].Name
	})
	st := state{ft: ft, m: m, tied: true, nFFNDown: m.Layers}
	for _, t := range tensors {
		switch categoryOf(t.Name) {
		case catAttnV, catAttnQKV, catAttnKVB:
			st.nAttnV++
		case catOutput:
			st.tied = false
		}
	}
	out := make([]Choice, len(tensors))
	for _, i := range order {
		t := tensors[i]
		if !quantizable(t) {
			out[i] = Choice{Type: t.Type}
			continue
		}
		if len(t.Shape) == 0 || t.Shape[len(t.Shape)-1] <= 0 {
			return nil, fmt.Errorf("quantize %s: tensor %s has shape %v", ft, t.Name, t.Shape)
		}
		c, err := fallback(st.pick(base, t), t.Shape[len(t.Shape)-1])
		if err != nil {
			return nil, fmt.Errorf("quantize %s: tensor %s %v: %w", ft, t.Name, t.Shape, err)
		}
		out[i] = c
	}
	return out, nil
}

// state carries llama.cpp's quantize_state_impl counters.
type state struct {
	ft               FileType
	m                Model
	tied             bool
	nAttnV, iAttnV   int
	nFFNDown, iFFNDn int
}

// is70B is llama.cpp's LLM_TYPE_70B for the architectures graft writes,
// as its model loader sets it from the block count: a llama with 80 blocks
// and grouped-query attention (with as many kv heads as heads it is the
// 65B), a qwen2 with 80 blocks (Qwen2-72B). Their attn_v is eight times
// smaller than attn_q, so llama.cpp gives it more bits.
func (s *state) is70B() bool {
	switch s.m.Arch {
	case "llama":
		return s.m.Layers == 80 && s.m.Heads != s.m.KVHeads
	case "qwen2":
		return s.m.Layers == 80
	}
	return false
}

// pick is llama_tensor_get_type_impl for the presets graft writes.
func (s *state) pick(base uint32, t Tensor) uint32 {
	cat := categoryOf(t.Name)
	typ := base
	km := s.ft == Q4KM || s.ft == Q5KM
	switch {
	case cat == catOutput || (s.tied && cat == catTokenEmbd):
		switch {
		case t.Shape[len(t.Shape)-1]%blockElems[base] != 0:
			typ = Q8_0
		case typ != Q8_0:
			typ = Q6_K
		}
	case cat == catTokenEmbd:
		// An untied embedding keeps the preset's type.
	case cat == catAttnV || cat == catAttnQKV || cat == catAttnKVB:
		if km && useMoreBits(s.iAttnV, s.nAttnV) {
			typ = Q6_K
		} else if s.ft == Q4KS && s.iAttnV < 4 {
			typ = Q5_K
		}
		if s.is70B() && (typ == Q3_K || typ == Q4_K) {
			typ = Q5_K
		}
		s.iAttnV++
	case cat == catFFNDown:
		i, n := s.iFFNDn, s.nFFNDown
		switch {
		case km && useMoreBits(i, n):
			typ = Q6_K
		case s.ft == Q4KS && i < n/8:
			typ = Q5_K
		}
		s.iFFNDn++
	}
	return typ
}

// fallback is llama.cpp's tensor_type_fallback: the type to use when rows
// of cols values are not whole blocks of want.
func fallback(want uint32, cols int) (Choice, error) {
	be, ok := blockElems[want]
	if !ok || cols%be == 0 {
		return Choice{Type: want}, nil
	}
	var got uint32
	switch want {
	case Q2_K, Q3_K:
		got = Q4_0
	case Q4_K:
		got = Q5_0
	case Q5_K:
		got = Q5_1
	case Q6_K:
		got = Q8_0
	default:
		// llama.cpp has no fallback for the 32-value types and refuses.
		return Choice{}, fmt.Errorf("rows of %d values are not whole %d-value %s blocks, and llama.cpp defines no fallback type for %s", cols, be, TypeName(want), TypeName(want))
	}
	if gb := blockElems[got]; cols%gb != 0 {
		got = F16 // llama.cpp: "must use F16 due to unusual shape"
	}
	return Choice{Type: got, Fallback: fmt.Sprintf("rows of %d values are not whole %d-value %s blocks", cols, be, TypeName(want))}, nil
}
