package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
)

// Shapes that take the blocked path (SeqQ >= attnBlockMinRows): blocks cut
// mid-sequence, a cached prefix (SeqK > SeqQ) with a wider KV stride, GQA
// and multi-query heads, head sizes that are not a multiple of any vector.
var attnBlockCases = []backend.Attention{
	attnCase(1, 16, 16, 0, 1, 1, 8),
	attnCase(2, 70, 70, 0, 4, 2, 16),
	attnCase(1, 130, 140, 150, 6, 3, 12),
	attnCase(2, 20, 33, 40, 3, 1, 7),
}

// refAttentionBackward returns the gradients of sum(dy * attention) with
// respect to q, k and v, written plainly in float64 from the definition:
// dP = dy v^T, dS = P (dP - rowsum(P dP)), dq = Scale dS k, dk = Scale
// dS^T q, dv = P^T dy.
func refAttentionBackward(q, k, v, dy []float64, p backend.Attention) (dq, dk, dv []float64) {
	stride := max(p.KVStride, p.SeqK)
	qc, kc, hd := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim, p.HeadDim
	dq, dk, dv = make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
	row := func(x []float64, r, c, cols int) []float64 { return x[r*cols+c*hd:][:hd] }
	for b := range p.Batch {
		for h := range p.Heads {
			kvh := h / (p.Heads / p.KVHeads)
			for i := range p.SeqQ {
				qi, gi := row(q, b*p.SeqQ+i, h, qc), row(dy, b*p.SeqQ+i, h, qc)
				n := p.SeqK - p.SeqQ + i + 1
				pr, dp := make([]float64, n), make([]float64, n)
				mx := math.Inf(-1)
				for j := range n {
					kj := row(k, b*stride+j, kvh, kc)
					for d := range hd {
						pr[j] += qi[d] * kj[d]
					}
					pr[j] *= float64(p.Scale)
					mx = max(mx, pr[j])
				}
				var sum, dd float64
				for j := range n {
					pr[j] = math.Exp(pr[j] - mx)
					sum += pr[j]
				}
				for j := range n {
					pr[j] /= sum
					vj := row(v, b*stride+j, kvh, kc)
					for d := range hd {
						dp[j] += gi[d] * vj[d]
					}
					dd += pr[j] * dp[j]
				}
				for j := range n {
					ds := pr[j] * (dp[j] - dd) * float64(p.Scale)
					kj, dkj, dvj := row(k, b*stride+j, kvh, kc), row(dk, b*stride+j, kvh, kc), row(dv, b*stride+j, kvh, kc)
					dqi := row(dq, b*p.SeqQ+i, h, qc)
					for d := range hd {
						dqi[d] += ds * kj[d]
						dkj[d] += ds * qi[d]
						dvj[d] += pr[j] * gi[d]
					}
				}
			}
		}
	}
	return dq, dk, dv
}

// TestRefAttentionBackward ties the analytic reference to finite
// differences on a small case, so the blocked tests below rest on it.
func TestRefAttentionBackward(t *testing.T) {
	p := attnCase(2, 3, 5, 6, 4, 2, 3)
	qv, kv, vv := attnInputs(p, 5)
	dyv := randn(newRand(6), len(qv), 1)
	q64, k64, v64, dy64 := to64(qv), to64(kv), to64(vv), to64(dyv)
	dq, dk, dv := refAttentionBackward(q64, k64, v64, dy64, p)
	loss := func([]float64) float64 { return weighted(dyv, refAttention(q64, k64, v64, p)) }
	for _, g := range []struct {
		name      string
		got, want []float64
	}{{"dq", dq, numGrad(loss, q64)}, {"dk", dk, numGrad(loss, k64)}, {"dv", dv, numGrad(loss, v64)}} {
		for i := range g.got {
			if math.Abs(g.got[i]-g.want[i]) > 1e-6*(1+math.Abs(g.want[i])) {
				t.Fatalf("%s[%d] = %v, finite differences give %v", g.name, i, g.got[i], g.want[i])
			}
		}
	}
}

func TestAttentionBlocked(t *testing.T) {
	for ci, p := range attnBlockCases {
		for _, threads := range threadCounts {
			t.Run(attnName(p)+fmt.Sprintf("/%dthreads", threads), func(t *testing.T) {
				c := newTestBackend(threads)
				qv, kv, vv := attnInputs(p, uint64(ci))
				stride := max(p.KVStride, p.SeqK)
				qc, kc := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
				q, k, v := upload(t, c, qv, p.Batch*p.SeqQ, qc), upload(t, c, kv, p.Batch*stride, kc), upload(t, c, vv, p.Batch*stride, kc)
				dst := c.Zeros(p.Batch*p.SeqQ, qc)
				c.Attention(dst, q, k, v, p)
				assertClose(t, "dst", download(t, c, dst), refAttention(to64(qv), to64(kv), to64(vv), p), 1e-5, 1e-6)

				// Backward accumulates into what the gradients held, and
				// each gradient may be asked for alone.
				r := newRand(uint64(ci) + 100)
				dyv := randn(r, len(qv), 1)
				start := [3][]float32{randn(r, len(qv), 1), randn(r, len(kv), 1), randn(r, len(vv), 1)}
				dq64, dk64, dv64 := refAttentionBackward(to64(qv), to64(kv), to64(vv), to64(dyv), p)
				want := [3][]float64{dq64, dk64, dv64}
				for g := range want {
					for i := range want[g] {
						want[g][i] += float64(start[g][i])
					}
				}
				dy := upload(t, c, dyv, p.Batch*p.SeqQ, qc)
				shapes := [3][2]int{{p.Batch * p.SeqQ, qc}, {p.Batch * stride, kc}, {p.Batch * stride, kc}}
				grads := [3]backend.Buffer{}
				for g := range grads {
					grads[g] = upload(t, c, start[g], shapes[g][0], shapes[g][1])
				}
				c.AttentionBackward(grads[0], grads[1], grads[2], dy, q, k, v, p)
				for g, name := range []string{"dq", "dk", "dv"} {
					assertClose(t, name, download(t, c, grads[g]), want[g], 1e-4, 1e-5)
					alone := [3]backend.Buffer{}
					alone[g] = upload(t, c, start[g], shapes[g][0], shapes[g][1])
					c.AttentionBackward(alone[0], alone[1], alone[2], dy, q, k, v, p)
					assertClose(t, name+" alone", download(t, c, alone[g]), want[g], 1e-4, 1e-5)
				}
			})
		}
	}
}
