package train

import "math"

// Learning-rate schedule names for Config.Schedule.
const (
	ScheduleCosine   = "cosine"
	ScheduleLinear   = "linear"
	ScheduleConstant = "constant"
)

// Multiplier returns the factor applied to the peak learning rate at the
// 0-based optimizer step s of a run of total steps, following transformers'
// get_cosine_schedule_with_warmup (and its min-lr variant),
// get_linear_schedule_with_warmup and get_constant_schedule_with_warmup:
//
//	s < warmup:  s / warmup
//	cosine:      0.5 * (1 + cos(pi * p)), p = (s - warmup) / (total - warmup)
//	linear:      (total - s) / (total - warmup)
//	constant:    1
//
// A decayed factor f is raised to f*(1-minRatio) + minRatio. As in
// transformers, where the scheduler steps after the optimizer, the first
// step of a run with warmup uses a learning rate of 0. Unknown schedules
// give 0; Config.Validate rejects them.
func Multiplier(schedule string, s, warmup, total int, minRatio float64) float64 {
	if s < warmup {
		return float64(s) / float64(max(1, warmup))
	}
	decayed := func(f float64) float64 { return max(0, f*(1-minRatio)+minRatio) }
	progress := float64(s-warmup) / float64(max(1, total-warmup))
	switch schedule {
	case ScheduleCosine, "":
		return decayed(0.5 * (1 + math.Cos(math.Pi*progress)))
	case ScheduleLinear:
		return decayed(max(0, float64(total-s)/float64(max(1, total-warmup))))
	case ScheduleConstant:
		return 1
	}
	return 0
}

// lrAt returns the learning rate of the 0-based step s of a run of total
// steps.
func (c *Config) lrAt(s, total int) float64 {
	return c.LR * Multiplier(c.schedule(), s, c.Warmup, total, c.MinLRRatio)
}
