package tensor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// ggmlGolden mirrors core/tensor/testdata/ggml_quants_golden.json, written
// by tools/golden/ggml_quants_reference.py (a NumPy transcription of
// ggml's reference quantizers, float32 operation by operation).
type ggmlGolden struct {
	Inputs map[string][]byte `json:"inputs"` // little-endian float32
	Types  map[string][]struct {
		Input   string `json:"input"`
		Quant   []byte `json:"quant"`
		Dequant []byte `json:"dequant"` // little-endian float32
	} `json:"types"`
}

func float32sLE(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// TestGGMLQuantGolden: for every ggml type, Encode gives ggml's reference
// quantizer's bytes and Decode its dequantized floats, bit for bit.
func TestGGMLQuantGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/ggml_quants_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g ggmlGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("ggml_quants_golden.json: %v", err)
	}
	for _, dt := range QuantTypes() {
		cases := g.Types[dt.String()]
		if len(cases) == 0 {
			t.Errorf("%v: no golden cases", dt)
			continue
		}
		for _, c := range cases {
			in := float32sLE(g.Inputs[c.Input])
			got := encode(t, dt, in)
			if !bytes.Equal(got, c.Quant) {
				bb := dt.BlockBytes()
				for i := range got {
					if got[i] != c.Quant[i] {
						t.Errorf("%v %s: byte %d (block %d, offset %d) = %#02x, ggml %#02x", dt, c.Input, i, i/bb, i%bb, got[i], c.Quant[i])
						break
					}
				}
				continue
			}
			want := float32sLE(c.Dequant)
			back := decode(t, dt, c.Quant, len(in))
			for i := range back {
				if math.Float32bits(back[i]) != math.Float32bits(want[i]) {
					t.Errorf("%v %s: dequantized[%d] = %v, ggml %v", dt, c.Input, i, back[i], want[i])
					break
				}
			}
		}
	}
}

// TestGGMLQuantErrorBound checks each type's round trip error against
// what its bits allow, on weights of a typical spread, so that a decoder
// that mixes up the layout consistently with its encoder still fails.
func TestGGMLQuantErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	// Relative RMS error bounds, a little above what ggml reaches on
	// Gaussian data (Q2_K ~0.3, Q3_K ~0.17, Q4_* ~0.09, Q5_* ~0.045,
	// Q6_K ~0.022, Q8_0 ~0.004).
	bound := map[DType]float64{
		Q4_0: 0.12, Q4_1: 0.12, Q5_0: 0.06, Q5_1: 0.06, Q8_0: 0.006,
		Q2_K: 0.4, Q3_K: 0.22, Q4_K: 0.11, Q5_K: 0.055, Q6_K: 0.03,
		IQ4_NL: 0.1, IQ4_XS: 0.1,
	}
	for _, dt := range QuantTypes() {
		back := decode(t, dt, encode(t, dt, x), len(x))
		var se, sx float64
		for i := range x {
			d := float64(back[i] - x[i])
			se += d * d
			sx += float64(x[i]) * float64(x[i])
		}
		rel := math.Sqrt(se / sx)
		if rel > bound[dt] {
			t.Errorf("%v: relative RMS error %.4f, want <= %v", dt, rel, bound[dt])
		}
		t.Logf("%v: relative RMS error %.4f", dt, rel)
	}
}

func TestGGMLQuantSizes(t *testing.T) {
	for _, c := range []struct {
		dt           DType
		elems, bytes int
	}{
		{Q4_1, 32, 20}, {Q5_0, 32, 22}, {Q5_1, 32, 24},
		{Q2_K, 256, 84}, {Q3_K, 256, 110}, {Q4_K, 256, 144}, {Q5_K, 256, 176}, {Q6_K, 256, 210},
		{IQ4_NL, 32, 18}, {IQ4_XS, 256, 136},
	} {
		if c.dt.BlockElems() != c.elems || c.dt.BlockBytes() != c.bytes {
			t.Errorf("%v: block %d elements in %d bytes, want %d in %d", c.dt, c.dt.BlockElems(), c.dt.BlockBytes(), c.elems, c.bytes)
		}
		if !c.dt.Quantized() || !c.dt.Float() {
			t.Errorf("%v: Quantized %v Float %v", c.dt, c.dt.Quantized(), c.dt.Float())
		}
		if p, err := ParseDType(c.dt.String()); err != nil || p != c.dt {
			t.Errorf("ParseDType(%q) = %v, %v", c.dt.String(), p, err)
		}
	}
}

// TestKQuantBadInput: a row that is not a whole number of 256-value
// super-blocks, or storage cut short, is an error that names the type and
// the tensor, never a panic.
func TestKQuantBadInput(t *testing.T) {
	for _, dt := range []DType{Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS} {
		be, bb := dt.BlockElems(), dt.BlockBytes()
		if err := Encode(dt, make([]float32, be+16), make([]byte, 2*bb)); err == nil || !strings.Contains(err.Error(), dt.String()) {
			t.Errorf("%v: Encode of a partial block: %v", dt, err)
		}
		if err := Decode(dt, make([]byte, bb-1), make([]float32, be)); err == nil || !strings.Contains(err.Error(), dt.String()) {
			t.Errorf("%v: Decode of a truncated block: %v", dt, err)
		}
		_, err := New("blk.0.ffn_down.weight", dt, Shape{2, be + be/2}, make([]byte, 3*bb))
		if err == nil || !strings.Contains(err.Error(), "blk.0.ffn_down.weight") || !strings.Contains(err.Error(), dt.String()) {
			t.Errorf("%v: rows of %d: %v", dt, be+be/2, err)
		}
		_, err = New("blk.0.attn_v.weight", dt, Shape{2, be}, make([]byte, 2*bb-1))
		if err == nil || !strings.Contains(err.Error(), "blk.0.attn_v.weight") || !strings.Contains(err.Error(), dt.String()) {
			t.Errorf("%v: truncated data: %v", dt, err)
		}
	}
}
