package train

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot geometry in SVG user units.
const (
	plotWidth   = 720
	plotHeight  = 420
	marginLeft  = 72
	marginRight = 24
	marginTop   = 44
	marginBot   = 56
	trainColor  = "#1f77b4"
	evalColor   = "#ff7f0e"
)

// point is one (step, loss) pair.
type point struct{ x, y float64 }

// PlotSVG draws the training loss of the "step" events (a line) and the
// eval loss of the "eval" events (dots joined by a dashed line) against the
// step, as a self-contained SVG document with axes, ticks, labels and a
// legend. Other kinds, and losses that are not finite, are skipped; it is
// an error if nothing is left to draw.
func PlotSVG(w io.Writer, events []Event) error {
	var trainPts, evalPts []point
	for _, e := range events {
		switch e.Kind {
		case EventStep:
			if isFinite(e.Loss) {
				trainPts = append(trainPts, point{float64(e.Step), e.Loss})
			}
		case EventEval:
			if isFinite(e.EvalLoss) {
				evalPts = append(evalPts, point{float64(e.Step), e.EvalLoss})
			}
		}
	}
	if len(trainPts) == 0 && len(evalPts) == 0 {
		return errors.New("train: plot: no step or eval events with a finite loss")
	}

	all := append(append([]point(nil), trainPts...), evalPts...)
	xmin, xmax, ymin, ymax := all[0].x, all[0].x, all[0].y, all[0].y
	for _, p := range all[1:] {
		xmin, xmax = min(xmin, p.x), max(xmax, p.x)
		ymin, ymax = min(ymin, p.y), max(ymax, p.y)
	}
	xmin = min(xmin, 0) // steps start at 0 so the run's length reads at a glance
	xAxis := niceAxis(xmin, xmax, 8, true)
	yAxis := niceAxis(ymin, ymax, 6, false)

	innerW := float64(plotWidth - marginLeft - marginRight)
	innerH := float64(plotHeight - marginTop - marginBot)
	sx := func(x float64) float64 { return marginLeft + (x-xAxis.lo)/(xAxis.hi-xAxis.lo)*innerW }
	sy := func(y float64) float64 { return marginTop + (yAxis.hi-y)/(yAxis.hi-yAxis.lo)*innerH }

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotWidth, plotHeight, plotWidth, plotHeight)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="24" text-anchor="middle" font-size="15">Loss</text>`+"\n", plotWidth/2)

	// Grid and ticks.
	bottom, right := float64(plotHeight-marginBot), float64(plotWidth-marginRight)
	p(`<g stroke="#e5e5e5" stroke-width="1">` + "\n")
	for _, t := range xAxis.ticks {
		p(`<line x1="%s" y1="%d" x2="%s" y2="%s"/>`+"\n", num(sx(t)), marginTop, num(sx(t)), num(bottom))
	}
	for _, t := range yAxis.ticks {
		p(`<line x1="%d" y1="%s" x2="%s" y2="%s"/>`+"\n", marginLeft, num(sy(t)), num(right), num(sy(t)))
	}
	p("</g>\n")
	p(`<g fill="#333">` + "\n")
	for _, t := range xAxis.ticks {
		p(`<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(sx(t)), num(bottom+18), xAxis.label(t))
	}
	for _, t := range yAxis.ticks {
		p(`<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginLeft-8, num(sy(t)), yAxis.label(t))
	}
	p(`<text x="%s" y="%d" text-anchor="middle">step</text>`+"\n", num(marginLeft+innerW/2), plotHeight-12)
	p(`<text transform="translate(18 %s) rotate(-90)" text-anchor="middle">loss</text>`+"\n", num(marginTop+innerH/2))
	p("</g>\n")
	p(`<rect x="%d" y="%d" width="%s" height="%s" fill="none" stroke="#333" stroke-width="1"/>`+"\n",
		marginLeft, marginTop, num(innerW), num(innerH))

	// Series.
	polyline := func(pts []point, color, extra string) {
		var sb strings.Builder
		for i, pt := range pts {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(num(sx(pt.x)) + "," + num(sy(pt.y)))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", color, extra, sb.String())
	}
	if len(trainPts) > 0 {
		polyline(trainPts, trainColor, ` stroke-linejoin="round"`)
	}
	if len(evalPts) > 0 {
		polyline(evalPts, evalColor, ` stroke-dasharray="5 3"`)
		p(`<g fill="%s">`+"\n", evalColor)
		for _, pt := range evalPts {
			p(`<circle cx="%s" cy="%s" r="3.5"/>`+"\n", num(sx(pt.x)), num(sy(pt.y)))
		}
		p("</g>\n")
	}

	// Legend, top right inside the plot area, for the series drawn: a
	// falling loss leaves that corner empty.
	type entry struct {
		label string
		mark  func(x, y float64)
	}
	var entries []entry
	if len(trainPts) > 0 {
		entries = append(entries, entry{"train", func(x, y float64) {
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>`+"\n", num(x-12), num(y), num(x+12), num(y), trainColor)
		}})
	}
	if len(evalPts) > 0 {
		entries = append(entries, entry{"eval", func(x, y float64) {
			p(`<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", num(x), num(y), evalColor)
		}})
	}
	lx, ly := right-110, float64(marginTop)+10
	p("<g>\n")
	p(`<rect x="%s" y="%s" width="100" height="%d" fill="white" fill-opacity="0.85" stroke="#ccc"/>`+"\n", num(lx), num(ly), 10+18*len(entries))
	for i, e := range entries {
		y := ly + 14 + 18*float64(i)
		e.mark(lx+22, y)
		p(`<text x="%s" y="%s" dominant-baseline="middle">%s</text>`+"\n", num(lx+42), num(y), e.label)
	}
	p("</g>\n")
	p("</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	return nil
}

// axis is a value range widened to round numbers, with its tick values.
type axis struct {
	lo, hi   float64
	ticks    []float64
	decimals int
}

func (a axis) label(v float64) string { return strconv.FormatFloat(v, 'f', a.decimals, 64) }

// niceAxis covers [lo, hi] with about n ticks at a step of 1, 2 or 5 times a
// power of ten; integer axes never step below 1.
func niceAxis(lo, hi float64, n int, integer bool) axis {
	if hi <= lo {
		// A single value: open a window around it.
		pad := math.Max(math.Abs(lo)*0.1, 1)
		if integer {
			hi = lo + pad
		} else {
			lo, hi = lo-pad, hi+pad
		}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if integer {
		step = math.Max(step, 1)
	}
	a := axis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step}
	if a.hi == a.lo {
		a.hi = a.lo + step
	}
	a.decimals = max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	for i := 0; ; i++ {
		t := a.lo + float64(i)*step
		if t > a.hi+step*1e-9 {
			break
		}
		a.ticks = append(a.ticks, t)
	}
	return a
}

// num formats a coordinate with two decimals, enough for a screen.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
