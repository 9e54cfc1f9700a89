package train

import (
	"math"
	"testing"
)

func TestMultiplier(t *testing.T) {
	// Values of transformers' schedules for 10 steps with 2 of warmup,
	// computed from their lr_lambda definitions.
	tests := []struct {
		schedule string
		step     int
		minRatio float64
		want     float64
	}{
		{"cosine", 0, 0, 0},
		{"cosine", 1, 0, 0.5},
		{"cosine", 2, 0, 1},
		{"cosine", 4, 0, 0.8535533905932737}, // 0.5*(1+cos(pi/4))
		{"cosine", 6, 0, 0.5},
		{"cosine", 8, 0, 0.1464466094067262}, // 0.5*(1+cos(3pi/4))
		{"cosine", 9, 0, 0.03806023374435663},
		{"cosine", 10, 0, 0},
		{"", 6, 0, 0.5}, // empty means cosine
		{"cosine", 1, 0.1, 0.5},
		{"cosine", 6, 0.1, 0.55},
		{"cosine", 10, 0.1, 0.1},
		{"linear", 0, 0, 0},
		{"linear", 1, 0, 0.5},
		{"linear", 2, 0, 1},
		{"linear", 4, 0, 0.75},
		{"linear", 9, 0, 0.125},
		{"linear", 10, 0, 0},
		{"linear", 6, 0.2, 0.6},
		{"constant", 0, 0, 0},
		{"constant", 1, 0, 0.5},
		{"constant", 2, 0, 1},
		{"constant", 9, 0.5, 1},
		{"bogus", 5, 0, 0},
	}
	for _, tt := range tests {
		got := Multiplier(tt.schedule, tt.step, 2, 10, tt.minRatio)
		if math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("Multiplier(%q, step %d, min %v) = %.17g, want %.17g", tt.schedule, tt.step, tt.minRatio, got, tt.want)
		}
	}
}

func TestMultiplierWithoutWarmup(t *testing.T) {
	// With no warmup the first step runs at the full rate, and a one-step
	// run does not divide by zero.
	for _, s := range []string{ScheduleCosine, ScheduleLinear, ScheduleConstant} {
		if got := Multiplier(s, 0, 0, 5, 0); got != 1 {
			t.Errorf("%s: step 0 of 5 without warmup = %v, want 1", s, got)
		}
		if got := Multiplier(s, 0, 0, 1, 0); got != 1 {
			t.Errorf("%s: step 0 of 1 = %v, want 1", s, got)
		}
	}
	if got := Multiplier(ScheduleCosine, 1, 1, 1, 0); got != 1 {
		// warmup == total: transformers divides by max(1, 0).
		t.Errorf("cosine past a warmup as long as the run = %v, want 1", got)
	}
}

func TestLRAt(t *testing.T) {
	c := Config{LR: 2e-4, Warmup: 2, Schedule: ScheduleLinear}
	if got, want := c.lrAt(4, 10), 1.5e-4; math.Abs(got-want) > 1e-18 {
		t.Errorf("lrAt(4, 10) = %v, want %v", got, want)
	}
}
