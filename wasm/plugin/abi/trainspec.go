package abi

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// TrainSpec returns the train.Spec that a stands for: a.Spec with the older
// fields, where set, over it, and a's JSONL data parsed into records. The
// plugin trains exactly this Spec; a host may call it (and the Spec's
// ValidateFor with the model's context) to refuse a bad request before it
// reaches the plugin. Every error lies in the request.
func (a TrainArgs) TrainSpec() (train.Spec, error) {
	var s train.Spec
	if a.Spec != nil {
		s = *a.Spec
	}
	if s.Data != "" || s.Eval != "" || s.Out != "" || s.Resume != "" {
		return s, errors.New("spec: the plugin has no file system: give records and eval_records (or data and eval_data), not data, eval, out or resume paths")
	}
	switch {
	case len(a.Config) > 0 && a.Method != "":
		return s, errors.New("give config or method, not both")
	case len(a.Config) > 0:
		s.Config, s.Method, s.Options, s.Stack = a.Config, "", nil, nil
	case a.Method != "":
		name, err := MethodName(a.Method)
		if err != nil {
			return s, err
		}
		s.Method, s.Config, s.Stack = name, nil, nil
	} // neither: the spec's method, or graft train's default (LoRA)
	if len(a.Options) > 0 {
		opts := maps.Clone(s.Options)
		if opts == nil {
			opts = map[string]any{}
		}
		maps.Copy(opts, a.Options)
		s.Options = opts
	}
	var err error
	if len(a.Data) > 0 {
		if s.Records, err = readRecords(a.Data, "train data"); err != nil {
			return s, err
		}
	}
	if len(a.EvalData) > 0 {
		if s.EvalRecords, err = readRecords(a.EvalData, "eval data"); err != nil {
			return s, err
		}
	}
	if len(s.Records) == 0 {
		return s, errors.New("train data is empty: give data (JSONL) or spec records")
	}
	if a.ChatTemplate != "" {
		s.ChatTemplate = a.ChatTemplate
	}
	setInt(&s.Steps, a.Steps)
	setInt(&s.Batch, a.Batch)
	setInt(&s.SeqLen, a.SeqLen)
	setInt(&s.Warmup, a.Warmup)
	setInt(&s.GradAccum, a.GradAccum)
	setInt(&s.EvalEvery, a.EvalEvery)
	s.Pack = s.Pack || a.Pack
	if a.LR != 0 {
		s.LR = a.LR
	}
	if a.Schedule != "" {
		s.Schedule = a.Schedule
	}
	if a.WeightDecay != 0 {
		s.WeightDecay = a.WeightDecay
	}
	if a.MaxGradNorm != nil {
		s.MaxGradNorm = a.MaxGradNorm
	}
	if a.Seed != 0 {
		s.Seed = a.Seed
	}
	return s, nil
}

// MethodName returns the registry name of a method, given as the registry
// spells it ("prompt-tuning") or, as this ABI's first version did, as its
// peft_type ("PROMPT_TUNING", "prompt_tuning"); each part of a mixed stack
// ("lora+prefix-tuning") likewise.
func MethodName(method string) (string, error) {
	parts := strings.Split(method, "+")
	for i, part := range parts {
		m, err := peft.LookupMethod(part)
		if err != nil {
			if m, err = peft.LookupMethod(strings.ReplaceAll(part, "_", "-")); err != nil {
				return "", fmt.Errorf("method %q is not supported (supported: %s, or several joined by +)",
					part, strings.Join(peft.MethodNames(), ", "))
			}
		}
		parts[i] = m.Name
	}
	return strings.Join(parts, "+"), nil
}

// readRecords parses JSONL training records.
func readRecords(jsonl []byte, name string) ([]data.Record, error) {
	recs, err := data.ReadJSONL(bytes.NewReader(jsonl), name)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s holds no records", name)
	}
	return recs, nil
}

func setInt(dst *int, v int) {
	if v != 0 {
		*dst = v
	}
}
