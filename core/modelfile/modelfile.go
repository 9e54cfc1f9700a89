// Package modelfile writes and reads Ollama Modelfiles (the recipe
// `ollama create NAME -f Modelfile` builds a model from: FROM, ADAPTER,
// TEMPLATE, SYSTEM, PARAMETER, LICENSE, MESSAGE), and converts a model's
// Jinja chat template into the Go text/template TEMPLATE that Ollama
// renders conversations with.
package modelfile

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Parameter is one PARAMETER line: stop, temperature, num_ctx, ...
// A parameter may repeat (every stop sequence is its own line).
type Parameter struct {
	Name, Value string
}

// Message is one MESSAGE line: a turn of the conversation a model starts
// with.
type Message struct {
	Role, Content string
}

// Modelfile is a Modelfile's directives.
type Modelfile struct {
	From       string // the base: a model name or a path to a GGUF file or directory
	Adapters   []string
	Template   string
	System     string
	Parameters []Parameter
	Licenses   []string
	Messages   []Message
}

// Params returns the values of every PARAMETER named name, in order.
func (m *Modelfile) Params(name string) []string {
	var out []string
	for _, p := range m.Parameters {
		if strings.EqualFold(p.Name, name) {
			out = append(out, p.Value)
		}
	}
	return out
}

// Marshal writes the Modelfile: TEMPLATE, SYSTEM, LICENSE and MESSAGE
// values in """triple quotes""" (they may span lines), others on their
// line, in "quotes" unless a plain word. It fails on what no quoting can
// hold: a missing FROM, a block holding """, a line break in a path or
// parameter.
func (m *Modelfile) Marshal() ([]byte, error) {
	if m.From == "" {
		return nil, fmt.Errorf("modelfile: FROM is required")
	}
	var b strings.Builder
	line := func(cmd, val string) error {
		if strings.ContainsAny(val, "\r\n") {
			return fmt.Errorf("modelfile: %s %q holds a line break", cmd, val)
		}
		fmt.Fprintf(&b, "%s %s\n", cmd, quoteLine(val))
		return nil
	}
	block := func(cmd, prefix, val string) error {
		if strings.Contains(val, `"""`) {
			return fmt.Errorf(`modelfile: %s holds """, which a Modelfile cannot quote`, cmd)
		}
		fmt.Fprintf(&b, "%s %s\"\"\"%s\"\"\"\n", cmd, prefix, val)
		return nil
	}
	if err := line("FROM", m.From); err != nil {
		return nil, err
	}
	for _, a := range m.Adapters {
		if err := line("ADAPTER", a); err != nil {
			return nil, err
		}
	}
	if m.Template != "" {
		if err := block("TEMPLATE", "", m.Template); err != nil {
			return nil, err
		}
	}
	if m.System != "" {
		if err := block("SYSTEM", "", m.System); err != nil {
			return nil, err
		}
	}
	for _, p := range m.Parameters {
		if p.Name == "" || strings.ContainsAny(p.Name, " \t\r\n\"") {
			return nil, fmt.Errorf("modelfile: parameter name %q", p.Name)
		}
		if strings.ContainsAny(p.Value, "\r\n") {
			return nil, fmt.Errorf("modelfile: PARAMETER %s %q holds a line break", p.Name, p.Value)
		}
		fmt.Fprintf(&b, "PARAMETER %s %s\n", p.Name, quoteLine(p.Value))
	}
	for _, l := range m.Licenses {
		if err := block("LICENSE", "", l); err != nil {
			return nil, err
		}
	}
	for _, msg := range m.Messages {
		if msg.Role == "" || strings.ContainsAny(msg.Role, " \t\r\n\"") {
			return nil, fmt.Errorf("modelfile: message role %q", msg.Role)
		}
		if err := block("MESSAGE", msg.Role+" ", msg.Content); err != nil {
			return nil, err
		}
	}
	return []byte(b.String()), nil
}

// quoteLine quotes a single-line value unless it is a plain word (letters,
// digits and ./_-:+ only): stop sequences such as <|im_end|>, values with
// blanks and empty ones go in "quotes" with \ and " escaped, as Ollama's
// own Modelfiles write them.
func quoteLine(v string) string {
	plain := v != ""
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("./_-:+", c)) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// commands are the directives Ollama's parser knows.
var commands = map[string]bool{"FROM": true, "ADAPTER": true, "TEMPLATE": true, "SYSTEM": true, "PARAMETER": true, "LICENSE": true, "MESSAGE": true}

// Parse reads a Modelfile: one directive per line (commands case-blind),
// # comments and blank lines between them; a value is the rest of the
// line, a "quoted" string, or a """triple-quoted""" block over several
// lines. PARAMETER takes a name and a value, MESSAGE a role and a
// content. name labels errors ("out/Modelfile").
func Parse(r io.Reader, name string) (*Modelfile, error) {
	data, err := io.ReadAll(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &parser{src: string(data), line: 1, name: name}
	m := &Modelfile{}
	for {
		p.skipBlankAndComments()
		if p.eof() {
			break
		}
		at := p.line
		cmd := strings.ToUpper(p.word())
		if !commands[cmd] {
			return nil, p.errorf(at, "unknown command %q (want FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER, LICENSE or MESSAGE)", cmd)
		}
		var arg string
		switch cmd {
		case "PARAMETER", "MESSAGE":
			arg = p.word()
			if arg == "" {
				return nil, p.errorf(at, "%s needs a %s before its value", cmd, map[string]string{"PARAMETER": "name", "MESSAGE": "role"}[cmd])
			}
		}
		val, err := p.value()
		if err != nil {
			return nil, p.errorf(at, "%s: %v", cmd, err)
		}
		if val == "" && cmd != "SYSTEM" && cmd != "TEMPLATE" {
			return nil, p.errorf(at, "%s has no value", cmd)
		}
		switch cmd {
		case "FROM":
			if m.From != "" {
				return nil, p.errorf(at, "a second FROM")
			}
			m.From = val
		case "ADAPTER":
			m.Adapters = append(m.Adapters, val)
		case "TEMPLATE":
			m.Template = val
		case "SYSTEM":
			m.System = val
		case "PARAMETER":
			m.Parameters = append(m.Parameters, Parameter{Name: strings.ToLower(arg), Value: val})
		case "LICENSE":
			m.Licenses = append(m.Licenses, val)
		case "MESSAGE":
			role := strings.ToLower(arg)
			if role != "system" && role != "user" && role != "assistant" {
				return nil, p.errorf(at, "MESSAGE role %q (want system, user or assistant)", arg)
			}
			m.Messages = append(m.Messages, Message{Role: role, Content: val})
		}
	}
	if m.From == "" {
		return nil, fmt.Errorf("%s: no FROM line", name)
	}
	return m, nil
}

type parser struct {
	src  string
	pos  int
	line int
	name string
}

func (p *parser) errorf(line int, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.name, line, fmt.Sprintf(format, a...))
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) advance(n int) {
	p.line += strings.Count(p.src[p.pos:p.pos+n], "\n")
	p.pos += n
}

func (p *parser) skipSpaces() {
	for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) skipBlankAndComments() {
	for !p.eof() {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			p.advance(1)
		case c == '#':
			end := strings.IndexByte(p.src[p.pos:], '\n')
			if end < 0 {
				end = len(p.src) - p.pos
			}
			p.advance(end)
		default:
			return
		}
	}
}

// word reads the next blank-delimited word on the line.
func (p *parser) word() string {
	p.skipSpaces()
	start := p.pos
	for !p.eof() && !strings.ContainsRune(" \t\r\n", rune(p.src[p.pos])) {
		p.pos++
	}
	return p.src[start:p.pos]
}

// value reads a directive's value: """block""", "string" or the rest of
// the line.
func (p *parser) value() (string, error) {
	p.skipSpaces()
	rest := p.src[p.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		end := strings.Index(rest[3:], `"""`)
		if end < 0 {
			return "", fmt.Errorf(`unterminated """`)
		}
		v := rest[3 : 3+end]
		p.advance(3 + end + 3)
		return v, p.endOfLine()
	case strings.HasPrefix(rest, `"`):
		var b strings.Builder
		for i := 1; i < len(rest); i++ {
			switch c := rest[i]; c {
			case '\\':
				if i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
				}
			case '"':
				p.advance(i + 1)
				return b.String(), p.endOfLine()
			case '\n':
				return "", fmt.Errorf("unterminated \"")
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated \"")
	}
	end := strings.IndexByte(rest, '\n')
	if end < 0 {
		end = len(rest)
	}
	p.advance(end)
	return strings.TrimSpace(rest[:end]), nil
}

// endOfLine checks that nothing but blanks follows a quoted value.
func (p *parser) endOfLine() error {
	p.skipSpaces()
	if p.eof() || p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
		return nil
	}
	return fmt.Errorf("text after the closing quote: %q", p.word())
}
