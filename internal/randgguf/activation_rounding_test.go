package randgguf_test

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// llamaCppActivations is a LinearHook that computes a projection with a
// quantized weight as llama.cpp's CPU backend does. llama.cpp does not
// multiply the weight by float activations: it first rounds each row of
// activations to 8-bit blocks (ggml's vec_dot_type of the weight: Q8_0,
// Q8_1 or Q8_K, tensor.RoundActivations) and then takes exact integer dot
// products with the weight's raw quants, scaled per block. graft's product
// of the decoded weight with the rounded activations is the same sum to
// float32 rounding, with one exception the hook adds itself: for Q4_1 and
// Q5_1 (Q8_1 activations) llama.cpp's min term is m * S with S the block's
// d*sum(q) stored as f16, not f16(d)*sum(q).
//
// Which kernel runs does not change this. On this x86 build (AVX2; the
// "repack tensor" lines of its debug log) llama.cpp repacks Q4_0, IQ4_NL
// and Q4_K into 8-row interleaved blocks (ggml-cpu/repack.cpp, with its
// 4-row activation quantizers), hands Q8_0 and Q5_0 to llamafile's tinyBLAS
// and the rest to ggml's vec_dot: all take exact per-block integer sums of
// activations rounded as above. A model with one quantized projection
// agrees with this emulation to float rounding (~1e-6) for every type and
// projection, once rounding ties are resolved (roundingTies).
type llamaCppActivations struct {
	t *testing.T
	// mins are the weight's per-block f16 minimums, [Out][In/32], for
	// Q4_1 and Q5_1; nil for other types.
	mins [][]float32
	ties *roundingTies
}

func (h llamaCppActivations) Forward(b backend.Backend, l *model.Linear, dst, x backend.Buffer) {
	dt := l.Weight.DType()
	vals := make([]float32, x.Shape().Numel())
	if err := b.Read(x, 0, vals); err != nil {
		h.t.Fatal(err)
	}
	rows := len(vals) / l.In
	// minTerm[r][blk] is what llama.cpp's min term adds beyond graft's for
	// row r: S - f16(d)*sum(q) of each Q8_1 block.
	var minTerm [][]float32
	for r := range rows {
		row := vals[r*l.In : (r+1)*l.In]
		h.ties.visit(row, dt)
		switch dt.VecDotType() {
		case tensor.VecDotQ8_0:
			blocks := make([]tensor.ActQ8_0, l.In/32)
			if err := tensor.QuantizeQ8_0(row, blocks); err != nil {
				h.t.Fatal(err)
			}
			for i := range blocks {
				blocks[i].D = h.ties.f16(blockMax(row[32*i:32*i+32])/127, blocks[i].D)
			}
			tensor.DequantizeQ8_0(blocks, row)
		case tensor.VecDotQ8_1:
			blocks := make([]tensor.ActQ8_1, l.In/32)
			if err := tensor.QuantizeQ8_1(row, blocks); err != nil {
				h.t.Fatal(err)
			}
			extra := make([]float32, len(blocks))
			for i, blk := range blocks {
				var sum int
				for _, q := range blk.Qs {
					sum += int(q)
				}
				d := blockMax(row[32*i:32*i+32]) / 127
				blk.D = h.ties.f16(d, blk.D)
				blk.S = h.ties.f16(d*float32(sum), blk.S)
				blocks[i] = blk
				extra[i] = tensor.F16ToF32(blk.S) - tensor.F16ToF32(blk.D)*float32(sum)
			}
			tensor.DequantizeQ8_1(blocks, row)
			minTerm = append(minTerm, extra)
		default:
			tensor.RoundActivations(row, dt)
		}
	}
	tmp := b.Zeros(x.Shape()...)
	defer b.Free(tmp)
	if err := b.Write(tmp, 0, vals); err != nil {
		h.t.Fatal(err)
	}
	l.Base(b, dst, tmp)
	if minTerm == nil || h.mins == nil {
		return
	}
	out := make([]float32, dst.Shape().Numel())
	if err := b.Read(dst, 0, out); err != nil {
		h.t.Fatal(err)
	}
	for r, extra := range minTerm {
		for o, m := range h.mins {
			var s float64
			for i, e := range extra {
				s += float64(m[i]) * float64(e)
			}
			out[r*l.Out+o] += float32(s)
		}
	}
	if err := b.Write(dst, 0, out); err != nil {
		h.t.Fatal(err)
	}
}

func (h llamaCppActivations) Backward(backend.Backend, *model.Linear, backend.Buffer, backend.Buffer, backend.Buffer) {
	h.t.Fatal("llamaCppActivations is for inference")
}

// blockMins returns the f16 minimum m of every block of a Q4_1 or Q5_1
// weight [rows, cols] (both blocks start with f16 d, then f16 m), or nil
// for another type.
func blockMins(w *tensor.Tensor) [][]float32 {
	if w.DType != tensor.Q4_1 && w.DType != tensor.Q5_1 {
		return nil
	}
	rows, cols := w.Rows()
	per := cols / w.DType.BlockElems()
	size, _ := w.DType.Bytes(int64(w.DType.BlockElems()))
	mins := make([][]float32, rows)
	for r := range mins {
		mins[r] = make([]float32, per)
		for i := range per {
			off := (r*per + i) * int(size)
			mins[r][i] = tensor.F16ToF32(binary.LittleEndian.Uint16(w.Data[off+2:]))
		}
	}
	return mins
}

// roundingTies resolves the one thing the emulation cannot know: which
// way llama.cpp rounds a value that sits on a rounding boundary. graft's
// float activations differ from llama.cpp's in the last bits (its own expf
// in SiLU and softmax, float32 sin/cos in RoPE, its summation order), so
// llama.cpp may round the other way where graft's value lies within a
// relative tol of a half-way point: an activation between two 8-bit steps
// (visit), or a block scale between two f16 values (f16: Q8_0's and
// Q8_1's d, Q8_1's s), which moves all 32 values of the block by 2^-11.
// One such step moves this random model's log-probabilities by 1e-4 to
// 2e-2: Q4_K's 1.4e-2 and IQ4_XS's 2e-2 are one activation each, Q5_0's
// and IQ4_NL's 1.5e-3 two or three f16 scales, Q4_0's 2.8e-3 three steps,
// one of which only appears once an earlier one is taken. visit and f16 record the
// near-ties on each pass; resolve then tries each the other way, closest
// first, keeping a change only where it brings graft nearer to llama.cpp.
// A near-tie is keyed by the value's and its block scale's bits, so the q,
// k and v projections (or gate and up), which round the same input alike
// in llama.cpp, flip together.
type roundingTies struct {
	tol   float64
	flip  map[tieKey]bool
	found map[tieKey]float64 // near-ties of the last pass: distance from the boundary, in tol
}

type tieKey struct{ x, scale uint32 }

func newRoundingTies(tol float64) *roundingTies {
	return &roundingTies{tol: tol, flip: map[tieKey]bool{}, found: map[tieKey]float64{}}
}

// visit records the near-ties of one row of activations bound for a
// weight of type dt and moves each flipped one just past its boundary, so
// that tensor.RoundActivations rounds it to the other step. The scales are
// those of the activation quantizers: 127/amax per 32 for Q8_0 and Q8_1,
// -127/max (max: the value of largest magnitude, first on a tie) per 256
// for Q8_K.
func (t *roundingTies) visit(row []float32, dt tensor.DType) {
	n := 32
	if dt.VecDotType() == tensor.VecDotQ8K {
		n = 256
	}
	if t == nil || dt.VecDotType() == tensor.VecDotNone || len(row)%n != 0 {
		return
	}
	for b := 0; b < len(row); b += n {
		blk := row[b : b+n]
		var amax, mx float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 {
			continue
		}
		scale := 127 / amax
		if n == 256 {
			scale = -127 / mx
		}
		for j, v := range blk {
			y := float64(v * scale)
			frac := math.Abs(y) - math.Floor(math.Abs(y))
			// The 1 stands for the error of a small activation, which is
			// relative to the row's larger ones.
			dist := math.Abs(frac-0.5) / (t.tol * (1 + math.Abs(y)))
			if dist >= 1 || math.Abs(y) > 126 {
				continue // the step on either side of 126.5 can clip
			}
			key := tieKey{math.Float32bits(v), math.Float32bits(scale)}
			t.found[key] = dist
			if t.flip[key] {
				other := math.RoundToEven(y) + 1 // the step on y's other side
				if other-1 > y {
					other -= 2
				}
				blk[j] = float32(other) / scale
			}
		}
	}
}

// f16 is the f16 rounding r of a block scale v (Q8_0's and Q8_1's d,
// Q8_1's s) as llama.cpp may have rounded it: where v sits within tol of
// the half-way point between two f16 values, llama.cpp's v may round to
// the other one, which scales the whole block by 1 +- 2^-11.
func (t *roundingTies) f16(v float32, r uint16) uint16 {
	if t == nil || v == 0 {
		return r
	}
	got := tensor.F16ToF32(r)
	other := r + 1 // f16 bits are sign and magnitude: +1 is one step out
	if float32(math.Abs(float64(v))) < float32(math.Abs(float64(got))) {
		other = r - 1
	}
	mid := (float64(got) + float64(tensor.F16ToF32(other))) / 2
	dist := math.Abs(float64(v)-mid) / (t.tol * math.Abs(float64(v)))
	if dist >= 1 {
		return r
	}
	key := tieKey{math.Float32bits(v), 1<<32 - 1} // no activation scale is NaN
	t.found[key] = dist
	if t.flip[key] {
		return other
	}
	return r
}

func blockMax(blk []float32) float32 {
	var amax float32
	for _, v := range blk {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	return amax
}

// resolve tries the near-ties of the last pass the other way, closest
// first, and keeps each flip that lowers err (which runs a pass), until
// err is below done. A kept flip changes what follows it, so the near-ties
// of its pass join the ones still to try. It returns the final error and
// the flips kept.
func (t *roundingTies) resolve(err func() float64, start, done float64) (float64, int) {
	best, kept := start, 0
	pending, tried := maps.Clone(t.found), map[tieKey]bool{}
	for best > done && len(pending) > 0 {
		k := closestTie(pending)
		delete(pending, k)
		tried[k] = true
		t.flip[k] = true
		t.found = map[tieKey]float64{}
		if e := err(); e < best {
			best, kept = e, kept+1
			for n, d := range t.found {
				if !tried[n] {
					pending[n] = d
				}
			}
		} else {
			delete(t.flip, k)
		}
	}
	return best, kept
}

// closestTie is the near-tie of least distance (then of least bits, so
// that the order does not depend on map iteration).
func closestTie(ties map[tieKey]float64) tieKey {
	var best tieKey
	first := true
	for k, d := range ties {
		if first || cmp.Or(cmp.Compare(d, ties[best]), cmp.Compare(k.x, best.x), cmp.Compare(k.scale, best.scale)) < 0 {
			best, first = k, false
		}
	}
	return best
}

// roundActivationsLikeLlamaCpp installs llamaCppActivations on every
// projection of m, loaded from the GGUF file at path, and on its output
// head; the Q4_1 and Q5_1 minimums come from the file's raw blocks.
func roundActivationsLikeLlamaCpp(t *testing.T, m *model.Model, path string, ties *roundingTies) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// mins by projection name (llama.cpp's tensor names: llamacpp's
	// converter writes blk.N.<part>.weight; a tied head reads token_embd).
	parts := map[string]string{"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
		"attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
	mins := map[string][][]float32{}
	head := "token_embd.weight"
	for _, ti := range f.Tensors {
		if ti.Name == "output.weight" {
			head = ti.Name
		}
	}
	for _, ti := range f.Tensors {
		if ti.DType != tensor.Q4_1 && ti.DType != tensor.Q5_1 {
			continue
		}
		var name string
		var layer int
		var part string
		if ti.Name == head {
			name = "lm_head"
		} else if n, _ := fmt.Sscanf(strings.ReplaceAll(ti.Name, ".", " "), "blk %d %s weight", &layer, &part); n == 2 && parts[part] != "" {
			name = fmt.Sprintf("model.layers.%d.%s", layer, parts[part])
		} else {
			continue
		}
		w, err := f.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		mins[name] = blockMins(w)
	}
	for _, l := range append(m.Linears(), m.Output) {
		l.AddHook(llamaCppActivations{t: t, mins: mins[l.Name], ties: ties})
	}
}
