package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Comparison is herald's run beside the baseline's, with herald's figures
// as fractions of the baseline's (1 = the machine's practical limit).
type Comparison struct {
	Herald   *Result   `json:"herald"`
	Baseline *Result   `json:"baseline"`
	Fraction Fractions `json:"fractionOfBaseline"`
}

// Fractions are herald ÷ baseline; 0 when either is missing.
type Fractions struct {
	DeliveriesPerSec float64 `json:"deliveriesPerSec"` // higher is better, 1 = the limit
	// CPUPerMillion is baseline ÷ herald server CPU per million
	// deliveries: the share of herald's CPU the same work needs at the limit.
	CPUPerMillion float64 `json:"cpuPerMillion"`
	LatencyP99    float64 `json:"latencyP99"` // herald p99 ÷ baseline p99 (lower is better)
}

// Compare computes the fractions.
func Compare(herald, baseline *Result) *Comparison {
	c := &Comparison{Herald: herald, Baseline: baseline}
	c.Fraction.DeliveriesPerSec = ratio(herald.DeliveriesPerSec, baseline.DeliveriesPerSec)
	if herald.Server != nil && baseline.Server != nil {
		c.Fraction.CPUPerMillion = ratio(baseline.Server.CPUSecondsPerMillion, herald.Server.CPUSecondsPerMillion)
	}
	c.Fraction.LatencyP99 = ratio(herald.Latency.P99, baseline.Latency.P99)
	return c
}

func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

// WriteJSON writes v (a *Result or *Comparison) as one JSON object.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable writes a human table of one or more runs side by side; with
// a herald run and a baseline run it adds herald's share of the baseline.
func WriteTable(w io.Writer, runs ...*Result) error {
	if len(runs) == 0 {
		return nil
	}
	first := runs[0]
	fmt.Fprintf(w, "herald bench: %s, %d connections, rate %s, batch %d, %d publishers, %gs measured after %gs warm-up\n",
		cmpOr(first.Dialect, "stomp"), first.Conns, first.Rate, first.Batch, first.Publishers, first.DurationSeconds, first.WarmupSeconds)
	if first.Dialect == "" || first.Dialect == "stomp" {
		fmt.Fprintf(w, "events padded to MESSAGE bodies of ~%d bytes (received body/frame: %s)\n\n", first.BodyBytesTarget, join(runs, func(r *Result) string {
			return fmt.Sprintf("%s %.0f/%.0f B", r.Label, r.BodyBytes, r.FrameBytes)
		}))
	} else {
		fmt.Fprintf(w, "events padded as for STOMP bodies of ~%d bytes (received %s messages: %s)\n\n", first.BodyBytesTarget, first.Dialect,
			join(runs, func(r *Result) string { return fmt.Sprintf("%s %.0f B", r.Label, r.FrameBytes) }))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var compare *Comparison
	if len(runs) == 2 && runs[1].Label == "baseline" {
		compare = Compare(runs[0], runs[1])
	}
	head := "\t"
	for _, r := range runs {
		head += r.Label + "\t"
	}
	if compare != nil {
		head += runs[0].Label + "/baseline\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, value func(r *Result) string, fraction float64) {
		line := name + "\t"
		for _, r := range runs {
			line += value(r) + "\t"
		}
		if compare != nil {
			if fraction > 0 {
				line += fmt.Sprintf("%.2f", fraction) + "\t"
			} else {
				line += "\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	server := func(f func(s *ServerStats) string) func(r *Result) string {
		return func(r *Result) string {
			if r.Server == nil {
				return "-"
			}
			return f(r.Server)
		}
	}
	var frac Fractions
	if compare != nil {
		frac = compare.Fraction
	}
	row("deliveries/s", func(r *Result) string { return human(r.DeliveriesPerSec) }, frac.DeliveriesPerSec)
	row("latency p50 ms", func(r *Result) string { return fmt.Sprintf("%.2f", r.Latency.P50) }, 0)
	row("latency p90 ms", func(r *Result) string { return fmt.Sprintf("%.2f", r.Latency.P90) }, 0)
	row("latency p99 ms", func(r *Result) string { return fmt.Sprintf("%.2f", r.Latency.P99) }, frac.LatencyP99)
	row("latency max ms", func(r *Result) string { return fmt.Sprintf("%.2f", r.Latency.Max) }, 0)
	row("events published", func(r *Result) string {
		return fmt.Sprintf("%d (%s/s)", r.Published, human(r.PublishRate))
	}, 0)
	row("publish errors", func(r *Result) string { return fmt.Sprint(r.PublishErrors) }, 0)
	row("deliveries expected", func(r *Result) string { return human(float64(r.Expected)) }, 0)
	row("lost/dup/out-of-order", func(r *Result) string {
		return fmt.Sprintf("%d/%d/%d", r.Lost, r.Duplicates, r.OutOfOrder)
	}, 0)
	row("broken connections", func(r *Result) string { return fmt.Sprint(r.BrokenConns) }, 0)
	row("connect+subscribe s", func(r *Result) string { return fmt.Sprintf("%.1f", r.ConnectSeconds) }, 0)
	row("server RSS/conn", server(func(s *ServerStats) string { return bytesHuman(s.RSSPerConnBytes) }), 0)
	row("server RSS before→after", server(func(s *ServerStats) string {
		return bytesHuman(float64(s.RSSBeforeBytes)) + "→" + bytesHuman(float64(s.RSSAfterBytes))
	}), 0)
	row("server CPU s/1M deliveries", server(func(s *ServerStats) string {
		return fmt.Sprintf("%.3f", s.CPUSecondsPerMillion)
	}), frac.CPUPerMillion)
	if slowRuns(runs) {
		row("slow conns (each B/s)", func(r *Result) string {
			if r.Slow == nil {
				return "-"
			}
			return fmt.Sprintf("%d (%s)", r.Slow.Conns, human(float64(r.Slow.RateBytes)))
		}, 0)
		row("slow: received, behind", func(r *Result) string {
			if r.Slow == nil {
				return "-"
			}
			return fmt.Sprintf("%s, %s", human(float64(r.Slow.Received)), human(float64(r.Slow.Behind)))
		}, 0)
		row("slow: latency p50/p99 ms", func(r *Result) string {
			if r.Slow == nil {
				return "-"
			}
			return fmt.Sprintf("%.0f/%.0f", r.Slow.Latency.P50, r.Slow.Latency.P99)
		}, 0)
	}
	row("server RSS at publish end", server(func(s *ServerStats) string { return bytesHuman(float64(s.RSSEndBytes)) }), 0)
	row("client CPU s/1M deliveries", func(r *Result) string { return fmt.Sprintf("%.3f", r.ClientCPUSecondsPerMillion) }, 0)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range runs {
		for _, problem := range problems(r) {
			fmt.Fprintf(w, "%s: %s\n", r.Label, problem)
		}
	}
	return nil
}

// problems lists what a reader must not miss.
func problems(r *Result) []string {
	var out []string
	switch {
	case r.Lost > 0 && r.DrainEnd == "time limit":
		out = append(out, fmt.Sprintf("MISSING %d deliveries on %d connections when the drain stopped after %.0fs "+
			"with deliveries still arriving: the server was behind (late or lost)", r.Lost, r.ConnsWithLoss, r.DrainSeconds))
	case r.Lost > 0:
		out = append(out, fmt.Sprintf("LOST %d deliveries on %d connections (the drain ended after %.1fs: %s)",
			r.Lost, r.ConnsWithLoss, r.DrainSeconds, r.DrainEnd))
	}
	if r.Duplicates > 0 || r.OutOfOrder > 0 {
		out = append(out, fmt.Sprintf("ORDER: %d duplicate and %d out-of-order message-ids", r.Duplicates, r.OutOfOrder))
	}
	if r.BrokenConns > 0 {
		out = append(out, fmt.Sprintf("%d connections failed during the run; first: %s", r.BrokenConns, r.ConnError))
	}
	if r.PublishErrors > 0 {
		out = append(out, fmt.Sprintf("%d of %d ingest requests failed; first: %s", r.PublishErrors, r.PublishRequests, r.PublishError))
	}
	if r.Extra > 0 {
		out = append(out, fmt.Sprintf("%d deliveries beyond the acknowledged events (failed requests that were stored)", r.Extra))
	}
	if r.Foreign > 0 {
		out = append(out, fmt.Sprintf("%d MESSAGEs from other publishers were ignored", r.Foreign))
	}
	return out
}

func join(runs []*Result, f func(*Result) string) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = f(r)
	}
	return strings.Join(parts, ", ")
}

// human formats a count or rate with k/M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func bytesHuman(v float64) string {
	switch {
	case v >= 1<<30 || v <= -(1<<30):
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20 || v <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10 || v <= -(1<<10):
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func slowRuns(runs []*Result) bool {
	for _, r := range runs {
		if r.Slow != nil {
			return true
		}
	}
	return false
}
