package gpu

import (
	"embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/graft-ml/graft/core/tensor"
)

//go:embed shaders/*.wgsl
var shaderFS embed.FS

// kernel names one compute shader: shaders/<name>.wgsl. Kernels that read
// a weight declare a u32 storage array named wt and call wload(i), which
// is defined for the weight's dtype by shaders/weight_<dtype>.wgsl, pasted
// where the kernel has the line //!weight. A decoder pulls in helpers it
// shares with others (byte reads, K-quant scales) with a line
// //!include <name>, pasted once each.
//
// A kernel specialised per pipeline (the tiled matrix product's tile
// sizes and operand layouts) has defs: words separated by spaces, each
// NAME=VALUE, declared as a u32 constant before the kernel, or a bare
// NAME, a flag that keeps the lines between //!if NAME and its //!else or
// //!end (see preprocess).
type kernel struct {
	name    string
	buffers int          // storage bindings after the argument slice
	weight  tensor.DType // dtype of wt, or Invalid
	defs    string
}

func (k kernel) key() string {
	key := k.name
	if k.defs != "" {
		key += "[" + k.defs + "]"
	}
	if k.weight == tensor.Invalid {
		return key
	}
	return key + "/" + k.weight.String()
}

// withWeight returns the variant of k that reads a weight of dtype dt.
func (k kernel) withWeight(dt tensor.DType) kernel { k.weight = dt; return k }

// source assembles the WGSL of k: the common prelude, the weight decoder
// and the kernel itself.
func (k kernel) source() (string, error) {
	read := func(name string) (string, error) {
		b, err := shaderFS.ReadFile("shaders/" + name + ".wgsl")
		if err != nil {
			return "", fmt.Errorf("kernel %s: %w", k.key(), err)
		}
		return string(b), nil
	}
	prelude, err := read("prelude")
	if err != nil {
		return "", err
	}
	body, err := read(k.name)
	if err != nil {
		return "", err
	}
	consts, flags, err := k.parseDefs()
	if err != nil {
		return "", err
	}
	if body, err = preprocess(body, flags); err != nil {
		return "", fmt.Errorf("kernel %s: %w", k.key(), err)
	}
	body = consts + body
	if k.weight != tensor.Invalid && strings.Contains(body, weightMarker) {
		// The decoder goes right after the kernel's bindings, since it
		// reads the binding named wt.
		dec, err := read(weightFile(k.weight))
		if err != nil {
			return "", err
		}
		if dec, err = expandIncludes(dec, read, map[string]bool{}); err != nil {
			return "", err
		}
		body = strings.Replace(body, weightMarker, dec, 1)
	}
	if k.weight != tensor.Invalid && !strings.Contains(body, "fn wload") {
		return "", fmt.Errorf("kernel %s reads no weight", k.key())
	}
	return prelude + "\n" + body, nil
}

// parseDefs turns k.defs into WGSL constant declarations and the set of
// flags.
func (k kernel) parseDefs() (string, map[string]bool, error) {
	var consts strings.Builder
	flags := map[string]bool{}
	for _, d := range strings.Fields(k.defs) {
		name, val, ok := strings.Cut(d, "=")
		if !ok {
			flags[name] = true
			continue
		}
		if _, err := strconv.ParseUint(val, 10, 32); err != nil {
			return "", nil, fmt.Errorf("kernel %s: constant %s: %w", k.key(), name, err)
		}
		fmt.Fprintf(&consts, "const %s: u32 = %su;\n", name, val)
	}
	return consts.String(), flags, nil
}

// Conditional lines of a kernel source: //!if NAME keeps the lines up to
// the matching //!else or //!end when flag NAME is set, and those after
// the //!else up to the //!end when it is not. They nest.
const (
	ifMarker   = "//!if "
	elseMarker = "//!else"
	endMarker  = "//!end"
)

// preprocess resolves the conditional lines of src for the given flags.
func preprocess(src string, flags map[string]bool) (string, error) {
	var out strings.Builder
	type level struct{ on, taken bool }
	var stack []level
	keep := func() bool {
		for _, l := range stack {
			if !l.on {
				return false
			}
		}
		return true
	}
	for line := range strings.Lines(src) {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, ifMarker):
			on := flags[strings.TrimSpace(strings.TrimPrefix(trim, ifMarker))]
			stack = append(stack, level{on: on, taken: on})
		case trim == elseMarker:
			if len(stack) == 0 {
				return "", errors.New("//!else without //!if")
			}
			l := &stack[len(stack)-1]
			l.on = !l.taken
		case trim == endMarker:
			if len(stack) == 0 {
				return "", errors.New("//!end without //!if")
			}
			stack = stack[:len(stack)-1]
		default:
			if keep() {
				out.WriteString(line)
			}
		}
	}
	if len(stack) > 0 {
		return "", errors.New("//!if without //!end")
	}
	return out.String(), nil
}

// includeMarker starts a line of a shader that pastes another shader file.
const includeMarker = "//!include "

// expandIncludes replaces each //!include line of src by the named file,
// itself expanded, skipping files already pasted (seen).
func expandIncludes(src string, read func(string) (string, error), seen map[string]bool) (string, error) {
	var out strings.Builder
	for line := range strings.Lines(src) {
		name, ok := strings.CutPrefix(line, includeMarker)
		if !ok {
			out.WriteString(line)
			continue
		}
		name = strings.TrimSpace(name)
		if seen[name] {
			continue
		}
		seen[name] = true
		inc, err := read(name)
		if err != nil {
			return "", err
		}
		if inc, err = expandIncludes(inc, read, seen); err != nil {
			return "", err
		}
		out.WriteString(inc)
		if !strings.HasSuffix(inc, "\n") {
			out.WriteString("\n")
		}
	}
	return out.String(), nil
}

// weightFile returns the decoder source for dt: shaders/weight_<dtype>.wgsl,
// the dtype's name in lower case; "" for none.
func weightFile(dt tensor.DType) string {
	if dt == tensor.Invalid {
		return ""
	}
	if !deviceDType(dt) {
		panic(fmt.Sprintf("gpu: no shader decoder for %v", dt))
	}
	return "weight_" + strings.ToLower(dt.String())
}

// deviceDType reports whether weights of dt can stay encoded on the
// device: the float types, NF4 and every ggml block type, each with its
// decoder in shaders/.
func deviceDType(dt tensor.DType) bool {
	switch dt {
	case tensor.F32, tensor.F16, tensor.BF16, tensor.NF4:
		return true
	}
	return slices.Contains(tensor.QuantTypes(), dt)
}

// weightMarker is the line of a kernel source where the weight decoder goes.
const weightMarker = "//!weight"

// The kernels. The count is the number of storage buffers each binds.
var (
	kFill        = kernel{name: "fill", buffers: 1}
	kDecode      = kernel{name: "decode", buffers: 2}
	kMatMul      = kernel{name: "matmul", buffers: 3}
	kMatMulTiled = kernel{name: "matmul_tiled", buffers: 3}
	kCopy        = kernel{name: "copy", buffers: 2}
	kBinary      = kernel{name: "binary", buffers: 3}
	kAxpby       = kernel{name: "axpby", buffers: 2}
	kMulAdd      = kernel{name: "muladd", buffers: 3}
	kSiLUMul     = kernel{name: "silumul", buffers: 3}
	kSiLUMulBack = kernel{name: "silumul_back", buffers: 5}
	kGELUMul     = kernel{name: "gelumul", buffers: 3}
	kGELUMulBack = kernel{name: "gelumul_back", buffers: 5}
	kEmbedding   = kernel{name: "embedding", buffers: 2}
	kEmbedBack   = kernel{name: "embedding_back", buffers: 2}
	kRMSNorm     = kernel{name: "rmsnorm", buffers: 3}
	kRMSNormBack = kernel{name: "rmsnorm_back", buffers: 5}
	kRMSNormDW   = kernel{name: "rmsnorm_dw", buffers: 4}
	kRoPE        = kernel{name: "rope", buffers: 1}
	kRoPEPair    = kernel{name: "rope", buffers: 2, defs: "PAIR"}
	kAttention   = kernel{name: "attention", buffers: 4}
	kAttnBlock   = kernel{name: "attention_block", buffers: 4}
	kAttnBackQ   = kernel{name: "attention_back_q", buffers: 6}
	kAttnBackKV  = kernel{name: "attention_back_kv", buffers: 7}
	kSoftmax     = kernel{name: "softmax", buffers: 2}
	kCrossEnt    = kernel{name: "cross_entropy", buffers: 3}
	kSumSquares  = kernel{name: "sumsq", buffers: 7}
	kAdamW       = kernel{name: "adamw", buffers: 4}
	kAdamWGroup  = kernel{name: "adamw_group", buffers: 4 * adamSlots}
)
