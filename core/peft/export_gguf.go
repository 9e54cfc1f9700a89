package peft

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// GGUFBase is what converting an adapter to llama.cpp's GGUF LoRA needs to
// know about the GGUF base model it will be applied to.
type GGUFBase struct {
	// Architecture is the base's general.architecture; llama.cpp refuses
	// an adapter whose architecture differs from its model's.
	Architecture string
	// Heads and KVHeads are the attention head counts. For architectures
	// whose GGUF q/k rows are in Meta's interleaved RoPE order (llama,
	// mistral) the rows of lora_B on q_proj and k_proj are permuted the
	// way llama.cpp's converters permute the base weights.
	Heads, KVHeads int
	// Shapes maps the base's llama.cpp weight names (blk.0.attn_q.weight,
	// output.weight) to their row-major shapes [out, in]. When non-nil,
	// every adapted layer must be there with matching sizes, so that a
	// wrong base is caught here rather than when llama.cpp loads the file.
	Shapes map[string]tensor.Shape
}

// ropePermuted says, for each architecture graft exports to, whether its
// GGUF q/k rows are permuted into Meta's interleaved RoPE order.
var ropePermuted = map[string]bool{"llama": true, "mistral": true, "qwen2": false, "qwen3": false, "gemma3": false}

// GGUFBaseOf describes model m as the GGUF base an adapter trained on it
// will run on. For a model loaded from Hugging Face files it describes the
// GGUF that llama.cpp's convert_hf_to_gguf.py makes of it (Mistral
// checkpoints become architecture "llama").
func GGUFBaseOf(m *model.Model) GGUFBase {
	c := m.Config
	base := GGUFBase{Architecture: c.Arch, Heads: c.Heads, KVHeads: c.KVHeads, Shapes: map[string]tensor.Shape{}}
	if m.Source != "gguf" && c.Arch == "mistral" {
		base.Architecture = "llama"
	}
	for _, l := range m.Linears() {
		if name, err := ggufWeightName(l.Name); err == nil {
			base.Shapes[name] = tensor.Shape{l.Out, l.In}
		}
	}
	if m.Output != nil && !c.TiedOutput {
		base.Shapes["output.weight"] = tensor.Shape{m.Output.Out, m.Output.In}
	}
	return base
}

// GGUFBaseOfFile describes a GGUF base model from its header alone, so a
// large model need not be loaded to export an adapter for it.
func GGUFBaseOfFile(f *gguf.File) (GGUFBase, error) {
	arch := f.Architecture()
	if arch == "" {
		return GGUFBase{}, fmt.Errorf("gguf %s: general.architecture is missing", f.Name)
	}
	heads, ok := f.Uint(arch + ".attention.head_count")
	if !ok || heads == 0 || heads > 1<<20 {
		return GGUFBase{}, fmt.Errorf("gguf %s: %s.attention.head_count is missing or out of range", f.Name, arch)
	}
	kv := heads
	if v, ok := f.Uint(arch + ".attention.head_count_kv"); ok {
		kv = v
	}
	if kv == 0 || kv > heads {
		return GGUFBase{}, fmt.Errorf("gguf %s: %s.attention.head_count_kv = %d is out of range", f.Name, arch, kv)
	}
	base := GGUFBase{Architecture: arch, Heads: int(heads), KVHeads: int(kv), Shapes: map[string]tensor.Shape{}}
	for _, ti := range f.Tensors {
		if len(ti.Shape) == 2 {
			base.Shapes[ti.Name] = ti.Shape
		}
	}
	return base, nil
}

// GGUFAdapter is a LoRA adapter in llama.cpp's GGUF LoRA format: metadata
// general.type "adapter", adapter.type "lora" and adapter.lora.alpha, and
// F32 tensors NAME.lora_a [r, in] and NAME.lora_b [out, r] (ggml ne
// [in, r] and [r, out]) where NAME is the base weight's llama.cpp name.
type GGUFAdapter struct {
	KVs     []gguf.KV
	Tensors []*tensor.Tensor
	// Warnings lists config keys that were ignored and the like.
	Warnings []string
}

// Write writes the adapter as a GGUF file to w.
func (a *GGUFAdapter) Write(w io.Writer) error { return gguf.Write(w, a.KVs, a.Tensors, 0) }

// WriteFile writes the adapter to path atomically.
func (a *GGUFAdapter) WriteFile(path string) error { return gguf.WriteFile(path, a.KVs, a.Tensors) }

// ConvertGGUFLoRA converts the PEFT LoRA adapter in src (adapter_config.json
// and adapter_model.safetensors) to llama.cpp's GGUF LoRA for base.
//
// llama.cpp scales every layer by adapter.lora.alpha / r, r read from the
// layer's tensor shape, so ranks from rank_pattern carry over as they are;
// where PEFT's scaling differs (rsLoRA's alpha/√r, alpha_pattern) the
// difference is folded into lora_b. Only plain LoRA converts: DoRA and
// other PEFT methods are refused, since llama.cpp would apply them as
// something else.
func ConvertGGUFLoRA(src Source, base GGUFBase) (*GGUFAdapter, error) {
	permute, ok := ropePermuted[base.Architecture]
	if !ok {
		return nil, fmt.Errorf("gguf lora: base architecture %q is not one graft exports to (llama, mistral, qwen2, qwen3, gemma3)", base.Architecture)
	}
	cfg, warnings, err := readExportConfig(src)
	if err != nil {
		return nil, err
	}
	pairs, err := readLoRAPairs(src)
	if err != nil {
		return nil, err
	}
	path := sourcePath(src, WeightsFileName)
	alpha := float32(cfg.LoraAlpha)
	out := &GGUFAdapter{
		KVs: []gguf.KV{
			{Key: "general.architecture", Value: base.Architecture},
			{Key: "general.type", Value: "adapter"},
			{Key: "adapter.type", Value: "lora"},
			{Key: "adapter.lora.alpha", Value: alpha},
		},
		Warnings: warnings,
	}
	for _, p := range pairs {
		name, err := ggufWeightName(p.module)
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, p.nameA, err)
		}
		r, in, outDim := p.shapeA[0], p.shapeA[1], p.shapeB[0]
		if want := rankOf(cfg, p.module); r != want {
			return nil, fmt.Errorf("safetensors %s: tensor %q has rank %d, but the config gives module %s rank %d", path, p.nameA, r, p.module, want)
		}
		if base.Shapes != nil {
			if err := checkBaseShape(base, name, p.module, outDim, in); err != nil {
				return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, p.nameA, err)
			}
		}
		b := p.b
		if heads, qk := ropeHeads(base, p.module); permute && qk {
			// permuteRoPERows checks that heads splits the rows evenly.
			if b, err = permuteRoPERows(b, outDim, r, heads, false); err != nil {
				return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, p.nameB, err)
			}
		}
		// llama.cpp computes the scale as float alpha / float rank.
		llamaScale := float64(alpha / float32(r))
		if want := cfg.Scaling(r, alphaOf(cfg, p.module)); want != llamaScale && (cfg.UseRSLoRA || alphaOf(cfg, p.module) != cfg.LoraAlpha) {
			b = scaled(b, want/llamaScale)
		}
		ta, err := tensor.FromFloat32(name+".lora_a", tensor.Shape{r, in}, p.a)
		if err != nil {
			return nil, err
		}
		tb, err := tensor.FromFloat32(name+".lora_b", tensor.Shape{outDim, r}, b)
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, ta, tb)
	}
	return out, nil
}

// readExportConfig reads adapter_config.json, refusing anything but plain
// LoRA with a message that says why.
func readExportConfig(src Source) (LoraConfig, []string, error) {
	data, cfgPath, err := readConfigFile(src)
	if err != nil {
		return LoraConfig{}, nil, err
	}
	var head struct {
		PeftType string `json:"peft_type"`
		UseDoRA  bool   `json:"use_dora"`
		LoraBias bool   `json:"lora_bias"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	switch {
	case head.PeftType != PeftTypeLoRA:
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: peft_type %q cannot be exported as a GGUF LoRA: llama.cpp applies only plain LoRA (W + alpha/r·B·A); merge it into the base with 'graft merge' instead", cfgPath, head.PeftType)
	case head.UseDoRA:
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: DoRA (use_dora) cannot be exported as a GGUF LoRA: llama.cpp has no magnitude vector; merge it into the base with 'graft merge' instead", cfgPath)
	case head.LoraBias:
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: lora_bias cannot be exported as a GGUF LoRA: llama.cpp's LoRA has no bias term", cfgPath)
	}
	return parseConfigFile(data, cfgPath)
}

// loraPair is one module's A and B read from the safetensors file.
type loraPair struct {
	module         string
	nameA, nameB   string
	shapeA, shapeB tensor.Shape
	a, b           []float32
}

// readLoRAPairs reads every lora_A/lora_B pair of adapter_model.safetensors,
// in model order.
func readLoRAPairs(src Source) ([]loraPair, error) {
	path := sourcePath(src, WeightsFileName)
	data, err := readWeightsFile(src, WeightsFileName)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Parse(readerAt(data), int64(len(data)), path)
	if err != nil {
		return nil, err
	}
	byModule := map[string]*loraPair{}
	for _, ti := range f.Tensors {
		module, which, err := splitLoRAName(ti.Name)
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, ti.Name, err)
		}
		if len(ti.Shape) != 2 || ti.Shape[0] <= 0 || ti.Shape[1] <= 0 {
			return nil, fmt.Errorf("safetensors %s: tensor %q has shape %v, want 2-D", path, ti.Name, ti.Shape)
		}
		vals, err := readFloatTensor(f, ti, path)
		if err != nil {
			return nil, err
		}
		p := byModule[module]
		if p == nil {
			p = &loraPair{module: module}
			byModule[module] = p
		}
		if which == "lora_A" {
			p.nameA, p.shapeA, p.a = ti.Name, ti.Shape, vals
		} else {
			p.nameB, p.shapeB, p.b = ti.Name, ti.Shape, vals
		}
	}
	if len(byModule) == 0 {
		return nil, fmt.Errorf("safetensors %s: holds no LoRA tensors", path)
	}
	pairs := make([]loraPair, 0, len(byModule))
	for _, p := range byModule {
		switch {
		case p.a == nil:
			return nil, fmt.Errorf("safetensors %s: tensor %q is missing (its lora_B is present)", path, tensorName(p.module, "lora_A"))
		case p.b == nil:
			return nil, fmt.Errorf("safetensors %s: tensor %q is missing (its lora_A is present)", path, tensorName(p.module, "lora_B"))
		case p.shapeA[0] != p.shapeB[1]:
			return nil, fmt.Errorf("safetensors %s: tensor %q has shape %v but %q has %v: ranks differ", path, p.nameA, p.shapeA, p.nameB, p.shapeB)
		}
		pairs = append(pairs, *p)
	}
	slices.SortFunc(pairs, func(x, y loraPair) int { return compareModules(x.module, y.module) })
	return pairs, nil
}

// splitLoRAName parses base_model.model.<module>.lora_{A,B}.weight.
func splitLoRAName(name string) (module, which string, err error) {
	rest, ok := strings.CutPrefix(name, "base_model.model.")
	if !ok {
		return "", "", fmt.Errorf("not a PEFT LoRA tensor name (want base_model.model.<module>.lora_A.weight or .lora_B.weight)")
	}
	for _, w := range []string{"lora_A", "lora_B"} {
		if m, ok := strings.CutSuffix(rest, "."+w+".weight"); ok {
			return m, w, nil
		}
	}
	if strings.Contains(rest, "lora_embedding_") {
		return "", "", fmt.Errorf("embedding LoRA cannot be exported as a GGUF LoRA")
	}
	return "", "", fmt.Errorf("not a LoRA A/B weight; a GGUF LoRA holds only lora_A and lora_B")
}

// llamaCppNames maps the Hugging Face projection names to llama.cpp's.
var llamaCppNames = map[string]string{
	"self_attn.q_proj": "attn_q",
	"self_attn.k_proj": "attn_k",
	"self_attn.v_proj": "attn_v",
	"self_attn.o_proj": "attn_output",
	"mlp.gate_proj":    "ffn_gate",
	"mlp.up_proj":      "ffn_up",
	"mlp.down_proj":    "ffn_down",
}

// moduleOrder sorts projections within a layer as the model holds them.
var moduleOrder = []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

// parseModule splits model.layers.N.<part> into N and part.
func parseModule(module string) (layer int, part string, ok bool) {
	rest, ok := strings.CutPrefix(module, "model.layers.")
	if !ok {
		return 0, "", false
	}
	num, part, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, part, true
}

// ggufWeightName returns llama.cpp's name for the weight of a Hugging Face
// module: model.layers.3.self_attn.q_proj -> blk.3.attn_q.weight.
func ggufWeightName(module string) (string, error) {
	if module == "lm_head" {
		return "output.weight", nil
	}
	layer, part, ok := parseModule(module)
	if short, known := llamaCppNames[part]; ok && known {
		return fmt.Sprintf("blk.%d.%s.weight", layer, short), nil
	}
	return "", fmt.Errorf("module %s has no llama.cpp tensor a GGUF LoRA can target", module)
}

func compareModules(x, y string) int {
	key := func(m string) (int, int) {
		if m == "lm_head" {
			return math.MaxInt, 0
		}
		layer, part, _ := parseModule(m)
		return layer, slices.Index(moduleOrder, part)
	}
	lx, px := key(x)
	ly, py := key(y)
	if lx != ly {
		return lx - ly
	}
	if px != py {
		return px - py
	}
	return strings.Compare(x, y)
}

// ropeHeads returns the head count of a q or k projection, whose lora_B
// rows follow the base's RoPE row order; qk is false for other modules.
func ropeHeads(base GGUFBase, module string) (heads int, qk bool) {
	_, part, _ := parseModule(module)
	switch part {
	case "self_attn.q_proj":
		return base.Heads, true
	case "self_attn.k_proj":
		return base.KVHeads, true
	}
	return 0, false
}

func checkBaseShape(base GGUFBase, name, module string, out, in int) error {
	want, ok := base.Shapes[name]
	if !ok {
		if name == "output.weight" {
			return fmt.Errorf("the base has no output.weight (its output head is tied to token_embd.weight), so llama.cpp cannot apply a LoRA on lm_head")
		}
		return fmt.Errorf("the base has no tensor %s for module %s (wrong base model?)", name, module)
	}
	if !want.Equal(tensor.Shape{out, in}) {
		return fmt.Errorf("module %s is [out %d, in %d] but the base's %s has shape %v (wrong base model?)", module, out, in, name, want)
	}
	return nil
}

func rankOf(cfg LoraConfig, module string) int {
	if r, ok, _ := cfg.RankPattern.Lookup(module); ok {
		return r
	}
	return cfg.R
}

func alphaOf(cfg LoraConfig, module string) float64 {
	if a, ok, _ := cfg.AlphaPattern.Lookup(module); ok {
		return a
	}
	return cfg.LoraAlpha
}

func scaled(vals []float32, f float64) []float32 {
	out := make([]float32, len(vals))
	for i, v := range vals {
		out[i] = float32(float64(v) * f)
	}
	return out
}
