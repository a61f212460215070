package console

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// chartSeries are the outcomes a chart stacks, bottom up, with their
// colours (each has at least 3:1 contrast against the white page, WCAG's
// rule for graphics) and the legend's words. The rest count as other.
var chartSeries = []struct{ outcome, colour, label string }{
	{ledger.OutcomeIssued, "#1a7f37", "issued"},
	{ledger.OutcomeDenied, "#b42318", "denied"},
	{ledger.OutcomeFailed, "#9a6700", "failed"},
	{"", "#57606a", "other"},
}

const (
	chartWidth  = 240
	chartHeight = 48
	barWidth    = chartWidth / ledger.OutcomeHours
)

// chart draws 24 hours of a mapping's outcomes as a small stacked bar chart:
// an inline SVG of rectangles (presentation attributes only, no style
// attribute and no script, which the CSP would refuse), with a title and a
// text summary for screen readers. Everything in it is numbers and fixed
// words; nothing comes from a claim.
func chart(id string, h *ledger.HourlyOutcomes) template.HTML {
	totals := map[string]int{}
	peak := 0
	hours := make([]map[string]int, ledger.OutcomeHours)
	if h != nil {
		hours = h.Counts
	}
	for _, c := range hours {
		sum := 0
		for o, n := range c {
			sum += n
			totals[seriesOf(o)] += n
		}
		peak = max(peak, sum)
	}
	var summary []string
	for _, s := range chartSeries {
		summary = append(summary, fmt.Sprintf("%d %s", totals[s.label], s.label))
	}
	desc := "Last 24 hours: " + strings.Join(summary, ", ") + fmt.Sprintf("; busiest hour %d.", peak)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t">`,
		chartWidth, chartHeight+1, chartWidth, chartHeight+1, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title>`, id, template.HTMLEscapeString(desc))
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#57606a" stroke-width="1"/>`, chartHeight, chartWidth, chartHeight)
	for i, c := range hours {
		y := chartHeight
		for _, s := range chartSeries {
			n := 0
			for o, k := range c {
				if seriesOf(o) == s.label {
					n += k
				}
			}
			if n == 0 || peak == 0 {
				continue
			}
			hgt := max(1, n*chartHeight/peak)
			y -= hgt
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, i*barWidth+1, y, barWidth-2, hgt, s.colour)
		}
	}
	b.WriteString(`</svg>`)
	b.WriteString(`<span class="chart-text">` + template.HTMLEscapeString(desc) + `</span>`)
	return template.HTML(b.String()) // #nosec G203 -- numbers and escaped fixed words only
}

func seriesOf(outcome string) string {
	for _, s := range chartSeries[:3] {
		if s.outcome == outcome {
			return s.label
		}
	}
	return "other"
}
