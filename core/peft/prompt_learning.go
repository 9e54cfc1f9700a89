package peft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// PEFT's peft_type values of the prompt-learning methods.
const (
	PeftTypePromptTuning = "PROMPT_TUNING"
	PeftTypePrefixTuning = "PREFIX_TUNING"
)

// promptEmbeddingsKey is the one tensor a PEFT prompt-learning adapter
// file holds, whatever the method (PEFT's _get_adapter_state_dict for
// prompt encoders).
const promptEmbeddingsKey = "prompt_embeddings"

// PromptLearningConfig holds the fields PEFT's PromptLearningConfig shares
// between prompt tuning and prefix tuning. Zero values of the model-derived
// fields (TokenDim, NumAttentionHeads, NumLayers) are filled from the model,
// as PEFT's get_peft_model does; when set they must match it.
type PromptLearningConfig struct {
	// PeftType is the method's peft_type; empty means the method's own.
	PeftType string
	// TaskType must be "CAUSAL_LM"; empty means "CAUSAL_LM".
	TaskType string
	// NumVirtualTokens is the number of virtual tokens (prompt tuning) or
	// prefix positions (prefix tuning). PEFT has no default; it must be
	// set.
	NumVirtualTokens int
	// TokenDim is the model's hidden size for prompt tuning, and the
	// key/value width (num_key_value_heads · head_dim) for prefix tuning,
	// as PEFT records it for grouped-query models.
	TokenDim int
	// NumTransformerSubmodules is 1 for decoder-only models (0 means 1).
	NumTransformerSubmodules int
	// NumAttentionHeads is the model's attention heads for prompt tuning,
	// its key/value heads for prefix tuning.
	NumAttentionHeads int
	// NumLayers is the model's number of decoder layers.
	NumLayers int
	// BaseModelNameOrPath and Revision are recorded for tools that fetch
	// the base model; graft does not read them.
	BaseModelNameOrPath string
	Revision            string
	// InferenceMode is false while training; saved files say true.
	InferenceMode bool
	// ModulesToSave must be empty: graft trains only the prompt.
	ModulesToSave []string
}

// resolve fills the model-derived fields of c and checks them against the
// model: tokenDim and heads are what the method expects there.
func (c *PromptLearningConfig) resolve(m *model.Model, peftType string, tokenDim, heads int) error {
	mc := m.Config
	if c.PeftType == "" {
		c.PeftType = peftType
	}
	if c.TaskType == "" {
		c.TaskType = TaskCausalLM
	}
	if c.NumTransformerSubmodules == 0 {
		c.NumTransformerSubmodules = 1
	}
	fill := func(field *int, want int) {
		if *field == 0 {
			*field = want
		}
	}
	fill(&c.TokenDim, tokenDim)
	fill(&c.NumAttentionHeads, heads)
	fill(&c.NumLayers, mc.Layers)
	switch {
	case c.PeftType != peftType:
		return fmt.Errorf("peft_type is %q, want %q", c.PeftType, peftType)
	case c.TaskType != TaskCausalLM:
		return fmt.Errorf("task_type %q is not supported (graft fine-tunes causal language models: %q)", c.TaskType, TaskCausalLM)
	case c.NumVirtualTokens <= 0:
		return fmt.Errorf("num_virtual_tokens is %d; it must be at least 1", c.NumVirtualTokens)
	case c.NumVirtualTokens >= mc.Context:
		return fmt.Errorf("num_virtual_tokens %d leaves no room for real tokens in the context of %d", c.NumVirtualTokens, mc.Context)
	case c.NumTransformerSubmodules != 1:
		return fmt.Errorf("num_transformer_submodules is %d; a decoder-only model has 1 (2 is for encoder-decoder models)", c.NumTransformerSubmodules)
	case c.TokenDim != tokenDim:
		return fmt.Errorf("token_dim is %d but the model needs %d: the adapter was made for another model", c.TokenDim, tokenDim)
	case c.NumAttentionHeads != heads:
		return fmt.Errorf("num_attention_heads is %d but the model needs %d: the adapter was made for another model", c.NumAttentionHeads, heads)
	case c.NumLayers != mc.Layers:
		return fmt.Errorf("num_layers is %d but the model has %d layers: the adapter was made for another model", c.NumLayers, mc.Layers)
	case len(c.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %q is not supported", c.ModulesToSave)
	}
	return nil
}

// jsonFields returns the keys PromptLearningConfig contributes to
// adapter_config.json.
func (c PromptLearningConfig) jsonFields() map[string]any {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var modulesToSave any
	if len(c.ModulesToSave) > 0 {
		modulesToSave = c.ModulesToSave
	}
	return map[string]any{
		"auto_mapping":               nil,
		"base_model_name_or_path":    nullable(c.BaseModelNameOrPath),
		"inference_mode":             c.InferenceMode,
		"modules_to_save":            modulesToSave,
		"num_attention_heads":        c.NumAttentionHeads,
		"num_layers":                 c.NumLayers,
		"num_transformer_submodules": c.NumTransformerSubmodules,
		"num_virtual_tokens":         c.NumVirtualTokens,
		"peft_type":                  c.PeftType,
		"revision":                   nullable(c.Revision),
		"task_type":                  c.TaskType,
		"token_dim":                  c.TokenDim,
	}
}

// jsonTargets lists where parsePromptConfig stores each shared key.
func (c *PromptLearningConfig) jsonTargets() map[string]any {
	return map[string]any{
		"peft_type":                  &c.PeftType,
		"task_type":                  &c.TaskType,
		"num_virtual_tokens":         &c.NumVirtualTokens,
		"token_dim":                  &c.TokenDim,
		"num_transformer_submodules": &c.NumTransformerSubmodules,
		"num_attention_heads":        &c.NumAttentionHeads,
		"num_layers":                 &c.NumLayers,
		"base_model_name_or_path":    &c.BaseModelNameOrPath,
		"revision":                   &c.Revision,
		"inference_mode":             &c.InferenceMode,
		"modules_to_save":            &c.ModulesToSave,
	}
}

// promptBookkeepingKeys are keys PEFT writes that change nothing graft
// computes; they are accepted with any value.
var promptBookkeepingKeys = map[string]bool{"auto_mapping": true, "peft_version": true}

// parsePromptConfig decodes a JSON object into targets (key -> pointer).
// A null value leaves the target alone. Unknown keys are listed in
// warnings.
func parsePromptConfig(data []byte, targets map[string]any) (warnings []string, err error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // says where the syntax breaks
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("not a JSON object: %s", compactJSON(data))
	}
	if _, ok := raw["peft_type"]; !ok {
		return nil, errors.New("peft_type is missing")
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		v := raw[key]
		dst, known := targets[key]
		switch {
		case known && string(v) == "null":
		case known:
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("%s = %s: %w", key, compactJSON(v), err)
			}
		case !promptBookkeepingKeys[key]:
			warnings = append(warnings, fmt.Sprintf("unknown key %q ignored", key))
		}
	}
	return warnings, nil
}

// encodePromptConfig writes fields as PEFT's save_pretrained does:
// json.dumps(indent=2, sort_keys=True), whose default ensure_ascii escapes
// every non-ASCII character (an init text may well have some).
func encodePromptConfig(fields map[string]any) ([]byte, error) {
	compact, err := marshalNoHTML(fields)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	return asciiJSON(out.Bytes()), nil
}

// readPromptConfig reads adapter_config.json from src and parses it with
// parse, prefixing errors and warnings with the file's path.
func readPromptConfig(src Source, parse func([]byte) ([]string, error)) ([]string, error) {
	path := sourcePath(src, ConfigFileName)
	data, err := src.ReadFile(ConfigFileName)
	if err != nil {
		return nil, fmt.Errorf("peft config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("peft config %s: larger than the %d-byte limit", path, maxConfigSize)
	}
	warnings, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("peft config %s: %w", path, err)
	}
	for i, w := range warnings {
		warnings[i] = path + ": " + w
	}
	return warnings, nil
}

// readPromptEmbeddings reads the prompt_embeddings tensor of src's
// adapter_model.safetensors, which must be the file's only tensor, of a
// float dtype, the given shape and finite.
func readPromptEmbeddings(src Source, shape tensor.Shape, what string) ([]float32, error) {
	path := sourcePath(src, WeightsFileName)
	data, err := src.ReadFile(WeightsFileName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, berr := src.ReadFile("adapter_model.bin"); berr == nil {
				return nil, fmt.Errorf("peft adapter %s: only adapter_model.bin (a PyTorch pickle) is present; graft reads adapters in safetensors (save with safe_serialization=True)", src.Name())
			}
		}
		return nil, fmt.Errorf("peft adapter %s: %w", src.Name(), err)
	}
	f, err := safetensors.Parse(readerAt(data), int64(len(data)), path)
	if err != nil {
		return nil, err
	}
	for _, ti := range f.Tensors {
		if ti.Name != promptEmbeddingsKey {
			return nil, fmt.Errorf("safetensors %s: tensor %q: a prompt-learning adapter holds only %q", path, ti.Name, promptEmbeddingsKey)
		}
	}
	ti, ok := f.Tensor(promptEmbeddingsKey)
	if !ok {
		return nil, fmt.Errorf("safetensors %s: tensor %q is missing", path, promptEmbeddingsKey)
	}
	switch ti.DType {
	case tensor.F32, tensor.F16, tensor.BF16, tensor.F64:
	default:
		return nil, fmt.Errorf("safetensors %s: tensor %q has dtype %s; want F32, F16, BF16 or F64", path, ti.Name, ti.DTypeName)
	}
	if !ti.Shape.Equal(shape) {
		return nil, fmt.Errorf("safetensors %s: tensor %q has shape %v, want %v (%s)", path, ti.Name, ti.Shape, shape, what)
	}
	t, err := f.ReadTensor(ti.Name)
	if err != nil {
		return nil, err
	}
	vals, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	if i := firstNonFinite(vals); i >= 0 {
		return nil, fmt.Errorf("safetensors %s: tensor %q: element %d is %g", path, ti.Name, i, vals[i])
	}
	return vals, nil
}

// promptFiles encodes a prompt-learning adapter: its config JSON and the
// prompt_embeddings tensor.
func promptFiles(cfgJSON []byte, vals []float32, shape tensor.Shape) (Files, error) {
	if i := firstNonFinite(vals); i >= 0 {
		return nil, fmt.Errorf("refusing to save tensor %q: element %d is %g", promptEmbeddingsKey, i, vals[i])
	}
	t, err := tensor.FromFloat32(promptEmbeddingsKey, shape, vals)
	if err != nil {
		return nil, err
	}
	var weights bytes.Buffer
	if err := safetensors.Write(&weights, []*tensor.Tensor{t}, map[string]string{"format": "pt"}); err != nil {
		return nil, err
	}
	return Files{ConfigFileName: cfgJSON, WeightsFileName: weights.Bytes()}, nil
}

// errUnloaded is returned by an adapter's methods after Unload.
var errUnloaded = errors.New("the adapter has been unloaded")
