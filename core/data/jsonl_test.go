package data

import (
	"slices"
	"strings"
	"testing"
)

func TestReadJSONL(t *testing.T) {
	in := `{"text": "a b"}

{"prompt": "p", "completion": "c"}
{"messages": [{"role": "user", "content": "hi"}]}
{"instruction": "i", "input": "", "output": "o"}
`
	recs, err := ReadJSONL(strings.NewReader(in), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4", len(recs))
	}
	if *recs[0].Text != "a b" || recs[0].Line != 1 {
		t.Errorf("record 0 = %+v", recs[0])
	}
	if *recs[1].Completion != "c" || recs[1].Line != 3 {
		t.Errorf("record 1 = %+v", recs[1])
	}
	if recs[2].Messages[0].Content != "hi" || *recs[3].Output != "o" {
		t.Errorf("records 2,3 = %+v %+v", recs[2], recs[3])
	}
}

func TestReadJSONLErrorsNameLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"bad json", "{\"text\": \"ok\"}\n{\"text\": \n", "x.jsonl:2"},
		{"not an object", "{\"text\": \"ok\"}\n\n[1,2]\n", "x.jsonl:3"},
		{"two values", "{\"text\": \"a\"} {\"text\": \"b\"}\n", "x.jsonl:1"},
		{"wrong type", "{\"text\": 5}\n", "x.jsonl:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSONL(strings.NewReader(tt.in), "x.jsonl")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestTextsRequiresText(t *testing.T) {
	recs, err := ReadJSONL(strings.NewReader("{\"text\":\"a\"}\n{\"prompt\":\"b\"}\n"), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Texts(recs, "d.jsonl"); err == nil || !strings.Contains(err.Error(), "d.jsonl:2") {
		t.Fatalf("error %v, want one naming d.jsonl:2", err)
	}
}

func TestReadJSONArrayLines(t *testing.T) {
	in := "\n  [\n  {\"text\": \"a\"},\n\n  {\"instruction\": \"i\",\n   \"output\": \"o\"}, {\"text\": \"c\"}\n]\n"
	recs, err := ReadJSON(strings.NewReader(in), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, r := range recs {
		lines = append(lines, r.Line)
	}
	if want := []int{3, 5, 6}; !slices.Equal(lines, want) {
		t.Fatalf("lines %v, want %v", lines, want)
	}
	if *recs[1].Output != "o" || *recs[2].Text != "c" {
		t.Errorf("records %+v", recs)
	}
}

func TestReadJSONFallsBackToLines(t *testing.T) {
	recs, err := ReadJSON(strings.NewReader("\n{\"text\":\"a\"}\n{\"text\":\"b\"}\n"), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].Line != 3 {
		t.Fatalf("records %+v", recs)
	}
	if recs, err := ReadJSON(strings.NewReader(" \n"), "x.json"); err != nil || len(recs) != 0 {
		t.Fatalf("blank: %v %v", recs, err)
	}
}

func TestReadJSONArrayErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"element not an object", "[\n{\"text\":\"a\"},\n3]", "x.json:3"},
		{"unterminated", "[\n{\"text\":\"a\"}\n", "x.json:"},
		{"trailing data", "[{\"text\":\"a\"}]\n\n{}", "x.json:3: data after"},
		{"bad field type", "[\n\n{\"text\": 1}]", "x.json:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(tt.in), "x.json")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
