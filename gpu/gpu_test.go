package gpu

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// TestNF4MatMulAndEmbedding checks the NF4 decoder, with and without
// double quantization, in both matmul orientations and in a gather,
// against the CPU backend; the shared suite covers the other dtypes.
func TestNF4MatMulAndEmbedding(t *testing.T) {
	g := testBackend(t)
	c := cpu.New()
	rng := rand.New(rand.NewPCG(7, 8))
	vals := make([]float32, 96*70) // blocks of 64 cross rows of 70
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
	}
	x := make([]float32, 5*70)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, dq := range []bool{false, true} {
		w, err := tensor.New("w", tensor.NF4, tensor.Shape{96, 70}, tensor.QuantizeNF4(vals, dq).Bytes())
		if err != nil {
			t.Fatal(err)
		}
		run := func(be backend.Backend) (nt, emb, read []float32) {
			wb, err := be.Load(w)
			if err != nil {
				t.Fatal(err)
			}
			xb := be.Zeros(5, 70)
			if err := be.Write(xb, 0, x); err != nil {
				t.Fatal(err)
			}
			out := be.Zeros(5, 96)
			be.MatMul(out, xb, wb, backend.MatMul{TransB: true})
			e := be.Zeros(3, 70)
			be.Embedding(e, wb, []int32{95, 0, 41})
			nt, emb, read = make([]float32, 5*96), make([]float32, 3*70), make([]float32, 100)
			for _, r := range []struct {
				b   backend.Buffer
				off int
				dst []float32
			}{{out, 0, nt}, {e, 0, emb}, {wb, 1001, read}} {
				if err := be.Read(r.b, r.off, r.dst); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		gnt, gemb, gread := run(g)
		cnt, cemb, cread := run(c)
		closeTo(t, "NF4 matmul", gnt, cnt, 1e-4)
		closeTo(t, "NF4 embedding", gemb, cemb, 0)
		closeTo(t, "NF4 read", gread, cread, 0)
	}
}

func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	var scale float64
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol*(math.Abs(float64(want[i]))+scale)) {
			t.Fatalf("%s[%d] = %g, cpu %g", what, i, got[i], want[i])
		}
	}
}

// TestNoAdapter checks, in a child process whose Vulkan loader finds no
// driver, that New fails with ErrNoAdapter and an install hint instead of
// falling back to a software interpreter.
func TestNoAdapter(t *testing.T) {
	if os.Getenv("GRAFT_GPU_NO_ADAPTER_CHILD") == "1" {
		_, err := New(Options{AllowSoftware: true})
		if !errors.Is(err, ErrNoAdapter) {
			t.Fatalf("New without a driver: %v, want ErrNoAdapter", err)
		}
		t.Log(err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoAdapter$", "-test.v")
	cmd.Env = append(os.Environ(), "GRAFT_GPU_NO_ADAPTER_CHILD=1", "VK_ICD_FILENAMES=/nonexistent/icd.json", "VK_DRIVER_FILES=/nonexistent/icd.json")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestSoftwareAdapterRefused checks that a software adapter is not used
// unless asked for.
func TestSoftwareAdapterRefused(t *testing.T) {
	g := testBackend(t)
	if !g.Info().Software {
		t.Skipf("the adapter %s is real hardware", g.Info())
	}
	if _, err := New(Options{}); !errors.Is(err, ErrSoftwareAdapter) {
		t.Fatalf("New(Options{}) on %s: %v, want ErrSoftwareAdapter", g.Info(), err)
	}
}

// TestSelect checks the three device names and a bad one.
func TestSelect(t *testing.T) {
	testBackend(t) // a Vulkan driver is there
	if b, note, err := Select("cpu"); err != nil || note != "" || b == nil {
		t.Errorf("Select(cpu) = %v, %q, %v", b, note, err)
	}
	b, note, err := Select("gpu")
	if err != nil {
		t.Fatalf("Select(gpu): %v", err)
	}
	if _, ok := b.(*Backend); !ok || note == "" {
		t.Errorf("Select(gpu) = %T, %q", b, note)
	}
	b.(*Backend).Close()
	b, note, err = Select("auto")
	if err != nil || note == "" {
		t.Fatalf("Select(auto) = %v, %q, %v", b, note, err)
	}
	if g, ok := b.(*Backend); ok {
		if g.Info().Software {
			t.Errorf("auto chose the software adapter %s", g.Info())
		}
		g.Close()
	}
	t.Log(note)
	if _, _, err := Select("tpu"); err == nil {
		t.Error("Select(tpu) succeeded")
	}
}
