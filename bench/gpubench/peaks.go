package main

import "strings"

// fp32Peaks are vendors' published FP32 (non-tensor-core) peaks in
// TFLOP/s at boost clock, matched against the adapter name by substring,
// case-insensitively, in this order (so "H100 PCIe" before "H100"). An
// adapter not listed reports "unknown": a peak is never guessed.
var fp32Peaks = []struct {
	match  string
	tflops float64
	source string
}{
	{"H200", 67, "NVIDIA H200 SXM datasheet"},
	{"H100 PCIe", 51, "NVIDIA H100 PCIe datasheet"},
	{"H100", 67, "NVIDIA H100 SXM datasheet"},
	{"A100", 19.5, "NVIDIA A100 datasheet"},
	{"L40S", 91.6, "NVIDIA L40S datasheet"},
	{"NVIDIA L4", 30.3, "NVIDIA L4 datasheet"},
	{"Tesla T4", 8.1, "NVIDIA T4 datasheet"},
	{"RTX 4090", 82.6, "NVIDIA Ada whitepaper"},
	{"RTX 3090", 35.6, "NVIDIA Ampere GA102 whitepaper"},
	{"Apple M1 Max", 10.4, "Apple M1 Max announcement"},
	{"Apple M1 Pro", 5.2, "Apple M1 Pro announcement"},
	{"Apple M1", 2.6, "Apple M1 announcement"},
	{"Apple M2 Max", 13.6, "Apple M2 Max announcement"},
	{"Apple M2 Pro", 6.8, "Apple M2 Pro announcement"},
	{"Apple M2", 3.6, "Apple M2 announcement"},
}

// fp32Peak returns the FP32 peak in TFLOP/s of the adapter named name and
// where the figure comes from, or 0 and "" when it is not in the table.
func fp32Peak(name string) (float64, string) {
	n := strings.ToLower(name)
	for _, p := range fp32Peaks {
		if strings.Contains(n, strings.ToLower(p.match)) {
			return p.tflops, p.source
		}
	}
	return 0, ""
}
