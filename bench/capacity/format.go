package capacity

import (
	"fmt"
	"math"
	"strings"
)

// Report prints the plan's steps grouped by section, then the answer.
func Report(w Workload, m Machine, p Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload: %s connections, %s channels × %s subscribers, %s publishes/s of %s B, history %s, presence %v, join/leave %v, joins/s %s, connects/s %s\n",
		num(w.Connections), num(w.Channels), num(w.SubscribersPerChannel), num(w.PublishesPerSec), num(w.MessageBytes),
		num(w.HistorySize), w.Presence, w.JoinLeave, num(w.JoinsPerSec), num(w.ConnectsPerSec))
	fmt.Fprintf(&b, "machine: nodes of %s cores, %s GiB, %s Gbit/s; Redis shards of %s core, %s GiB, %s Gbit/s; target utilisation %s\n",
		dec(m.NodeCores), dec(m.NodeMemGiB), dec(m.NodeNICGbps), dec(m.RedisCPUCores), dec(m.RedisMemGiB), dec(m.RedisNICGbps), pct(m.TargetUtil))
	section := ""
	for _, s := range p.Steps {
		if s.Section != section {
			section = s.Section
			fmt.Fprintf(&b, "\n%s\n", section)
		}
		fmt.Fprintf(&b, "  %s\n", s.Text)
	}
	fmt.Fprintf(&b, "\nresult: %d Eddy nodes, %d Redis shards, %s Gbit/s to clients, %s Gbit/s out of Redis; bottleneck: %s\n",
		p.Nodes, p.RedisShards, dec(p.NodeOutGbps), dec(p.RedisOutGbps), p.Bottleneck)
	return b.String()
}

// num prints a count with thousands separators: 1,000,000.
func num(v float64) string {
	if v != math.Trunc(v) || math.Abs(v) >= 1e15 {
		return dec(v)
	}
	s := fmt.Sprintf("%d", int64(math.Abs(v)))
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if v < 0 {
		return "-" + string(out)
	}
	return string(out)
}

// dec prints a measured or derived quantity with three significant
// figures (at least), never in exponent form.
func dec(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return num(math.Round(v))
	case a >= 100:
		return trim(fmt.Sprintf("%.1f", v))
	case a >= 1:
		return trim(fmt.Sprintf("%.2f", v))
	default:
		// Three significant figures after the leading zeros.
		return trim(fmt.Sprintf("%.*f", 2-int(math.Floor(math.Log10(a))), v))
	}
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func pct(v float64) string { return trim(fmt.Sprintf("%.1f", v*100)) + "%" }
