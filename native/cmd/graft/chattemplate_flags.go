package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

const (
	chatTemplateHelp    = "chat template for {\"messages\"}: auto (default: the model's own, else chatml or simple by the vocabulary), model, chatml, llama2, simple"
	chatTemplateVarHelp = "`key=value` variable for the model's chat template (repeatable; the value is JSON or else a string): enable_thinking=false, date_string=\"26 Jul 2024\""
)

// templateVars is --chat-template-var: key=value pairs collected into a
// map, values read as JSON when they parse (false, 3, ["a"]) and as
// strings otherwise. Its String is the map as a JSON object, which Set
// also takes, so graft train can replay the flag over a --config file.
type templateVars struct{ m *map[string]any }

func (v templateVars) String() string {
	if v.m == nil || len(*v.m) == 0 {
		return ""
	}
	b, _ := json.Marshal(*v.m) // values came from JSON or are strings
	return string(b)
}

func (v templateVars) Type() string { return "key=value" }

func (v templateVars) Set(s string) error {
	if *v.m == nil {
		*v.m = map[string]any{}
	}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		var all map[string]any
		if err := json.Unmarshal([]byte(s), &all); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
		for k, x := range all {
			(*v.m)[k] = x
		}
		return nil
	}
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	var x any
	if err := json.Unmarshal([]byte(value), &x); err != nil {
		x = value
	}
	(*v.m)[key] = x
	return nil
}
