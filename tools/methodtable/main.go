// Command methodtable trains every PEFT method graft implements on the
// bundled stories260K with the demo data and prints the README's table:
// trainable parameters, share of the model, held-out loss before and
// after, and time.
//
//	go build -o bin/graft ./native/cmd/graft && go run ./tools/methodtable [-steps 100]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	graft := flag.String("graft", "bin/graft", "the graft binary")
	steps := flag.Int("steps", 100, "optimizer steps per method")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "methodtable-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	runs := []struct {
		name string
		args []string
	}{
		{"LoRA r=8 (q,k,v,o)", []string{"--method", "lora", "--r", "8", "--alpha", "16", "--target", "q_proj,k_proj,v_proj,o_proj", "--lr", "5e-3"}},
		{"rsLoRA r=8 all-linear", []string{"--method", "lora", "--r", "8", "--alpha", "16", "--rslora", "--target", "all-linear", "--lr", "5e-3"}},
		{"DoRA r=8 (q,k,v,o)", []string{"--method", "lora", "--dora", "--r", "8", "--alpha", "16", "--target", "q_proj,k_proj,v_proj,o_proj", "--lr", "5e-3"}},
		{"PiSSA r=8 (q,k,v,o)", []string{"--method", "lora", "--init", "pissa", "--r", "8", "--alpha", "8", "--target", "q_proj,k_proj,v_proj,o_proj", "--lr", "2e-3"}},
		{"OLoRA r=8 (q,k,v,o)", []string{"--method", "lora", "--init", "olora", "--r", "8", "--alpha", "8", "--target", "q_proj,k_proj,v_proj,o_proj", "--lr", "2e-3"}},
		{"QLoRA NF4+DQ r=8 (q,k,v,o)", []string{"--method", "lora", "--quantize", "nf4", "--double-quant", "--r", "8", "--alpha", "16", "--target", "q_proj,k_proj,v_proj,o_proj", "--lr", "5e-3"}},
		{"VeRA r=256 (q,v)", []string{"--method", "vera", "--lr", "1e-2"}},
		{"IA³ (k,v,down)", []string{"--method", "ia3", "--lr", "1e-2"}},
		{"Prompt tuning, 20 tokens", []string{"--method", "prompt-tuning", "--virtual-tokens", "20", "--init-text", "Once upon a time, there was a little blue owl named Pip.", "--lr", "1e-2"}},
		{"Prefix tuning, 20 tokens", []string{"--method", "prefix-tuning", "--virtual-tokens", "20", "--prefix-projection", "--lr", "5e-3"}},
		{"Houlsby, rf 16", []string{"--method", "houlsby", "--lr", "1e-2"}},
		{"Pfeiffer, rf 16", []string{"--method", "pfeiffer", "--lr", "1e-2"}},
		{"LoHa r=8 (q,v)", []string{"--method", "loha", "--r", "8", "--alpha", "16", "--lr", "3e-2"}},
		{"LoKr r=8 (q,v)", []string{"--method", "lokr", "--r", "8", "--alpha", "16", "--lr", "5e-2"}},
	}
	fmt.Printf("| method | trainable params | %% of model | eval loss before | after | time (%d steps) |\n", *steps)
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	for i, r := range runs {
		args := append([]string{"train", "--model", "models/stories260K/stories260K.gguf",
			"--data", "examples/lora/data/train.jsonl", "--eval", "examples/lora/data/eval.jsonl",
			"--steps", fmt.Sprint(*steps), "--batch", "4", "--seq-len", "128", "--pack", "--warmup", "10", "--seed", "1",
			"--quiet", "--json", "--out", filepath.Join(tmp, fmt.Sprint(i))}, r.args...)
		cmd := exec.Command(*graft, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("%s: %v\n%s", r.name, err, stderr.String())
		}
		var s struct {
			Eval      *float64 `json:"eval_loss"`
			Before    *float64 `json:"eval_loss_before"`
			Trainable int64    `json:"trainable_params"`
			Total     int64    `json:"total_params"`
			Elapsed   float64  `json:"elapsed_s"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || s.Eval == nil || s.Before == nil {
			log.Fatalf("%s: bad summary %q: %v", r.name, stdout.String(), err)
		}
		fmt.Printf("| %s | %d | %.2f%% | %.3f | %.3f | %.1f s |\n", r.name, s.Trainable,
			100*float64(s.Trainable)/float64(s.Total), *s.Before, *s.Eval, s.Elapsed)
	}
}
