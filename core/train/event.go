package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// Event kinds.
const (
	EventStart      = "start"      // Run is about to train (see Event.Examples)
	EventStep       = "step"       // an optimizer step finished
	EventEval       = "eval"       // an evaluation finished
	EventCheckpoint = "checkpoint" // a checkpoint was written to Path
	EventDone       = "done"       // the run finished
	// EventWarning is something Run lets pass but reports (Message): data
	// read with AllowInvalidUTF8, a resume with Force.
	EventWarning = "warning"
)

// Event reports progress to Fit's callback. Fields that do not apply to a
// kind are zero.
type Event struct {
	Kind       string
	Step       int // optimizer steps completed, counting from 1
	TotalSteps int
	Epoch      float64 // passes over the training data so far
	// Loss is the token-mean training loss of the step (step events) or of
	// the last step (done events).
	Loss     float64
	EvalLoss float64 // token-mean loss over the eval batches (eval and done events)
	LR       float64 // learning rate the step used
	GradNorm float64 // global gradient norm before clipping
	// Tokens counts the input tokens trained on since the run began,
	// including steps before a resume.
	Tokens int
	// TokensPerSec is the training throughput of this Fit call.
	TokensPerSec float64
	Elapsed      time.Duration // time spent in this Fit call
	ETA          time.Duration // estimated time left until the last step
	// Path is the checkpoint directory (checkpoint events; start events
	// of a resumed run: the checkpoint resumed from).
	Path string
	// TrainableParams, TotalParams (the base model's) and Examples (the
	// training examples after tokenizing) describe the run (start
	// events).
	TrainableParams, TotalParams int64
	Examples                     int
	// SeqLen and Pack are how Run cut the data into rows (start events;
	// the eval losses are measured under them, see Evaluate).
	SeqLen int
	Pack   bool
	// Message is a warning's text.
	Message string
}

// jsonFloat encodes non-finite values as the strings "NaN", "+Inf" and
// "-Inf", which JSON cannot hold as numbers, so one diverging eval loss does
// not stop the metrics log.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return json.Marshal(fmt.Sprint(v))
	}
	return json.Marshal(v)
}

// metricsLine is the metrics.jsonl form of an Event: snake_case keys,
// durations in seconds, and only the fields the kind uses.
type metricsLine struct {
	Kind         string     `json:"kind"`
	Step         int        `json:"step"`
	TotalSteps   int        `json:"total_steps"`
	Epoch        jsonFloat  `json:"epoch"`
	Loss         *jsonFloat `json:"loss,omitempty"`
	EvalLoss     *jsonFloat `json:"eval_loss,omitempty"`
	LR           *jsonFloat `json:"lr,omitempty"`
	GradNorm     *jsonFloat `json:"grad_norm,omitempty"`
	Tokens       int        `json:"tokens,omitempty"`
	TokensPerSec jsonFloat  `json:"tokens_per_sec,omitempty"`
	ElapsedSec   jsonFloat  `json:"elapsed_s"`
	ETASec       *jsonFloat `json:"eta_s,omitempty"`
	Path         string     `json:"path,omitempty"`
}

func newMetricsLine(e Event) metricsLine {
	ptr := func(v float64) *jsonFloat { f := jsonFloat(v); return &f }
	l := metricsLine{
		Kind:         e.Kind,
		Step:         e.Step,
		TotalSteps:   e.TotalSteps,
		Epoch:        jsonFloat(e.Epoch),
		Tokens:       e.Tokens,
		TokensPerSec: jsonFloat(e.TokensPerSec),
		ElapsedSec:   jsonFloat(e.Elapsed.Seconds()),
		Path:         e.Path,
	}
	switch e.Kind {
	case EventStep:
		l.Loss, l.LR, l.GradNorm, l.ETASec = ptr(e.Loss), ptr(e.LR), ptr(e.GradNorm), ptr(e.ETA.Seconds())
	case EventEval:
		l.EvalLoss = ptr(e.EvalLoss)
	case EventDone:
		l.Loss = ptr(e.Loss)
		if e.EvalLoss != 0 {
			l.EvalLoss = ptr(e.EvalLoss)
		}
	}
	return l
}

// MetricsWriter returns an event callback that writes each event to w as
// one line of JSON, the metrics.jsonl format: snake_case keys, durations in
// seconds (elapsed_s, eta_s), non-finite numbers as strings. Writing stops
// at the first error, which errFn then returns.
func MetricsWriter(w io.Writer) (onEvent func(Event), errFn func() error) {
	var first error
	enc := json.NewEncoder(w)
	onEvent = func(e Event) {
		if first != nil {
			return
		}
		if err := enc.Encode(newMetricsLine(e)); err != nil {
			first = fmt.Errorf("train: writing metrics: %w", err)
		}
	}
	return onEvent, func() error { return first }
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "NaN":
			*f = jsonFloat(math.NaN())
		case "+Inf":
			*f = jsonFloat(math.Inf(1))
		case "-Inf":
			*f = jsonFloat(math.Inf(-1))
		default:
			return fmt.Errorf("%q is not a number", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// parseMetricsLine reads one metrics.jsonl line back into the Event it
// was written from (its times and rates aside).
func parseMetricsLine(line []byte) (Event, error) {
	var l metricsLine
	if err := json.Unmarshal(line, &l); err != nil {
		return Event{}, err
	}
	if l.Kind == "" {
		return Event{}, fmt.Errorf("no kind")
	}
	val := func(p *jsonFloat) float64 {
		if p == nil {
			return 0
		}
		return float64(*p)
	}
	return Event{Kind: l.Kind, Step: l.Step, TotalSteps: l.TotalSteps, Epoch: float64(l.Epoch), Loss: val(l.Loss),
		EvalLoss: val(l.EvalLoss), LR: val(l.LR), GradNorm: val(l.GradNorm), Tokens: l.Tokens, Path: l.Path}, nil
}
