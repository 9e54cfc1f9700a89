package peft

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Every adapter_config.json graft reads or writes is a Go struct, and
// encodeConfig, decodeConfig and checkConfig are the only code that turns
// one into the other and checks it: a method's config is a type
// declaration, with its rules in tags where they are as simple as a range.
//
// `json:"key"` names a field's key ("-": none); an embedded struct adds its
// keys to the object. `peft:"..."` holds comma-separated options:
//
//	required  decoding fails when the key is absent or null
//	default=J an absent or null key decodes as the JSON value J, and
//	          DefaultConfig starts from J
//	force=J   a value other than J decodes as J, with a warning (why says
//	          why), and is refused by checkConfig
//	null      an empty string, list or map is written as null
//	empty=S   an empty string is written (and checked) as S
//	number    a float is written as Python writes an int-or-float field
//	          (16, 0.5), not as a float (16.0)
//	scalar    a list is also read from a single element
//	bare      a one-element list is written as its element
//
// checkConfig refuses values these options rule out, with PEFT-like
// messages ("r = 0 must be positive"):
//
//	positive  an integer above 0, or a finite float above 0
//	prob      a probability of dropping, in [0, 1)
//	finite    a float that is neither NaN nor infinite
//	oneof=S|S a string among these (why says why not others)
//	must=J    exactly the JSON value J (why says why)
//	unset     the zero value: a PEFT option graft does not implement
//
// On an embedded struct, type=T makes T the config's peft_type (written
// when PeftType is empty, and the only one checkConfig accepts), and
// without=K|K leaves the struct's keys K out of a config whose PEFT class
// lacks them (their fields must stay zero).
//
// A blank field (`_ struct{}`) names with `key:"..."` a key graft keeps no
// value for:
//
//	write=J   the encoder writes the key with the JSON value J
//	allow=J|J the decoder accepts only these JSON values (compared as
//	          values: 0 is 0.0); without allow, any value
//
// `why:"..."` explains a refused value (for a real field: a value of the
// wrong type). The encoder writes keys sorted at every level and floats as
// Python's repr does, as PEFT's and AdapterHub's json.dumps(sort_keys=True)
// do. The decoder starts from the values the struct holds (the method's
// defaults): an absent or null key leaves its field alone unless the field
// has a default; a nil pointer to a struct is allocated when its key is
// present. Keys no field declares are warned about, or refused when strict.

// configField is one key of a config struct.
type configField struct {
	key   string
	index []int // the field's index path; nil for a blank field
	opts  map[string]string
	why   string
	off   bool // left out by an embedding's without
}

func (f configField) has(opt string) bool { _, ok := f.opts[opt]; return ok }

// configFields lists the keys of struct type t in declaration order,
// embedded structs flattened.
func configFields(t reflect.Type, index []int) []configField {
	var out []configField
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(slices.Clip(index), i)
		key, opts := sf.Tag.Get("json"), tagOptions(sf.Tag.Get("peft"))
		if sf.Name == "_" {
			key = sf.Tag.Get("key")
		} else if sf.Anonymous && key == "" {
			for _, f := range configFields(sf.Type, idx) {
				f.off = f.off || slices.Contains(strings.Split(opts["without"], "|"), f.key)
				if f.key == "peft_type" && opts["type"] != "" {
					f.opts["empty"], f.opts["type"] = opts["type"], opts["type"]
				}
				out = append(out, f)
			}
			continue
		}
		if key == "" || key == "-" {
			continue
		}
		f := configField{key: key, opts: opts, why: sf.Tag.Get("why")}
		if sf.Name != "_" {
			f.index = idx
		}
		out = append(out, f)
	}
	return out
}

func tagOptions(tag string) map[string]string {
	opts := map[string]string{}
	for _, o := range strings.Split(tag, ",") {
		if k, v, _ := strings.Cut(o, "="); k != "" {
			opts[k] = v
		}
	}
	return opts
}

// encodeConfig writes the config struct *v (or v) as compact JSON.
func encodeConfig(v any) ([]byte, error) {
	return encodeObject(reflect.Indirect(reflect.ValueOf(v)))
}

func encodeObject(v reflect.Value) ([]byte, error) {
	fields := configFields(v.Type(), nil)
	slices.SortFunc(fields, func(a, b configField) int { return strings.Compare(a.key, b.key) })
	b := []byte("{")
	for _, f := range fields {
		if f.off {
			continue
		}
		val, err := []byte(f.opts["write"]), error(nil)
		if f.index != nil {
			val, err = encodeValue(v.FieldByIndex(f.index), f)
		}
		if err != nil {
			return nil, err
		}
		if len(val) == 0 {
			continue // a blank field without write is only read
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		key, _ := marshalNoHTML(f.key)
		b = append(append(append(b, key...), ':'), val...)
	}
	return append(b, '}'), nil
}

func encodeValue(v reflect.Value, f configField) ([]byte, error) {
	if m, ok := v.Interface().(json.Marshaler); ok {
		return m.MarshalJSON()
	}
	switch k := v.Kind(); {
	case (k == reflect.String || k == reflect.Slice || k == reflect.Map) && v.Len() == 0 && f.has("null"):
		return []byte("null"), nil
	case k == reflect.String && v.Len() == 0 && f.has("empty"):
		return marshalNoHTML(f.opts["empty"])
	case k == reflect.Float64 && (math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0)):
		return nil, fmt.Errorf("%s = %g is not a finite number", f.key, v.Float())
	case k == reflect.Float64 && f.has("number"):
		return []byte(pyNumber(v.Float())), nil
	case k == reflect.Float64:
		return []byte(pyFloat(v.Float())), nil
	case k == reflect.Slice && v.Len() == 1 && f.has("bare"):
		return marshalNoHTML(v.Index(0).Interface())
	case k == reflect.Slice && v.Len() == 0:
		return []byte("[]"), nil
	case k == reflect.Struct:
		return encodeObject(v)
	case k == reflect.Pointer && !v.IsNil():
		return encodeValue(v.Elem(), f)
	}
	return marshalNoHTML(v.Interface()) // booleans, integers, strings, lists, maps, nil
}

// indentConfig indents compact JSON by two spaces and escapes non-ASCII
// characters, as Python's json.dumps(indent=2) writes a saved config
// (without a trailing newline).
func indentConfig(compact []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	return asciiJSON(out.Bytes()), nil
}

// decodeConfig decodes the JSON object data into the config struct *dst.
// Warnings list the values force replaced, then the keys no field declares
// (sorted, nested ones dotted: "config.x"), which are errors when strict.
func decodeConfig(data []byte, dst any, strict bool) (warnings []string, err error) {
	obj, err := jsonObject(data)
	if err != nil {
		return nil, err
	}
	var unknown []string
	if err := decodeObject(obj, reflect.ValueOf(dst).Elem(), "", &warnings, &unknown); err != nil {
		return nil, err
	}
	slices.Sort(unknown)
	if strict && len(unknown) > 0 {
		return nil, fmt.Errorf("unknown key %q", unknown[0])
	}
	for _, k := range unknown {
		warnings = append(warnings, fmt.Sprintf("unknown key %q ignored", k))
	}
	return warnings, nil
}

// DefaultConfig returns a config of type T (VeraConfig, LoHaConfig, ...)
// holding PEFT's defaults, those of its fields' default options.
func DefaultConfig[T any]() T {
	var cfg T
	v := reflect.ValueOf(&cfg).Elem()
	for _, f := range configFields(v.Type(), nil) {
		if def, ok := f.opts["default"]; ok && f.index != nil {
			if err := decodeValue(json.RawMessage(def), v.FieldByIndex(f.index), f); err != nil {
				panic(fmt.Sprintf("peft: %s default: %v", f.key, err)) // a tag of this package
			}
		}
	}
	return cfg
}

// ParseConfig decodes an adapter_config.json into a config of type T
// (LoraConfig, VeraConfig, ...). Absent keys take PEFT's defaults; keys T
// does not know are ignored and listed in warnings, as are settings PEFT
// itself overrides for Llama-family models (fan_in_fan_out, then false).
// The result is not validated; call Validate.
func ParseConfig[T any](data []byte) (T, []string, error) {
	cfg := DefaultConfig[T]()
	warnings, err := decodeConfig(data, &cfg, false)
	if err != nil {
		var zero T
		return zero, nil, err
	}
	return cfg, warnings, nil
}

// validateConfig is checkConfig with the config's peft_type before an
// error: "lora config: r = 0 must be positive".
func validateConfig(c any) error {
	err := checkConfig(c)
	if err == nil {
		return nil
	}
	for _, f := range configFields(reflect.TypeOf(c).Elem(), nil) {
		if t := f.opts["type"]; t != "" {
			return fmt.Errorf("%s config: %w", strings.ToLower(t), err)
		}
	}
	return err
}

// checkConfig checks the config struct *c against its fields' options,
// then with the validate method of each embedded part that has one (such
// as TargetConfig) and the config's own check method, for the rules that
// relate fields.
func checkConfig(c any) error {
	v := reflect.ValueOf(c).Elem()
	for _, f := range configFields(v.Type(), nil) {
		if f.index == nil {
			continue
		}
		if err := f.check(v.FieldByIndex(f.index)); err != nil {
			return err
		}
	}
	if err := checkParts(v); err != nil {
		return err
	}
	if c, ok := c.(interface{ check() error }); ok {
		return c.check()
	}
	return nil
}

// checkParts calls validate on the embedded structs of v that have it,
// and looks inside those that do not.
func checkParts(v reflect.Value) error {
	for i := range v.NumField() {
		if sf := v.Type().Field(i); !sf.Anonymous || !sf.IsExported() || sf.Type.Kind() != reflect.Struct {
			continue
		}
		part := v.Field(i).Addr().Interface()
		if p, ok := part.(interface{ validate() error }); ok {
			if err := p.validate(); err != nil {
				return err
			}
		} else if err := checkParts(v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

// check refuses a value that the field's options rule out.
func (f configField) check(v reflect.Value) error {
	var x float64
	var s string
	switch v.Kind() {
	case reflect.Float64:
		x = v.Float()
	case reflect.String:
		s = cmp.Or(v.String(), f.opts["empty"])
	}
	alts := strings.Split(f.opts["oneof"], "|")
	switch {
	case f.off && !v.IsZero():
		return fmt.Errorf("%s is not an option of this method's PEFT config", f.key)
	case f.has("type") && s != f.opts["type"]:
		return fmt.Errorf("peft_type is %q, want %q", v.String(), f.opts["type"])
	case f.has("positive") && v.Kind() == reflect.Int && v.Int() <= 0:
		return fmt.Errorf("%s = %d must be positive", f.key, v.Int())
	case f.has("positive") && v.Kind() == reflect.Float64 && !(x > 0 && !math.IsInf(x, 1)):
		return fmt.Errorf("%s = %g must be positive and finite", f.key, x)
	case f.has("prob") && !(x >= 0 && x < 1):
		return fmt.Errorf("%s = %g must be in [0, 1)", f.key, x)
	case f.has("finite") && (math.IsNaN(x) || math.IsInf(x, 0)):
		return fmt.Errorf("%s = %g must be finite", f.key, x)
	case f.has("oneof") && !slices.Contains(alts, s):
		quoted := strings.ReplaceAll(`"`+strings.Join(alts, `", "`)+`"`, `""`, "null")
		return fmt.Errorf("%s %q is not one of %s%s", f.key, s, quoted, because(f.why))
	case f.has("unset") && !v.IsZero():
		val, _ := marshalNoHTML(v.Interface())
		return fmt.Errorf("%s %s is not supported", f.key, val)
	}
	if want := cmp.Or(f.opts["force"], f.opts["must"]); want != "" {
		if got, err := encodeValue(v, f); err != nil || !jsonOneOf(got, want) {
			return fmt.Errorf("%s must be %s: %s", f.key, want, f.why)
		}
	}
	return nil
}

// jsonObject splits a JSON object into its raw members.
func jsonObject(data []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // says where the syntax breaks
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("not a JSON object: %s", compactJSON(data))
	}
	return obj, nil
}

func decodeObject(obj map[string]json.RawMessage, v reflect.Value, path string, warnings, unknown *[]string) error {
	known := map[string]bool{}
	for _, f := range configFields(v.Type(), nil) {
		if f.off {
			continue
		}
		known[f.key] = true
		raw, ok := obj[f.key]
		null := !ok || string(raw) == "null"
		switch allow, limited := f.opts["allow"]; {
		case f.index == nil && ok && limited && !jsonOneOf(raw, allow):
			return fmt.Errorf("%s = %s is not supported%s", f.key, compactJSON(raw), because(f.why))
		case f.index == nil:
			continue
		case null && f.has("required"):
			return fmt.Errorf("%s is missing", f.key)
		case null && !f.has("default"):
			continue
		case null:
			raw = json.RawMessage(f.opts["default"])
		case f.has("force") && !jsonOneOf(raw, f.opts["force"]):
			*warnings = append(*warnings, fmt.Sprintf("%s is %s but %s; using %s, as PEFT does", f.key, compactJSON(raw), f.why, f.opts["force"]))
			raw = json.RawMessage(f.opts["force"])
		}
		fv := v.FieldByIndex(f.index)
		if fv.Kind() == reflect.Pointer && fv.IsNil() {
			fv.Set(reflect.New(fv.Type().Elem()))
		}
		if fv = reflect.Indirect(fv); fv.Kind() == reflect.Struct && !fv.Addr().Type().Implements(unmarshalerType) {
			inner, err := jsonObject(raw)
			if err == nil {
				err = decodeObject(inner, fv, path+f.key+".", warnings, unknown)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
		} else if err := decodeValue(raw, fv, f); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	for key := range obj {
		if !known[key] {
			*unknown = append(*unknown, path+key)
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodeValue decodes one JSON value into v, strictly (a string field
// takes no number); an integer field takes 8 or 8.0 but not 8.5.
func decodeValue(raw json.RawMessage, v reflect.Value, f configField) error {
	p := v.Addr().Interface()
	if _, ok := p.(json.Unmarshaler); ok {
		return json.Unmarshal(raw, p)
	}
	if k := v.Kind(); k == reflect.Int || k == reflect.Int64 {
		var num json.Number
		if raw[0] != '"' && json.Unmarshal(raw, &num) == nil {
			n, err := jsonInt(num)
			if err == nil && k == reflect.Int && (n > math.MaxInt32 || n < math.MinInt32) {
				err = fmt.Errorf("%d is out of range", n)
			}
			if err == nil {
				v.SetInt(n)
			}
			return err
		}
	} else {
		list := raw
		if k == reflect.Slice && f.has("scalar") && raw[0] != '[' {
			list = slices.Concat([]byte("["), raw, []byte("]"))
		}
		if json.Unmarshal(list, p) == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is not %s%s", compactJSON(raw), kindName(v.Type(), f.has("scalar")), because(f.why))
}

// jsonInt reads an integral JSON number; Python writes ints without a
// fraction, but 8.0 is accepted.
func jsonInt(n json.Number) (int64, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	x, err := n.Float64()
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return 0, fmt.Errorf("%s is not an integer", n)
	}
	return int64(x), nil
}

// kindName describes what a value of type t must be in JSON.
func kindName(t reflect.Type, scalar bool) string {
	names := map[reflect.Kind][2]string{reflect.Bool: {"a boolean", "booleans"}, reflect.String: {"a string", "strings"},
		reflect.Int: {"an integer", "integers"}, reflect.Int64: {"an integer", "integers"}, reflect.Float64: {"a number", "numbers"}}
	if t.Kind() != reflect.Slice {
		return cmp.Or(names[t.Kind()][0], "an object")
	}
	elem := names[t.Elem().Kind()]
	if scalar {
		return elem[0] + " or a list of " + elem[1]
	}
	return "a list of " + elem[1]
}

func because(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

// jsonOneOf reports whether raw equals one of the |-separated JSON values
// as a value (0 and 0.0 are equal).
func jsonOneOf(raw json.RawMessage, alternatives string) bool {
	canon := func(data []byte) string {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return "\x00invalid"
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	got := canon(raw)
	for _, alt := range strings.Split(alternatives, "|") {
		if canon([]byte(alt)) == got {
			return true
		}
	}
	return false
}

// compactJSON shortens a raw value for an error message.
func compactJSON(v []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		b.Reset()
		b.Write(v)
	}
	s := b.String()
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// pyNumber formats v as Python's json module does for a number that may be
// an int: integers without a fraction, other floats as repr does.
func pyNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return pyFloat(v)
}

// pyFloat formats v as Python's repr of a float: shortest round-trip
// digits, "1.0" for integral values, exponent form below 1e-4 and from 1e16.
func pyFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null" // not representable in JSON; Validate rejects these
	}
	a := math.Abs(v)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(v, 'e', -1, 64) // "1e-05", like Python
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// marshalNoHTML encodes v like json.Marshal but leaves <, > and & alone, as
// Python's json module does.
func marshalNoHTML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// asciiJSON replaces every non-ASCII character of JSON text (they occur
// only inside strings) by its \uXXXX escape, with surrogate pairs above
// the Basic Multilingual Plane, as Python's json module writes them
// (ensure_ascii).
func asciiJSON(data []byte) []byte {
	var out bytes.Buffer
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r < utf8.RuneSelf:
			out.WriteByte(data[0])
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
		data = data[size:]
	}
	return out.Bytes()
}
