package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadByExtension(t *testing.T) {
	bos, eos := tokID(1, false), tokID(2, true)
	tests := []struct {
		name, content string
		opt           Options
		want          []Example
	}{
		{"d.jsonl", "{\"text\":\"ab\"}\n{\"prompt\":\"a\",\"completion\":\"b\"}\n", DefaultOptions(),
			[]Example{build(bos, txt("ab", true), eos), build(bos, txt("a", false), txt("b", true), eos)}},
		{"lines.JSON", "{\"text\":\"ab\"}\n", Options{}, []Example{build(bos, txt("ab", true))}},
		{"array.json", "[\n {\"instruction\":\"i\",\"output\":\"o\"}\n]\n", Options{},
			[]Example{build(bos, txt("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\ni\n\n### Response:\n", false), txt("o", true))}},
		{"t.txt", "abcd\n\nef\n", Options{TextSeqLen: 3},
			[]Example{build(bos, txt("ab", true)), build(txt("b", false), txt("cd", true)), build(bos, txt("ef", true))}},
		{"whole.txt", "abcd\n", Options{}, []Example{build(bos, txt("abcd", true))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(writeFile(t, tt.name, tt.content), newByteTok(), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadErrorsNamePath(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"d.csv", "a,b\n", `unknown dataset extension ".csv"`},
		{"empty.jsonl", "\n\n", "no records"},
		{"bad.jsonl", "{\"text\":\"a\"}\n{\"role\":\"user\"}\n", "bad.jsonl:2: record has none of the known shapes"},
		{"bad.json", "[{\"text\":\"a\"},\n\n {\"text\":\"a\",\"output\":\"b\"}]", "bad.json:3: record mixes shapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.name, tt.content)
			_, err := Load(path, newByteTok(), DefaultOptions())
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want the path and %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.jsonl"), newByteTok(), Options{}); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: %v", err)
	}
}
