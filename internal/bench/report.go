package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints a report for people.
func (rep *Report) WriteTable(w io.Writer) error {
	s := rep.Settings
	fmt.Fprintf(w, "sluice bench: %s", s.Store)
	if s.Profile != "" {
		fmt.Fprintf(w, ", --profile %s", s.Profile)
	}
	fmt.Fprintf(w, "\n  %s events, %d per request, %d connections, %d subscription(s), %d partitions, %gs per phase\n\n",
		size(int64(s.EventSize)), s.Batch, s.Connections, s.Subscriptions, s.Partitions, s.DurationSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	row("FIGURE", "VALUE", "AGAINST")
	b := rep.Baseline
	if b.RequestsPerSec > 0 {
		row("baseline (no-op handler)", fmt.Sprintf("%s requests/s", num(b.RequestsPerSec)), b.Handler)
	} else {
		row("baseline (no-op handler)", "-", b.Handler)
	}
	p := rep.Publish
	ratio := "-"
	if p.RatioToBaseline > 0 {
		ratio = fmt.Sprintf("%.2f× the baseline's requests/s", p.RatioToBaseline)
	}
	row("publish", fmt.Sprintf("%s events/s (%s requests/s)", num(p.EventsPerSec), num(p.RequestsPerSec)), ratio)
	row("  ack latency", lat(p.Ack, true), "")
	if p.Errors > 0 {
		row("  failed requests", fmt.Sprintf("%d of %d", p.Errors, p.Requests), p.FirstError)
	}
	d := rep.Delivery
	dnote := fmt.Sprintf("%.2f× publish × subscriptions", d.RatioToPublish)
	if d.TimedOut {
		dnote = fmt.Sprintf("TIMED OUT: %d of %d delivered", d.Delivered, d.Expected)
	}
	row("delivered at full speed", fmt.Sprintf("%s events/s, %d duplicates", num(d.EventsPerSec), d.Duplicates), dnote)
	if st := rep.Steady; st != nil {
		note := ""
		if st.AchievedRate < 0.95*float64(st.Rate) {
			note = fmt.Sprintf("only %.0f/s achieved: the server did not keep up", st.AchievedRate)
		}
		if st.TimedOut {
			note = fmt.Sprintf("TIMED OUT: %d of %d delivered", st.Delivered, st.Events*int64(s.Subscriptions))
		}
		row(fmt.Sprintf("publish→delivery at %d/s", st.Rate), lat(st.ToDelivery, false), note)
		row(fmt.Sprintf("  ack latency at %d/s", st.Rate), lat(st.Ack, true), "")
	}
	reqRow := func(name string, r Requests) {
		row(name, fmt.Sprintf("%s per 1M events", num(r.PerMillion)), fmt.Sprintf("$%.4f per 1M at S3 prices; %s", r.CostPerMillionUSD, byOp(r)))
	}
	reqRow("store requests, full speed", d.Requests)
	if st := rep.Steady; st != nil {
		reqRow(fmt.Sprintf("store requests at %d/s", st.Rate), st.Requests)
	}
	if id := rep.Idle; id != nil {
		var parts []string
		for _, op := range sortedOps(id.ByOp) {
			parts = append(parts, fmt.Sprintf("%s %.2f", op, id.ByOp[op]))
		}
		row(fmt.Sprintf("idle, %d subscription(s)", id.Subscriptions), fmt.Sprintf("%.2f requests/s", id.PerSecond), strings.Join(parts, ", "))
	}
	if pr := rep.Process; pr != nil {
		row("server process", fmt.Sprintf("peak RSS %s, CPU %.1f s", size(pr.PeakRSSBytes), pr.CPUSeconds), fmt.Sprintf("pid %d", pr.PID))
	}
	return tw.Flush()
}

func byOp(r Requests) string {
	var parts []string
	for _, op := range sortedOps(r.ByOpPerMillion) {
		parts = append(parts, fmt.Sprintf("%s %s", op, num(r.ByOpPerMillion[op])))
	}
	if r.NotFound > 0 {
		parts = append(parts, fmt.Sprintf("(%d not found)", r.NotFound))
	}
	if r.ConditionalFailures > 0 {
		parts = append(parts, fmt.Sprintf("(%d conditional failures)", r.ConditionalFailures))
	}
	return strings.Join(parts, ", ")
}

func lat(l Latency, withP90 bool) string {
	if l.Count == 0 {
		return "-"
	}
	if withP90 {
		return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s ms", msf(l.P50), msf(l.P90), msf(l.P99), msf(l.Max))
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s ms", msf(l.P50), msf(l.P99), msf(l.Max))
}

func msf(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// num formats a rate or count with thousands separators.
func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
