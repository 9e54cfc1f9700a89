package train

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// svgCounts parses an SVG document with encoding/xml and counts its
// elements by name.
func svgCounts(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	counts := map[string]int{}
	depth, root := 0, ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = el.Name.Local
				if el.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", el.Name.Space)
				}
			}
			depth++
			counts[el.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if root != "svg" || depth != 0 {
		t.Fatalf("root element %q, depth %d at the end", root, depth)
	}
	return counts
}

func TestPlotSVG(t *testing.T) {
	var events []Event
	for s := 1; s <= 40; s++ {
		events = append(events, Event{Kind: EventStep, Step: s, Loss: 3 / math.Sqrt(float64(s))})
		if s%10 == 0 {
			events = append(events, Event{Kind: EventEval, Step: s, EvalLoss: 3.2 / math.Sqrt(float64(s))})
		}
	}
	events = append(events,
		Event{Kind: EventCheckpoint, Step: 40, Path: "a<b&c"},
		Event{Kind: EventStep, Step: 41, Loss: math.NaN()}, // skipped
		Event{Kind: EventDone, Step: 41})
	var buf bytes.Buffer
	if err := PlotSVG(&buf, events); err != nil {
		t.Fatal(err)
	}
	counts := svgCounts(t, buf.Bytes())
	if counts["polyline"] != 2 {
		t.Errorf("%d polylines, want train and eval", counts["polyline"])
	}
	if counts["circle"] != 4+1 {
		t.Errorf("%d circles, want 4 eval points and the legend's", counts["circle"])
	}
	for _, label := range []string{">step<", ">loss<", ">train<", ">eval<", ">40<"} {
		if !bytes.Contains(buf.Bytes(), []byte(label)) {
			t.Errorf("plot lacks the text %s", label)
		}
	}
	if bytes.Contains(buf.Bytes(), []byte("NaN")) {
		t.Error("plot contains NaN coordinates")
	}
}

func TestPlotSVGEdgeCases(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events []Event
	}{
		{"one point", []Event{{Kind: EventStep, Step: 1, Loss: 2}}},
		{"flat loss", []Event{{Kind: EventStep, Step: 1, Loss: 2}, {Kind: EventStep, Step: 2, Loss: 2}}},
		{"eval only", []Event{{Kind: EventEval, Step: 0, EvalLoss: 1e-4}, {Kind: EventEval, Step: 5, EvalLoss: 2e-4}}},
		{"huge range", []Event{{Kind: EventStep, Step: 1, Loss: 1e6}, {Kind: EventStep, Step: 100000, Loss: 1e-6}}},
	} {
		var buf bytes.Buffer
		if err := PlotSVG(&buf, tt.events); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		svgCounts(t, buf.Bytes())
		if s := buf.String(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
			t.Errorf("%s: non-finite coordinates", tt.name)
		}
	}
	if err := PlotSVG(io.Discard, []Event{{Kind: EventDone}}); err == nil {
		t.Error("PlotSVG with nothing to draw succeeded")
	}
}

func TestNiceAxis(t *testing.T) {
	a := niceAxis(0, 37, 8, true)
	if a.lo != 0 || a.hi != 40 || len(a.ticks) != 9 || a.ticks[1] != 5 || a.label(a.ticks[1]) != "5" {
		t.Errorf("niceAxis(0, 37) = %+v", a)
	}
	b := niceAxis(0.83, 2.41, 6, false)
	if b.lo != 0.5 || b.hi != 2.5 || len(b.ticks) != 5 || b.label(b.ticks[1]) != "1.0" {
		t.Errorf("niceAxis(0.83, 2.41) = %+v", b)
	}
}

func TestPlotLegendListsOnlyDrawnSeries(t *testing.T) {
	var buf bytes.Buffer
	if err := PlotSVG(&buf, []Event{{Kind: EventStep, Step: 1, Loss: 2}, {Kind: EventStep, Step: 2, Loss: 1}}); err != nil {
		t.Fatal(err)
	}
	if counts := svgCounts(t, buf.Bytes()); counts["circle"] != 0 || bytes.Contains(buf.Bytes(), []byte(">eval<")) {
		t.Errorf("a plot without eval points has an eval legend entry:\n%s", buf.Bytes())
	}
}
