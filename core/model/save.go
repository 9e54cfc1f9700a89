package model

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/quantmix"
	"github.com/graft-ml/graft/core/tensor"
)

// SaveOptions controls how a model is written.
type SaveOptions struct {
	// DType is the storage type of the projections: tensor.Invalid keeps
	// each one's source type (re-quantizing merged weights), F32, F16 or
	// BF16 convert all of them. Norms are always F32.
	DType tensor.DType
	// Quantize, for GGUF, picks each tensor's type as llama.cpp's quantize
	// tool does for that preset (Q4_K_M, Q8_0, ...: see core/quantmix) and
	// records it as general.file_type; it overrides DType. Zero writes the
	// types DType says.
	Quantize quantmix.FileType
	// Warn receives messages about lossy choices (re-quantization, a
	// tokenizer that could not be carried over); nil discards them.
	Warn func(string)
}

func (o SaveOptions) warn(format string, a ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, a...))
	}
}

// weightOut is one tensor to write, in Hugging Face naming.
type weightOut struct {
	hf     string
	buf    backend.Buffer
	shape  tensor.Shape
	dtype  tensor.DType // target type before format restrictions
	linear *Linear      // nil for embeddings and norms
	norm   bool         // an RMSNorm weight (Gemma's HF files store it less 1)
}

// weightsOut lists the model's weights in Hugging Face naming.
func (m *Model) weightsOut(opt SaveOptions) []weightOut {
	c := m.Config
	pick := func(l *Linear) tensor.DType {
		if opt.DType != tensor.Invalid {
			return opt.DType
		}
		return l.SourceDType
	}
	embDT := m.Embed.DType()
	if opt.DType != tensor.Invalid {
		embDT = opt.DType
	}
	out := []weightOut{
		{hf: "model.embed_tokens.weight", buf: m.Embed, shape: tensor.Shape{c.Vocab, c.Dim}, dtype: embDT},
		{hf: "model.norm.weight", buf: m.OutNorm, shape: tensor.Shape{c.Dim}, dtype: tensor.F32, norm: true},
	}
	if !c.TiedOutput {
		out = append(out, weightOut{hf: "lm_head.weight", buf: m.Output.Weight, shape: tensor.Shape{c.Vocab, c.Dim}, dtype: pick(m.Output), linear: m.Output})
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		prefix := fmt.Sprintf("model.layers.%d.", i)
		for _, n := range m.layerNorms(l) {
			name := prefix + n.part
			if n.part == "q_norm.weight" || n.part == "k_norm.weight" {
				name = prefix + "self_attn." + n.part
			}
			out = append(out, weightOut{hf: name, buf: *n.dst, shape: tensor.Shape{n.size}, dtype: tensor.F32, norm: true})
		}
		for _, lin := range l.Linears() {
			out = append(out, weightOut{hf: lin.Name + ".weight", buf: lin.Weight, shape: tensor.Shape{lin.Out, lin.In}, dtype: pick(lin), linear: lin})
			if lin.Bias != nil {
				out = append(out, weightOut{hf: lin.Name + ".bias", buf: lin.Bias, shape: tensor.Shape{lin.Out}, dtype: tensor.F32, linear: lin})
			}
		}
	}
	return out
}

// hostTensor reads w from the backend and encodes it as dt under name,
// permuting q/k rows between RoPE layouts when toHF or toMeta asks and
// adding shift to every value.
func (m *Model) hostTensor(w weightOut, name string, dt tensor.DType, permute func([]float32) ([]float32, error), shift float32) (*tensor.Tensor, error) {
	vals := make([]float32, w.shape.Numel())
	if err := m.Backend.Read(w.buf, 0, vals); err != nil {
		return nil, fmt.Errorf("reading %s: %w", w.hf, err)
	}
	for i := range vals {
		vals[i] += shift
	}
	if permute != nil {
		var err error
		if vals, err = permute(vals); err != nil {
			return nil, fmt.Errorf("%s: %w", w.hf, err)
		}
	}
	if dt.Quantized() && w.shape[len(w.shape)-1]%dt.BlockElems() != 0 {
		dt = tensor.F32 // rows that are not whole blocks cannot be quantized row-wise
	}
	size, err := dt.Bytes(int64(len(vals)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.hf, err)
	}
	data := make([]byte, size)
	if err := tensor.Encode(dt, vals, data); err != nil {
		return nil, fmt.Errorf("%s: %w", w.hf, err)
	}
	return &tensor.Tensor{Name: name, DType: dt, Shape: w.shape.Clone(), Data: data}, nil
}

// PermuteRoPERows reorders the rows of a [rows, cols] matrix between Meta's
// interleaved RoPE order (GGUF q/k projections) and Hugging Face's
// rotate-half order (toHF), or back. Within each head of d rows, HF row
// s·(d/2)+p is Meta row 2p+s (s ∈ {0,1}, p < d/2).
func PermuteRoPERows(vals []float32, rows, cols, heads int, toHF bool) ([]float32, error) {
	if heads <= 0 || rows%heads != 0 || (rows/heads)%2 != 0 || len(vals) != rows*cols {
		return nil, fmt.Errorf("%d values as %d rows do not split into %d heads of even size", len(vals), rows, heads)
	}
	d := rows / heads
	out := make([]float32, len(vals))
	for h := range heads {
		for s := range 2 {
			for p := range d / 2 {
				hf, meta := h*d+s*(d/2)+p, h*d+2*p+s
				from, to := meta, hf
				if !toHF {
					from, to = hf, meta
				}
				copy(out[to*cols:(to+1)*cols], vals[from*cols:(from+1)*cols])
			}
		}
	}
	return out, nil
}

// ropeHeads returns the heads of a q/k projection, or 0 for any other.
func (m *Model) ropeHeads(l *Linear) int {
	switch {
	case strings.HasSuffix(l.Name, ".q_proj"):
		return m.Config.Heads
	case strings.HasSuffix(l.Name, ".k_proj"):
		return m.Config.KVHeads
	}
	return 0
}

func (m *Model) warnRequantized(w weightOut, dt tensor.DType, opt SaveOptions) {
	if w.linear != nil && dt.Quantized() && w.buf.DType() != dt && strings.HasSuffix(w.hf, ".weight") {
		opt.warn("%s: merged weights re-quantized to %v; the adapter's update is rounded with them", w.hf, dt)
	}
}

// SaveHF writes the model as a Hugging Face directory: config.json and
// model.safetensors (q/k rows in Hugging Face order); tokenizer.json is
// copied when the model came from a Hugging Face directory. ggml
// quantized types, which safetensors cannot hold, are written as F32.
func (m *Model) SaveHF(dir string, opt SaveOptions) error {
	hc, err := m.hfConfig()
	if err != nil {
		return fmt.Errorf("hf %s: config: %w", dir, err)
	}
	cfgJSON, err := hc.Marshal()
	if err != nil {
		return fmt.Errorf("hf %s: config: %w", dir, err)
	}
	var tensors []*tensor.Tensor
	for _, w := range m.weightsOut(opt) {
		dt := w.dtype
		if dt.Quantized() {
			opt.warn("%s: %v has no safetensors type; written as F32", w.hf, dt)
			dt = tensor.F32
		}
		var permute func([]float32) ([]float32, error)
		if lin := w.linear; lin != nil && lin.RoPEPermuted > 0 {
			heads := lin.RoPEPermuted
			permute = func(v []float32) ([]float32, error) { return PermuteRoPERows(v, lin.Out, len(v)/lin.Out, heads, true) }
		}
		var shift float32
		if w.norm && m.Config.Arch == "gemma3" {
			shift = -1 // Gemma3RMSNorm multiplies by 1 + weight
		}
		t, err := m.hostTensor(w, w.hf, dt, permute, shift)
		if err != nil {
			return fmt.Errorf("hf %s: %w", dir, err)
		}
		tensors = append(tensors, t)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), cfgJSON, 0o644); err != nil {
		return err
	}
	return m.saveHFTokenizer(dir, opt)
}

// saveHFTokenizer writes the tokenizer files of an HF directory: copies of
// the source's where the model came from one, else tokenizer.json and
// tokenizer_config.json converted from the GGUF vocabulary.
func (m *Model) saveHFTokenizer(dir string, opt SaveOptions) error {
	if m.Source == "hf" {
		copied := false
		for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", hfChatTemplateFile} {
			data, err := os.ReadFile(filepath.Join(m.SourcePath, name))
			if err != nil {
				continue
			}
			if err := atomicfile.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
			copied = copied || name == "tokenizer.json"
		}
		if !copied {
			opt.warn("no tokenizer.json written: %s has none", m.SourcePath)
		}
		return nil
	}
	if m.Tokenizer == nil {
		opt.warn("no tokenizer.json written: the model has no tokenizer")
		return nil
	}
	tmpl := ""
	for _, kv := range m.SourceMetadata {
		if s, ok := kv.Value.(string); ok && kv.Key == ggufChatTemplateKey {
			tmpl = s
		}
	}
	tokJSON, cfgJSON, err := hfTokenizerFiles(m.Tokenizer, tmpl, m.Config.Context)
	if err != nil {
		opt.warn("no tokenizer.json written: %v", err)
		return nil
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "tokenizer.json"), tokJSON, 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfgJSON, 0o644)
}

// SaveGGUF writes the model as a GGUF v3 file in llama.cpp's naming, with
// q/k rows in the order its RoPE expects. A model loaded from GGUF keeps
// its metadata (tokenizer included).
func (m *Model) SaveGGUF(path string, opt SaveOptions) error {
	c := m.Config
	arch := c.Arch
	if arch == "" {
		arch = "llama"
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: arch},
		{Key: arch + ".context_length", Value: uint32(c.Context)},
		{Key: arch + ".embedding_length", Value: uint32(c.Dim)},
		{Key: arch + ".feed_forward_length", Value: uint32(c.FFN)},
		{Key: arch + ".block_count", Value: uint32(c.Layers)},
		{Key: arch + ".attention.head_count", Value: uint32(c.Heads)},
		{Key: arch + ".attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: arch + ".attention.key_length", Value: uint32(c.HeadDim)},
		{Key: arch + ".attention.value_length", Value: uint32(c.HeadDim)},
		{Key: arch + ".attention.layer_norm_rms_epsilon", Value: c.NormEps},
		{Key: arch + ".rope.freq_base", Value: c.RopeTheta},
		{Key: arch + ".rope.dimension_count", Value: uint32(c.HeadDim)},
	}
	set := map[string]bool{}
	for _, kv := range kvs {
		set[kv.Key] = true
	}
	archKVs, err := m.ggufArchKVs(arch)
	if err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	for _, kv := range archKVs {
		set[kv.Key] = true
	}
	for _, kv := range m.SourceMetadata {
		// Sizes and types come from the model as it is now.
		if !set[kv.Key] && kv.Key != "general.file_type" && kv.Key != "general.quantization_version" && kv.Key != gguf.KeyAlignment {
			kvs = append(kvs, kv)
		}
	}
	if opt.Quantize != 0 {
		kvs = append(kvs, gguf.KV{Key: "general.quantization_version", Value: uint32(ggmlQuantizationVersion)},
			gguf.KV{Key: "general.file_type", Value: uint32(opt.Quantize)})
	}
	if m.SourceMetadata == nil {
		kvs = append(kvs, m.ggufTokenizerMetadata(opt)...)
	}
	kvs = append(kvs, archKVs...)
	names := ggufNames{postNorms: c.PostNorms}
	// GGUF llama/mistral store q/k rows in Meta's interleaved order.
	metaOrder := c.RoPE == backend.RoPEInterleaved || arch == "llama" || arch == "mistral"
	ws := m.weightsOut(opt)
	wnames := make([]string, len(ws))
	for i, w := range ws {
		wnames[i] = ggufTensorName(names, w.hf)
	}
	qtypes, err := m.quantizedTypes(ws, wnames, opt)
	if err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	var tensors []*tensor.Tensor
	for i, w := range ws {
		name := wnames[i]
		if qtypes != nil {
			w.dtype = qtypes[i]
		}
		var permute func([]float32) ([]float32, error)
		if lin := w.linear; lin != nil && metaOrder && lin.RoPEPermuted == 0 {
			if heads := m.ropeHeads(lin); heads > 0 {
				permute = func(v []float32) ([]float32, error) { return PermuteRoPERows(v, lin.Out, len(v)/lin.Out, heads, false) }
			}
		}
		if opt.Quantize == 0 {
			m.warnRequantized(w, w.dtype, opt)
		}
		t, err := m.hostTensor(w, name, w.dtype, permute, 0)
		if err != nil {
			return fmt.Errorf("gguf %s: %w", path, err)
		}
		tensors = append(tensors, t)
	}
	if ff := m.ropeFreqFactors(); ff != nil {
		t, err := tensor.FromFloat32("rope_freqs.weight", tensor.Shape{len(ff)}, ff)
		if err != nil {
			return fmt.Errorf("gguf %s: %w", path, err)
		}
		tensors = append(tensors, t)
	}
	return gguf.WriteFile(path, kvs, tensors)
}

// ggufTokenizerMetadata converts the tokenizer of a model that did not
// come from GGUF, with the chat template of its tokenizer_config.json.
func (m *Model) ggufTokenizerMetadata(opt SaveOptions) []gguf.KV {
	if m.Tokenizer == nil {
		opt.warn("no tokenizer metadata written: the model has no tokenizer")
		return nil
	}
	tmpl := ""
	if m.Source == "hf" {
		var err error
		if tmpl, _, err = m.ChatTemplate(); err != nil {
			opt.warn("chat template not carried over: %v", err)
		}
	}
	kvs, err := ggufTokenizerKVs(m.Tokenizer, tmpl)
	if err != nil {
		opt.warn("no tokenizer metadata written: %v", err)
	}
	return kvs
}

// ggufTensorName maps a Hugging Face tensor name to llama.cpp's.
func ggufTensorName(names ggufNames, hf string) string {
	switch hf {
	case "model.embed_tokens.weight":
		return names.embed()
	case "model.norm.weight":
		return names.outNorm()
	case "lm_head.weight":
		return names.output()
	}
	var layer int
	var rest string
	if _, err := fmt.Sscanf(hf, "model.layers.%d.", &layer); err == nil {
		rest = hf[len(fmt.Sprintf("model.layers.%d.", layer)):]
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, "self_attn."), "mlp.")
		return names.layer(layer, rest)
	}
	return hf
}
