package tensor

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// nf4Golden mirrors core/tensor/testdata/nf4_golden.json, written by
// tools/golden/nf4_reference.py (a NumPy transcription of bitsandbytes).
type nf4Golden struct {
	NF4CodeBits      []uint32 `json:"nf4_code_bits"`
	NF4ThresholdBits []uint32 `json:"nf4_threshold_bits"`
	DynamicMapBits   []uint32 `json:"dynamic_map_bits"`
	Explicit         []struct {
		Name      string   `json:"name"`
		InputBits []uint32 `json:"input_bits"`
		nf4GoldenState
	} `json:"explicit"`
	Generated []struct {
		Seed        uint64 `json:"seed"`
		InputSHA256 string `json:"input_sha256"`
		nf4GoldenState
	} `json:"generated"`
	Blockwise struct {
		InputBits  []uint32 `json:"input_bits"`
		CodesHex   string   `json:"codes_hex"`
		AbsmaxBits []uint32 `json:"absmax_bits"`
	} `json:"blockwise"`
}

type nf4GoldenState struct {
	N              int      `json:"n"`
	DoubleQuant    bool     `json:"double_quant"`
	CodesSHA256    string   `json:"codes_sha256"`
	DequantSHA256  string   `json:"dequant_sha256"`
	CodesHex       string   `json:"codes_hex"`
	DequantBits    []uint32 `json:"dequant_bits"`
	AbsmaxBits     []uint32 `json:"absmax_bits"`
	AbsmaxCodesHex string   `json:"absmax_codes_hex"`
	NestedBits     []uint32 `json:"nested_bits"`
	OffsetBits     uint32   `json:"offset_bits"`
}

func loadNF4Golden(t *testing.T) *nf4Golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/nf4_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g nf4Golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("nf4_golden.json: %v", err)
	}
	if len(g.Explicit) == 0 || len(g.Generated) == 0 {
		t.Fatal("nf4_golden.json has no cases")
	}
	return &g
}

func fromBits(bits []uint32) []float32 {
	out := make([]float32, len(bits))
	for i, b := range bits {
		out[i] = math.Float32frombits(b)
	}
	return out
}

func toBits(vals []float32) []uint32 {
	out := make([]uint32, len(vals))
	for i, v := range vals {
		out[i] = math.Float32bits(v)
	}
	return out
}

func sha256Float32s(vals []float32) string {
	buf := make([]byte, 4*len(vals))
	PutFloat32s(buf, vals)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// splitMix64 and goldenInputs reproduce the Python script's generator.
type splitMix64 uint64

func (s *splitMix64) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

func (s *splitMix64) uniform() float32 { return float32(float64(s.next()>>40)*0x1p-23 - 1) }

func goldenInputs(seed uint64, n int) []float32 {
	g := splitMix64(seed)
	out := make([]float32, n)
	var scale float32
	for i := range out {
		if i%64 == 0 {
			scale = float32(math.Ldexp(1, -(4 + int(g.next()%6))))
		}
		a := g.uniform()
		b := g.uniform()
		c := g.uniform()
		out[i] = (a + b + c) * scale
	}
	return out
}

// checkGoldenState compares a quantization against the reference's.
func checkGoldenState(t *testing.T, d *NF4Data, want nf4GoldenState) {
	t.Helper()
	if got := sha256Hex(d.Codes); got != want.CodesSHA256 {
		t.Errorf("codes sha256 %s, want %s", got, want.CodesSHA256)
		if want.CodesHex != "" {
			t.Errorf("codes %x\nwant  %s", d.Codes, want.CodesHex)
		}
	}
	if want.DoubleQuant != d.DoubleQuant {
		t.Fatalf("double quantization %v, want %v", d.DoubleQuant, want.DoubleQuant)
	}
	if d.DoubleQuant {
		if got := hex.EncodeToString(d.AbsmaxCodes); got != want.AbsmaxCodesHex {
			t.Errorf("absmax codes %s\nwant         %s", got, want.AbsmaxCodesHex)
		}
		if got := toBits(d.NestedAbsmax); !equalBits(got, want.NestedBits) {
			t.Errorf("nested absmax bits %x, want %x", got, want.NestedBits)
		}
		if got := math.Float32bits(d.Offset); got != want.OffsetBits {
			t.Errorf("offset bits %#x (%v), want %#x (%v)", got, d.Offset, want.OffsetBits, math.Float32frombits(want.OffsetBits))
		}
	} else if got := toBits(d.Absmax); !equalBits(got, want.AbsmaxBits) {
		t.Errorf("absmax bits %x, want %x", got, want.AbsmaxBits)
	}
	deq, err := d.Dequantize()
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256Float32s(deq); got != want.DequantSHA256 {
		t.Errorf("dequantized sha256 %s, want %s", got, want.DequantSHA256)
		if want.DequantBits != nil {
			t.Errorf("dequantized bits %x\nwant %x", toBits(deq), want.DequantBits)
		}
	}
}

func equalBits(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNF4TablesMatchReference(t *testing.T) {
	g := loadNF4Golden(t)
	if got := toBits(nf4Code[:]); !equalBits(got, g.NF4CodeBits) {
		t.Errorf("NF4 code bits %x, want %x", got, g.NF4CodeBits)
	}
	if got := toBits(nf4Bounds[:]); !equalBits(got, g.NF4ThresholdBits) {
		t.Errorf("NF4 threshold bits %x, want %x", got, g.NF4ThresholdBits)
	}
	if got := toBits(dynamicMap[:]); !equalBits(got, g.DynamicMapBits) {
		t.Errorf("dynamic map bits %x\nwant %x", got, g.DynamicMapBits)
	}
}

func TestQuantizeNF4MatchesReference(t *testing.T) {
	g := loadNF4Golden(t)
	for _, c := range g.Explicit {
		name := c.Name
		if c.DoubleQuant {
			name += "/double"
		}
		t.Run(name, func(t *testing.T) {
			in := fromBits(c.InputBits)
			d := QuantizeNF4(in, c.DoubleQuant)
			if d.N != c.N {
				t.Fatalf("N = %d, want %d", d.N, c.N)
			}
			if got := hex.EncodeToString(d.Codes); got != c.CodesHex {
				t.Errorf("codes %s\nwant  %s", got, c.CodesHex)
			}
			checkGoldenState(t, d, c.nf4GoldenState)
		})
	}
	for _, c := range g.Generated {
		t.Run("generated", func(t *testing.T) {
			in := goldenInputs(c.Seed, c.N)
			if got := sha256Float32s(in); got != c.InputSHA256 {
				t.Fatalf("seed %d: inputs differ from the script's (sha256 %s, want %s)", c.Seed, got, c.InputSHA256)
			}
			checkGoldenState(t, QuantizeNF4(in, c.DoubleQuant), c.nf4GoldenState)
		})
	}
}

// TestQuantizeDynamicMatchesReference checks bitsandbytes' 8-bit
// blockwise quantizer, which double quantization uses, at the map's own
// midpoints and their neighbours, where its tie rule shows.
func TestQuantizeDynamicMatchesReference(t *testing.T) {
	g := loadNF4Golden(t)
	codes, absmax := quantizeDynamic(fromBits(g.Blockwise.InputBits), NF4NestedBlockSize)
	if got := hex.EncodeToString(codes); got != g.Blockwise.CodesHex {
		t.Errorf("codes %s\nwant  %s", got, g.Blockwise.CodesHex)
	}
	if got := toBits(absmax); !equalBits(got, g.Blockwise.AbsmaxBits) {
		t.Errorf("absmax %x, want %x", got, g.Blockwise.AbsmaxBits)
	}
}

// TestNF4IndexIsNearestCode checks the decision tree against a plain
// nearest-code search away from the thresholds, and the tie rule on them:
// a value exactly on a threshold takes the lower code.
func TestNF4IndexIsNearestCode(t *testing.T) {
	for i := 0; i <= 20000; i++ {
		x := float32(-1 + float64(i)/10000)
		best := 0
		for c := range nf4Code {
			if math.Abs(float64(x-nf4Code[c])) < math.Abs(float64(x-nf4Code[best])) {
				best = c
			}
		}
		if got := nf4Index(x); int(got) != best {
			t.Fatalf("nf4Index(%v) = %d, nearest code is %d", x, got, best)
		}
	}
	for k, th := range nf4Bounds {
		if got := nf4Index(th); int(got) != k {
			t.Errorf("nf4Index(threshold %v) = %d, want the lower code %d", th, got, k)
		}
		if got := nf4Index(math.Nextafter32(th, 2)); int(got) != k+1 {
			t.Errorf("nf4Index(just above %v) = %d, want %d", th, got, k+1)
		}
	}
	if got := nf4Index(float32(math.NaN())); got != 0 {
		t.Errorf("nf4Index(NaN) = %d, want 0", got)
	}
}

// TestDequantizeNF4Range decodes every sub-range of tensors whose rows
// (of 50 and 70) are not whole blocks, so ranges start inside blocks, on
// odd elements and across rows, and compares with a full decode.
func TestDequantizeNF4Range(t *testing.T) {
	for _, dq := range []bool{false, true} {
		for _, n := range []int{0, 1, 63, 64, 65, 3 * 50, 7 * 70, 64*257 + 3} {
			d := QuantizeNF4(goldenInputs(uint64(n), n), dq)
			full, err := d.Dequantize()
			if err != nil {
				t.Fatal(err)
			}
			step := max(1, n/40)
			for start := 0; start <= n; start += step {
				for end := start; end <= n; end += step {
					got := make([]float32, end-start)
					if err := DequantizeNF4Range(d, start, got); err != nil {
						t.Fatalf("n=%d [%d,%d): %v", n, start, end, err)
					}
					if !equalBits(toBits(got), toBits(full[start:end])) {
						t.Fatalf("n=%d double=%v: range [%d, %d) differs from the full decode", n, dq, start, end)
					}
				}
			}
			for _, r := range [][2]int{{-1, 1}, {n, 1}, {0, n + 1}} {
				if err := DequantizeNF4Range(d, r[0], make([]float32, r[1])); err == nil {
					t.Errorf("n=%d: range at %d of %d succeeded", n, r[0], r[1])
				}
			}
		}
	}
}

// TestNF4ErrorBound checks what quantization promises: every value is
// within half the widest code gap (0.16) times its block's absmax, and the
// double-quantized scales are close to the plain ones.
func TestNF4ErrorBound(t *testing.T) {
	in := goldenInputs(7, 64*300+5)
	plain, double := QuantizeNF4(in, false), QuantizeNF4(in, true)
	p, _ := plain.Dequantize()
	q, _ := double.Dequantize()
	for i, v := range in {
		a := plain.Absmax[i/64]
		if d := math.Abs(float64(p[i] - v)); d > 0.16*float64(a) {
			t.Fatalf("element %d: %v dequantized to %v, error %g exceeds 0.16*absmax %g", i, v, p[i], d, 0.16*a)
		}
		// The dynamic map's widest gap is 0.9/64, so a scale moves by at
		// most half of that times its nested block's scale.
		b := i / 64
		tol := 0.9/128*float64(double.NestedAbsmax[b/256]) + 1e-6*float64(a)
		if d := math.Abs(float64(double.BlockAbsmax(b) - a)); d > tol {
			t.Fatalf("block %d: double quantization moved its scale %v to %v (tolerance %g)", b, a, double.BlockAbsmax(b), tol)
		}
		if d := math.Abs(float64(q[i] - p[i])); d > tol {
			t.Fatalf("element %d: double quantization moved %v to %v", i, p[i], q[i])
		}
	}
	if !bytes.Equal(plain.Codes, double.Codes) {
		t.Error("double quantization changed the 4-bit codes")
	}
}

func TestNF4BytesParseRoundTrip(t *testing.T) {
	for _, dq := range []bool{false, true} {
		for _, n := range []int{0, 1, 2, 64, 129, 64*256 + 1} {
			d := QuantizeNF4(goldenInputs(3, n), dq)
			raw := d.Bytes()
			size, err := NF4Bytes(int64(n), dq)
			if err != nil || int64(len(raw)) != size {
				t.Fatalf("n=%d double=%v: %d bytes, NF4Bytes says %d (%v)", n, dq, len(raw), size, err)
			}
			back, err := ParseNF4(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Bytes(), raw) {
				t.Fatalf("n=%d double=%v: parse and re-serialize changed the bytes", n, dq)
			}
			tt, err := New("w", NF4, Shape{n}, raw)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			vals, err := tt.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			want, _ := d.Dequantize()
			if !equalBits(toBits(vals), toBits(want)) {
				t.Fatalf("n=%d double=%v: Float32s differs from Dequantize", n, dq)
			}
			if got := d.ResidentBytes(); got != size-nf4HeaderSize+4 && got != size-nf4HeaderSize {
				t.Errorf("ResidentBytes %d for a %d-byte layout", got, size)
			}
		}
	}
}

// TestEncodeNF4 checks that the generic Encode/Decode path produces the
// plain layout QuantizeNF4 does, for any element count.
func TestEncodeNF4(t *testing.T) {
	in := goldenInputs(5, 3*50)
	size, err := NF4.Bytes(int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, size)
	if err := Encode(NF4, in, dst); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, QuantizeNF4(in, false).Bytes()) {
		t.Error("Encode(NF4) differs from QuantizeNF4(..., false).Bytes()")
	}
	got := make([]float32, 77)
	if err := Decode(NF4, dst, got); err != nil {
		t.Fatal(err)
	}
	want, _ := QuantizeNF4(in, false).Dequantize()
	if !equalBits(toBits(got), toBits(want[:77])) {
		t.Error("Decode(NF4) of a prefix differs")
	}
}

func TestNF4ValidateErrors(t *testing.T) {
	good := QuantizeNF4(goldenInputs(1, 100), true).Bytes()
	mutate := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	count := func(n uint64) []byte {
		return mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[4:], n); return b })
	}
	tests := []struct {
		name  string
		shape Shape
		data  []byte
		want  string
	}{
		{"good", Shape{10, 10}, good, ""},
		{"shape disagrees", Shape{101}, good, "holds 100 elements"},
		{"short header", Shape{100}, good[:5], "header"},
		{"bad magic", Shape{100}, mutate(func(b []byte) []byte { b[0] = 'X'; return b }), "starts with"},
		{"unknown flag", Shape{100}, mutate(func(b []byte) []byte { b[3] |= 4; return b }), "flags"},
		{"plain flag on double data", Shape{100}, mutate(func(b []byte) []byte { b[3] = 0; return b }), "needs"},
		{"truncated", Shape{100}, good[:len(good)-1], "needs"},
		{"trailing byte", Shape{100}, append(bytes.Clone(good), 0), "needs"},
		{"huge count", Shape{100}, count(1 << 62), "claims"},
		{"wrong count", Shape{100}, count(300), "needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Tensor{Name: "w", DType: NF4, Shape: tt.shape, Data: tt.data}).Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"w"`) {
				t.Errorf("Validate = %v, want an error naming the tensor and containing %q", err, tt.want)
			}
			if _, err := ParseNF4(tt.data); err == nil && tt.name != "shape disagrees" {
				t.Error("ParseNF4 accepted it")
			}
		})
	}
	bad := &NF4Data{N: 10, Codes: make([]byte, 4), Absmax: make([]float32, 1)}
	if err := DequantizeNF4Range(bad, 0, make([]float32, 1)); err == nil {
		t.Error("DequantizeNF4Range accepted NF4Data with too few codes")
	}
	if err := DequantizeNF4Range(nil, 0, nil); err == nil {
		t.Error("DequantizeNF4Range accepted nil")
	}
}

func FuzzParseNF4(f *testing.F) {
	f.Add(QuantizeNF4(goldenInputs(1, 70), true).Bytes())
	f.Add(QuantizeNF4(goldenInputs(1, 3), false).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseNF4(data)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Bytes(), data) {
			t.Fatal("parsed data does not re-serialize to the input")
		}
		if _, err := d.Dequantize(); err != nil {
			t.Fatal(err)
		}
	})
}
