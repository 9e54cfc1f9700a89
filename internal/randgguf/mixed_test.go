package randgguf_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/internal/randgguf"
)

// TestMixedTypesLoad loads a file mixed as Q4_K_M files are (Q6_K on the
// tied token_embd, attn_v and ffn_down, Q4_K elsewhere) as it is: every
// weight keeps its own type, and the logits equal bit for bit those of
// its twin whose weights are the same values decoded to F32, since the
// quantized weights are decoded block by block inside each product.
func TestMixedTypesLoad(t *testing.T) {
	mix := func(name string) tensor.DType {
		if name == "token_embd.weight" || strings.Contains(name, "attn_v") || strings.Contains(name, "ffn_down") {
			return tensor.Q6_K
		}
		return tensor.Q4_K
	}
	quant, err := randgguf.NewFamilySized(randgguf.SmolLM2, 300, 5, nil, 256, 512)
	if err != nil {
		t.Fatal(err)
	}
	twin, err := randgguf.NewFamilySized(randgguf.SmolLM2, 300, 5, nil, 256, 512)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for i, tt := range quant.GGUF {
		if len(tt.Shape) != 2 {
			continue
		}
		dt := mix(tt.Name)
		vals, err := tt.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		size, _ := dt.Bytes(int64(len(vals)))
		data := make([]byte, size)
		if err := tensor.Encode(dt, vals, data); err != nil {
			t.Fatal(err)
		}
		if quant.GGUF[i], err = tensor.New(tt.Name, dt, tt.Shape, data); err != nil {
			t.Fatal(err)
		}
		dec, err := quant.GGUF[i].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if twin.GGUF[i], err = tensor.FromFloat32(tt.Name, tt.Shape, dec); err != nil {
			t.Fatal(err)
		}
		if tt.Name != "token_embd.weight" {
			want[dt.String()]++
		}
	}
	dir := t.TempDir()
	load := func(m *randgguf.Model, name string) *model.Model {
		path := filepath.Join(dir, name)
		if err := m.WriteGGUF(path); err != nil {
			t.Fatal(err)
		}
		gm, err := model.LoadGGUF(path, cpu.New())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gm.Free)
		return gm
	}
	qm, fm := load(quant, "q4_k_m.gguf"), load(twin, "f32.gguf")
	if qm.Embed.DType() != tensor.Q6_K {
		t.Errorf("token_embd is %v, want Q6_K as stored", qm.Embed.DType())
	}
	got := map[string]int{}
	for _, l := range qm.Linears() {
		got[l.Weight.DType().String()]++
		wantDT := tensor.Q4_K
		if strings.HasSuffix(l.Name, "v_proj") || strings.HasSuffix(l.Name, "down_proj") {
			wantDT = tensor.Q6_K
		}
		if l.Weight.DType() != wantDT {
			t.Errorf("%s is %v, want %v as stored", l.Name, l.Weight.DType(), wantDT)
		}
	}
	if got["Q4_K"] != want["Q4_K"] || got["Q6_K"] != want["Q6_K"] {
		t.Errorf("projection types %v, want %v", got, want)
	}
	ids := []int32{1, 17, 42, 299, 3, 250, 8, 8, 100}
	qc, fc := qm.NewCache(len(ids)), fm.NewCache(len(ids))
	defer qm.FreeCache(qc)
	defer fm.FreeCache(fc)
	ql, err := qm.Forward(qc, ids, true)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := fm.Forward(fc, ids, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ql {
		if math.Float32bits(ql[i]) != math.Float32bits(fl[i]) {
			t.Fatalf("logit %d: %v with the mixed weights, %v with their F32 values", i, ql[i], fl[i])
		}
	}
}
