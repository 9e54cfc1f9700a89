// Command methodtable trains every PEFT method graft registers (the
// registry, peft.Methods) on the bundled stories260K with the demo data,
// each with nothing but its defaults (`graft train --method X --steps N`,
// as a user who gives no other flag gets), and prints the README's table:
// the adapter settings and learning rate the run resolves from the
// registry's defaults (graft train --print-config), the trainable
// parameters, their share of the model, the held-out loss before and
// after, and time. LoRA's variants (rsLoRA, DoRA, PiSSA,
// OLoRA, QLoRA) and a mixed stack follow with their one extra flag.
//
//	go build -o bin/graft ./native/cmd/graft && go run ./tools/methodtable [-steps 100]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// row is one line of the table: a method and the flags beyond --method.
type row struct {
	method string
	flags  []string
}

// variants are LoRA's variants and a mixed stack, each one flag away from
// a registered method's defaults.
var variants = []row{
	{"lora", []string{"--rslora", "--target", "all-linear"}},
	{"lora", []string{"--dora"}},
	{"lora", []string{"--init", "pissa"}},
	{"lora", []string{"--init", "olora"}},
	{"lora", []string{"--quantize", "nf4", "--double-quant"}},
	{"lora+prefix-tuning", nil},
}

func main() {
	graft := flag.String("graft", "bin/graft", "the graft binary")
	steps := flag.Int("steps", 100, "optimizer steps per method")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "methodtable-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	var rows []row
	for _, name := range order(peft.MethodNames()) {
		rows = append(rows, row{method: name})
	}
	rows = append(rows, variants...)
	fmt.Printf("| `--method` and flags | settings | lr | trainable params | %% of model | eval loss before | after | time (%d steps) |\n", *steps)
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i, r := range rows {
		args := append([]string{"train", "--model", "models/stories260K/stories260K.gguf",
			"--data", "examples/lora/data/train.jsonl", "--eval", "examples/lora/data/eval.jsonl",
			"--steps", fmt.Sprint(*steps), "--method", r.method}, r.flags...)
		args = append(args, "--quiet", "--json", "--out", filepath.Join(tmp, fmt.Sprint(i)))
		// The run's settings as graft resolves them from the registry.
		var spec train.Spec
		if err := json.Unmarshal(run(*graft, append(args, "--print-config")...), &spec); err != nil {
			log.Fatalf("%s %v: --print-config: %v", r.method, r.flags, err)
		}
		lr, settings := describe(spec)
		stdout := run(*graft, args...)
		var s struct {
			Eval      *float64 `json:"eval_loss"`
			Before    *float64 `json:"eval_loss_before"`
			Trainable int64    `json:"trainable_params"`
			Total     int64    `json:"total_params"`
			Elapsed   float64  `json:"elapsed_s"`
		}
		if err := json.Unmarshal(stdout, &s); err != nil || s.Eval == nil || s.Before == nil {
			log.Fatalf("%s %v: bad summary %q: %v", r.method, r.flags, stdout, err)
		}
		label := "`" + strings.Join(append([]string{r.method}, r.flags...), " ") + "`"
		fmt.Printf("| %s | %s | %g | %d | %.2f%% | %.3f | %.3f | %.1f s |\n", label, settings, lr, s.Trainable,
			100*float64(s.Trainable)/float64(s.Total), *s.Before, *s.Eval, s.Elapsed)
	}
}

// order puts LoRA first, then the other methods by name.
func order(names []string) []string {
	slices.SortStableFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "lora":
			return -1
		case b == "lora":
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// run runs graft and returns its stdout.
func run(graft string, args ...string) []byte {
	cmd := exec.Command(graft, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("graft %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// describe returns the learning rate and the adapter settings of a run
// with its defaults filled in.
func describe(s train.Spec) (float64, string) {
	if len(s.Stack) > 0 {
		parts := make([]string, len(s.Stack))
		for i, p := range s.Stack {
			parts[i] = p.Method + ": " + settings(p.Options)
		}
		return s.LR, strings.Join(parts, "; ")
	}
	return s.LR, settings(s.Options)
}

// settings prints adapter settings as key=value, sorted by key.
func settings(opts map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		v := opts[k]
		if l, ok := v.([]any); ok {
			parts := make([]string, len(l))
			for i, x := range l {
				parts[i] = fmt.Sprint(x)
			}
			v = strings.Join(parts, ",")
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return strings.Join(parts, " ")
}
