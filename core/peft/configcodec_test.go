package peft

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// codecInner and codecDoc exercise every tag option of the config codec.
type codecInner struct {
	On   bool     `json:"on" peft:"required"`
	Init string   `json:"init" peft:"default=\"bert\""`
	_    struct{} `key:"fixed" peft:"write=true,allow=true" why:"only true works"`
}

type codecEmbedded struct {
	Kind string   `json:"kind" peft:"empty=plain"`
	_    struct{} `key:"bookkeeping" peft:"write=null"`
}

type codecDoc struct {
	codecEmbedded
	Name    string         `json:"name" peft:"required"`
	Label   string         `json:"label" peft:"null"`
	Count   int            `json:"count"`
	Key     int64          `json:"key"`
	Alpha   float64        `json:"alpha" peft:"number"`
	Rate    float64        `json:"rate"`
	Layers  []int          `json:"layers" peft:"null,scalar"`
	Pattern []string       `json:"pattern" peft:"null,scalar,bare"`
	Leave   []int          `json:"leave"`
	Linear  bool           `json:"linear" peft:"force=false" why:"it is a test"`
	Extra   map[string]any `json:"extra" peft:"null"`
	Inner   *codecInner    `json:"inner"`
	Skipped string         `json:"-"`
	_       struct{}       `key:"later" peft:"allow=false|null|0" why:"it does something graft lacks"`
	_       struct{}       `key:"ignored"`
}

func TestConfigCodecEncode(t *testing.T) {
	doc := codecDoc{Name: "é<&>", Count: 3, Key: 1 << 40, Alpha: 16, Rate: 1e-5,
		Pattern: []string{"layers"}, Inner: &codecInner{On: true}, Skipped: "x"}
	got, err := encodeConfig(&doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"alpha":16,"bookkeeping":null,"count":3,"extra":null,"inner":{"fixed":true,"init":"","on":true},"key":1099511627776,` +
		`"kind":"plain","label":null,"layers":null,"leave":[],"linear":false,"name":"é<&>","pattern":"layers","rate":1e-05}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	doc.Pattern, doc.Layers, doc.Alpha, doc.Inner = []string{"a", "b"}, []int{2}, 0.5, nil
	got, _ = encodeConfig(&doc)
	for _, part := range []string{`"pattern":["a","b"]`, `"layers":[2]`, `"alpha":0.5`, `"inner":null`} {
		if !strings.Contains(string(got), part) {
			t.Errorf("%s lacks %s", got, part)
		}
	}
	indented, err := indentConfig(encodeConfig(&doc))
	if err != nil || !strings.Contains(string(indented), `"name": "\u00e9<&>"`) || !strings.HasPrefix(string(indented), "{\n  \"alpha\": 0.5,\n") {
		t.Errorf("indented (%v):\n%s", err, indented)
	}
	doc.Rate = math.Inf(1)
	if _, err := encodeConfig(&doc); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("infinite rate: %v", err)
	}
}

func TestConfigCodecDecode(t *testing.T) {
	good := `"name": "n", "inner": {"on": true}`
	cases := []struct {
		name, json string
		check      func(codecDoc) bool
		warnings   []string
		err        string
	}{
		{"defaults kept", `{` + good + `, "label": null}`,
			func(d codecDoc) bool { return d.Label == "default" && d.Count == 7 }, nil, ""},
		{"values", `{` + good + `, "count": 8.0, "key": -5, "alpha": 2, "kind": "x", "extra": {"a": [1]}}`,
			func(d codecDoc) bool {
				return d.Count == 8 && d.Key == -5 && d.Alpha == 2 && d.Kind == "x" && d.Extra["a"] != nil
			}, nil, ""},
		{"scalar lists", `{` + good + `, "layers": 3, "pattern": "h"}`,
			func(d codecDoc) bool {
				return reflect.DeepEqual(d.Layers, []int{3}) && reflect.DeepEqual(d.Pattern, []string{"h"})
			}, nil, ""},
		{"nested default", `{` + good + `}`, func(d codecDoc) bool { return d.Inner.Init == "bert" }, nil, ""},
		{"nested value", `{"name": "n", "inner": {"on": true, "init": "x"}}`, func(d codecDoc) bool { return d.Inner.Init == "x" }, nil, ""},
		{"lists", `{` + good + `, "layers": [1, 2], "leave": []}`,
			func(d codecDoc) bool { return reflect.DeepEqual(d.Layers, []int{1, 2}) && d.Leave != nil }, nil, ""},
		{"blank keys", `{` + good + `, "later": 0.0, "ignored": {"any": 1}, "bookkeeping": 5, "inner": {"on": false, "fixed": true}}`,
			nil, nil, ""},
		{"unknown keys", `{` + good + `, "zeta": 1, "alpha_beta": 2, "inner": {"on": true, "new": 1}}`,
			nil, []string{`unknown key "alpha_beta" ignored`, `unknown key "inner.new" ignored`, `unknown key "zeta" ignored`}, ""},
		{"forced", `{` + good + `, "linear": true, "zz": 1}`, func(d codecDoc) bool { return !d.Linear },
			[]string{"linear is true but it is a test; using false, as PEFT does", `unknown key "zz" ignored`}, ""},
		{"missing", `{"inner": {"on": true}}`, nil, nil, "name is missing"},
		{"null required", `{"name": null}`, nil, nil, "name is missing"},
		{"nested missing", `{"name": "n", "inner": {}}`, nil, nil, "inner: on is missing"},
		{"nested refused", `{` + good + `, "inner": {"on": true, "fixed": false}}`, nil, nil, "inner: fixed = false is not supported: only true works"},
		{"refused", `{` + good + `, "later": true}`, nil, nil, "later = true is not supported: it does something graft lacks"},
		{"fraction", `{` + good + `, "count": 2.5}`, nil, nil, "count: 2.5 is not an integer"},
		{"int range", `{` + good + `, "count": 4294967296}`, nil, nil, "count: 4294967296 is out of range"},
		{"string for int", `{` + good + `, "count": "2"}`, nil, nil, `count: "2" is not an integer`},
		{"bool", `{` + good + `, "inner": {"on": "yes"}}`, nil, nil, `inner: on: "yes" is not a boolean`},
		{"list element", `{` + good + `, "leave": ["a"]}`, nil, nil, `leave: ["a"] is not a list of integers`},
		{"scalar element", `{` + good + `, "layers": "a"}`, nil, nil, `layers: "a" is not an integer or a list of integers`},
		{"not an object", `[1]`, nil, nil, "not a JSON object"},
		{"nested not an object", `{"name": "n", "inner": 3}`, nil, nil, "inner: not a JSON object"},
		{"invalid", `{"name": `, nil, nil, "invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := codecDoc{Label: "default", Count: 7}
			warnings, err := decodeConfig([]byte(c.json), &doc, false)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil && !c.check(doc) {
				t.Errorf("decoded %+v", doc)
			}
			if !reflect.DeepEqual(warnings, c.warnings) {
				t.Errorf("warnings %q, want %q", warnings, c.warnings)
			}
		})
	}
}

func TestConfigCodecStrict(t *testing.T) {
	var doc codecDoc
	_, err := decodeConfig([]byte(`{"name": "n", "b": 1, "a": 2}`), &doc, true)
	if err == nil || err.Error() != `unknown key "a"` {
		t.Errorf("strict: %v", err)
	}
}

// checkBase and checkDoc exercise the options checkConfig reads.
type checkBase struct {
	PeftType string `json:"peft_type" peft:"required"`
	Extra    []int  `json:"extra" peft:"unset"`
}

type CheckPart struct {
	Kept int `json:"kept"`
	Left int `json:"left"`
}

func (p *CheckPart) validate() error {
	if p.Kept < 0 {
		return errors.New("kept is negative")
	}
	return nil
}

type checkDoc struct {
	checkBase `peft:"type=TEST"`
	CheckPart `peft:"without=left"`
	R         int     `json:"r" peft:"default=4,positive"`
	Alpha     float64 `json:"alpha" peft:"default=8,positive"`
	Drop      float64 `json:"drop" peft:"prob"`
	Init      float64 `json:"init" peft:"finite"`
	Mode      string  `json:"mode" peft:"empty=a,oneof=a|b" why:"c is not built"`
	Opt       string  `json:"opt" peft:"null,oneof=|on"`
	Linear    bool    `json:"linear" peft:"force=false" why:"it is a test"`
	Saved     bool    `json:"saved" peft:"default=true,must=true" why:"it must be"`
}

func (d *checkDoc) check() error {
	if d.Mode == "b" && d.R > 4 {
		return errors.New("mode b takes r up to 4")
	}
	return nil
}

func TestConfigCheck(t *testing.T) {
	def := DefaultConfig[checkDoc]()
	if def.R != 4 || def.Alpha != 8 || !def.Saved || def.Drop != 0 {
		t.Fatalf("defaults %+v", def)
	}
	if err := validateConfig(&def); err != nil {
		t.Fatal(err)
	}
	data, err := encodeConfig(&def)
	if err != nil || !strings.Contains(string(data), `"peft_type":"TEST"`) || strings.Contains(string(data), "left") {
		t.Errorf("encoded %s (%v)", data, err)
	}
	doc, warnings, err := ParseConfig[checkDoc]([]byte(`{"peft_type": "TEST", "left": 1, "r": 2}`))
	if err != nil || doc.R != 2 || doc.Alpha != 8 || !reflect.DeepEqual(warnings, []string{`unknown key "left" ignored`}) {
		t.Errorf("parsed %+v, %q, %v", doc, warnings, err)
	}
	for _, c := range []struct {
		edit func(*checkDoc)
		want string
	}{
		{func(d *checkDoc) { d.PeftType = "LORA" }, `test config: peft_type is "LORA", want "TEST"`},
		{func(d *checkDoc) { d.Extra = []int{1} }, "test config: extra [1] is not supported"},
		{func(d *checkDoc) { d.Left = 1 }, "left is not an option of this method's PEFT config"},
		{func(d *checkDoc) { d.Kept = -1 }, "test config: kept is negative"},
		{func(d *checkDoc) { d.R = 0 }, "r = 0 must be positive"},
		{func(d *checkDoc) { d.Alpha = math.Inf(1) }, "alpha = +Inf must be positive and finite"},
		{func(d *checkDoc) { d.Alpha = math.NaN() }, "alpha = NaN must be positive and finite"},
		{func(d *checkDoc) { d.Drop = 1 }, "drop = 1 must be in [0, 1)"},
		{func(d *checkDoc) { d.Drop = -0.5 }, "drop = -0.5 must be in [0, 1)"},
		{func(d *checkDoc) { d.Init = math.NaN() }, "init = NaN must be finite"},
		{func(d *checkDoc) { d.Mode = "c" }, `mode "c" is not one of "a", "b": c is not built`},
		{func(d *checkDoc) { d.Opt = "off" }, `opt "off" is not one of null, "on"`},
		{func(d *checkDoc) { d.Linear = true }, "linear must be false: it is a test"},
		{func(d *checkDoc) { d.Saved = false }, "saved must be true: it must be"},
		{func(d *checkDoc) { d.Mode, d.R = "b", 5 }, "test config: mode b takes r up to 4"},
	} {
		d := def
		c.edit(&d)
		if err := validateConfig(&d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
}
