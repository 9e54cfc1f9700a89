package peft

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/graft-ml/graft/core/backend"
)

// bnActivation is the nonlinearity between a bottleneck adapter's down- and
// up-projection, named as transformers' get_activation names it (which is
// what AdapterHub's non_linearity goes through).
//
// The backend's op set has SiLU only in the fused SiLUMul, so swish/silu
// runs there with a multiplier of ones, and the identity needs no op at
// all. The others (relu, gelu, gelu_new, tanh, sigmoid) have no backend op:
// they are applied on the host, which costs one Read and one Write of the
// [rows, bottleneck] pre-activation per adapter site in the forward pass
// and again in the backward pass. The bottleneck is Dim/reduction_factor
// wide, so this moves 1/16 of a residual stream's worth of floats per site
// by default, negligible on the CPU backend; on a GPU each Read is also a
// queue flush. A backend op Activation(dst, x, kind) with its backward
// would remove it.
type bnActivation struct {
	// name is the canonical name written to adapter_config.json.
	name string
	// kind selects the implementation.
	kind bnActKind
	// f and df are the host function and its derivative (bnActHost only).
	f, df func(x float64) float64
}

type bnActKind uint8

const (
	bnActIdentity bnActKind = iota // act = pre: no op, no buffer
	bnActSiLU                      // backend SiLUMul with a multiplier of ones
	bnActHost                      // f and df on the host
)

// bnActivations lists the supported non_linearity values; aliases map to
// the name saved. transformers has no "identity" activation, so the
// identity is saved as "linear", its name there.
var bnActivations = map[string]bnActivation{
	"linear":   {name: "linear", kind: bnActIdentity},
	"identity": {name: "linear", kind: bnActIdentity},
	"swish":    {name: "swish", kind: bnActSiLU},
	"silu":     {name: "silu", kind: bnActSiLU},
	"relu":     {name: "relu", kind: bnActHost, f: reluF, df: reluDF},
	"gelu":     {name: "gelu", kind: bnActHost, f: geluF, df: geluDF},
	"gelu_new": {name: "gelu_new", kind: bnActHost, f: geluTanhF, df: geluTanhDF},
	"tanh":     {name: "tanh", kind: bnActHost, f: math.Tanh, df: tanhDF},
	"sigmoid":  {name: "sigmoid", kind: bnActHost, f: sigmoidF, df: sigmoidDF},
}

// lookupActivation resolves a non_linearity name, case-insensitively as
// AdapterHub does.
func lookupActivation(name string) (bnActivation, error) {
	act, ok := bnActivations[strings.ToLower(name)]
	if !ok {
		return bnActivation{}, fmt.Errorf("non_linearity %q is not supported (supported: %s)", name, strings.Join(supportedActivations(), ", "))
	}
	return act, nil
}

func supportedActivations() []string {
	names := make([]string, 0, len(bnActivations))
	for n := range bnActivations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func reluF(x float64) float64 { return max(x, 0) }

// reluDF is 0 at 0, as torch's relu backward is.
func reluDF(x float64) float64 {
	if x > 0 {
		return 1
	}
	return 0
}

// geluF is the exact GELU, x·Φ(x) (torch's default, transformers' "gelu").
func geluF(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func geluDF(x float64) float64 {
	pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
	return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*pdf
}

// geluTanhC is sqrt(2/π), the constant of the tanh approximation of GELU.
var geluTanhC = math.Sqrt(2 / math.Pi)

// geluTanhF is transformers' "gelu_new": 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
func geluTanhF(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(geluTanhC*(x+0.044715*x*x*x)))
}

func geluTanhDF(x float64) float64 {
	t := math.Tanh(geluTanhC * (x + 0.044715*x*x*x))
	return 0.5*(1+t) + 0.5*x*(1-t*t)*geluTanhC*(1+3*0.044715*x*x)
}

func tanhDF(x float64) float64 {
	t := math.Tanh(x)
	return 1 - t*t
}

func sigmoidF(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func sigmoidDF(x float64) float64 {
	s := sigmoidF(x)
	return s * (1 - s)
}

// forward sets act = f(pre) for one site. pre and act are [rows, bn]; ones
// is a buffer of ones of the same shape (for SiLUMul); host is scratch of
// rows·bn floats, and hostPre receives the pre-activation for backward.
func (a bnActivation) forward(b backend.Backend, act, pre, ones backend.Buffer, hostPre, host []float32) error {
	switch a.kind {
	case bnActIdentity:
		b.Copy(act, pre)
	case bnActSiLU:
		b.SiLUMul(act, pre, ones)
	default:
		if err := b.Read(pre, 0, hostPre); err != nil {
			return err
		}
		for i, v := range hostPre {
			host[i] = float32(a.f(float64(v)))
		}
		return b.Write(act, 0, host)
	}
	return nil
}

// backward sets dpre = f'(pre) ⊙ dact. spare is a [rows, bn] buffer whose
// contents are overwritten (SiLUMulBackward's unused multiplier gradient);
// hostPre is what forward read.
func (a bnActivation) backward(b backend.Backend, dpre, dact, pre, ones, spare backend.Buffer, hostPre, host []float32) error {
	switch a.kind {
	case bnActIdentity:
		b.Copy(dpre, dact)
	case bnActSiLU:
		b.SiLUMulBackward(dpre, spare, dact, pre, ones)
	default:
		if err := b.Read(dact, 0, host); err != nil {
			return err
		}
		for i, g := range host {
			host[i] = float32(float64(g) * a.df(float64(hostPre[i])))
		}
		return b.Write(dpre, 0, host)
	}
	return nil
}
