package cpu

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/graft-ml/graft/core/backend"
)

// The elementwise, normalisation, RoPE, loss and optimizer operations a
// plugin guest hands to its host through HostKernelOp, besides attention.
// Their argument words (HostOp's args) are laid out as:
//
//	nbufs, nslices, nparams,
//	nbufs x (byte offset, float32 count, rank, dim0, dim1, dim2, dim3)
//	nslices x (byte offset, byte count)
//	nparams words
//
// A buffer operand is an F32 tensor of rank at most HostMaxRank in guest
// memory, HostAbsent as its rank when the operation takes nil there; a
// slice operand is a plain array (positions, targets and ids as int32,
// loss weights as float32, RoPE frequencies as float64), its offset 0 and
// count 0 when nil. An operation with a value (CrossEntropy) writes it,
// as float64 bits, over the first two argument words.
const (
	HostOpAdd             = 3  // dst, a, b
	HostOpMul             = 4  // dst, a, b
	HostOpScale           = 5  // dst, x; s
	HostOpAddScaled       = 6  // dst, x; s
	HostOpSiLUMul         = 7  // dst, gate, up
	HostOpSiLUMulBackward = 8  // dgate, dup, dy, gate, up
	HostOpRMSNorm         = 9  // dst, x, w; eps
	HostOpRMSNormBackward = 10 // dx, dw, dy, x, w; eps
	HostOpRoPE            = 11 // x; pos, freqs; style, headDim, theta, dims
	HostOpRoPEBackward    = 12 // as HostOpRoPE
	HostOpCrossEntropy    = 13 // dlogits, logits; targets, weights; gradScale
	HostOpAdamW           = 14 // param, grad, m, v; lr, beta1, beta2, eps, weightDecay, step
	HostOpSoftmax         = 15 // dst, x; temperature

	hostOpFirstTensor = HostOpAdd
	hostOpLastTensor  = HostOpSoftmax

	// HostMaxRank is the largest rank of a buffer operand.
	HostMaxRank = 4
	// HostAbsent is the rank of an absent (nil) buffer operand.
	HostAbsent = math.MaxUint32
	// HostOperandWords is the size of a buffer operand's description.
	HostOperandWords = 3 + HostMaxRank
	// HostMaxOpWords bounds the argument words of a tensor operation.
	HostMaxOpWords = 3 + 5*HostOperandWords + 2*2 + 6
)

// hostOpSig is the operand count of each tensor operation: buffers,
// slices and parameter words, each exactly.
type hostOpSig struct{ bufs, slices, params int }

var hostOpSigs = [...]hostOpSig{
	HostOpAdd:             {3, 0, 0},
	HostOpMul:             {3, 0, 0},
	HostOpScale:           {2, 0, 1},
	HostOpAddScaled:       {2, 0, 1},
	HostOpSiLUMul:         {3, 0, 0},
	HostOpSiLUMulBackward: {5, 0, 0},
	HostOpRMSNorm:         {3, 0, 1},
	HostOpRMSNormBackward: {5, 0, 1},
	HostOpRoPE:            {1, 2, 4},
	HostOpRoPEBackward:    {1, 2, 4},
	HostOpCrossEntropy:    {2, 2, 1},
	HostOpAdamW:           {4, 0, 6},
	HostOpSoftmax:         {2, 0, 1},
}

// hostOpOptional has bit i set where an operation takes nil as buffer i.
var hostOpOptional = [...]uint8{
	HostOpSoftmax:         0,
	HostOpSiLUMulBackward: 1<<0 | 1<<1,
	HostOpRMSNorm:         1 << 2,
	HostOpRMSNormBackward: 1<<1 | 1<<4,
	HostOpCrossEntropy:    1 << 0,
}

// HostOpShape returns how many buffers, slices and parameter words the
// tensor operation code takes, and false for any other code.
func HostOpShape(code uint32) (bufs, slices, params int, ok bool) {
	if code < hostOpFirstTensor || code > hostOpLastTensor {
		return 0, 0, 0, false
	}
	s := hostOpSigs[code]
	return s.bufs, s.slices, s.params, true
}

// HostOpHasValue reports whether the operation code returns a value
// (written over the first two argument words).
func HostOpHasValue(code uint32) bool { return code == HostOpCrossEntropy }

// RunHostOp runs the tensor operation code (HostOpAdd...) for a plugin
// host: bufs are its buffer operands (nil where absent), made by Foreign
// over the guest's memory; slices its plain arrays as bytes of that
// memory (nil where absent); params its parameter words. The operation's
// own checks (shapes, sizes, targets in the vocabulary) run on the calling
// goroutine before any work starts, so invalid operands are an error and
// never a panic. The caller must make sure that no slice overlaps a
// buffer: the checks read a slice once, before workers write the buffers.
func (c *Backend) RunHostOp(code uint32, bufs []backend.Buffer, slices [][]byte, params []uint32) (value float64, err error) {
	nb, ns, np, ok := HostOpShape(code)
	if !ok {
		return 0, fmt.Errorf("unknown operation %d", code)
	}
	if len(bufs) != nb || len(slices) != ns || len(params) != np {
		return 0, fmt.Errorf("operation %d takes %d buffers, %d slices and %d parameters, not %d, %d and %d",
			code, nb, ns, np, len(bufs), len(slices), len(params))
	}
	for i, b := range bufs {
		if b == nil && hostOpOptional[code]&(1<<i) == 0 {
			return 0, fmt.Errorf("operation %d: buffer %d is absent", code, i)
		}
	}
	args := bufs
	f := func(i int) float32 { return math.Float32frombits(params[i]) }
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	switch code {
	case HostOpAdd:
		c.Add(args[0], args[1], args[2])
	case HostOpMul:
		c.Mul(args[0], args[1], args[2])
	case HostOpScale:
		c.Scale(args[0], args[1], f(0))
	case HostOpAddScaled:
		c.AddScaled(args[0], args[1], f(0))
	case HostOpSiLUMul:
		c.SiLUMul(args[0], args[1], args[2])
	case HostOpSiLUMulBackward:
		c.SiLUMulBackward(args[0], args[1], args[2], args[3], args[4])
	case HostOpRMSNorm:
		c.RMSNorm(args[0], args[1], args[2], f(0))
	case HostOpRMSNormBackward:
		c.RMSNormBackward(args[0], args[1], args[2], args[3], args[4], f(0))
	case HostOpRoPE, HostOpRoPEBackward:
		pos, err := int32s(slices[0])
		if err != nil {
			return 0, fmt.Errorf("positions: %w", err)
		}
		freqs, err := float64s(slices[1])
		if err != nil {
			return 0, fmt.Errorf("frequencies: %w", err)
		}
		if params[0] > math.MaxUint8 || params[1] > math.MaxInt32 || params[3] > math.MaxInt32 {
			return 0, errors.New("RoPE style or head size out of range")
		}
		r := backend.RoPE{Style: backend.RoPEStyle(params[0]), HeadDim: int(params[1]), Theta: f(2), Dims: int(params[3]), Freqs: freqs}
		if code == HostOpRoPE {
			c.ApplyRoPE(args[0], pos, r)
		} else {
			c.ApplyRoPEBackward(args[0], pos, r)
		}
	case HostOpCrossEntropy:
		targets, err := int32s(slices[0])
		if err != nil {
			return 0, fmt.Errorf("targets: %w", err)
		}
		weights, err := float32s(slices[1])
		if err != nil {
			return 0, fmt.Errorf("weights: %w", err)
		}
		return c.CrossEntropy(args[0], args[1], targets, weights, f(0)), nil
	case HostOpAdamW:
		if params[5] < 1 || params[5] > math.MaxInt32 {
			return 0, fmt.Errorf("AdamW step %d out of range", params[5])
		}
		c.AdamWStep(args[0], args[1], args[2], args[3], backend.AdamW{
			LR: f(0), Beta1: f(1), Beta2: f(2), Eps: f(3), WeightDecay: f(4), Step: int(params[5])})
	case HostOpSoftmax:
		c.Softmax(args[0], args[1], f(0))
	}
	return 0, nil
}

// int32s, float32s and float64s view a slice operand's bytes as values;
// nil stays nil.
func int32s(b []byte) ([]int32, error) {
	if err := aligned(b, 4); err != nil || b == nil {
		return nil, err
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4), nil
}

func float32s(b []byte) ([]float32, error) {
	if err := aligned(b, 4); err != nil || b == nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4), nil
}

func float64s(b []byte) ([]float64, error) {
	if err := aligned(b, 8); err != nil || b == nil {
		return nil, err
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8), nil
}

func aligned(b []byte, size int) error {
	if len(b)%size != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(size) != 0 {
		return fmt.Errorf("%d bytes are not whole aligned %d-byte values", len(b), size)
	}
	return nil
}

// HostScratchBound bounds the memory one host kernel call allocates (for
// packed panels, dequantized rows, transposes and per-row statistics)
// when its operands hold operandBytes bytes and it runs on threads
// threads; a matrix product (or attention, which runs small ones) also
// packs a block of b. A plugin host counts it against the guest's memory
// cap.
func HostScratchBound(operandBytes int64, threads int, product bool) int64 {
	const (
		packedB   = 4 * (gemmNB + 32) * gemmKB
		perThread = 4 * (gemmMaxTile + 64<<10)
	)
	bound := 2*operandBytes + int64(max(threads, 1))*perThread
	if product {
		bound += packedB
	}
	return bound
}
