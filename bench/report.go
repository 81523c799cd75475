package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints res for people.
func WriteTable(w io.Writer, res *Result) error {
	p := res.Params
	fmt.Fprintf(w, "herald bench: %d jobs of %d B, %d in flight x %d process(es), platform latency %gms, %g%% dead letters, %d round(s)\n",
		p.Jobs, p.Payload, p.Concurrency, p.Replicas, p.LatencyMs, p.DeadLetterRatio*100, p.Rounds)
	if rf := res.RateLimit; rf != nil {
		fmt.Fprintf(w, "rate limit: %g jobs/s, burst %d, one rule for the bench's template; %s\n",
			rf.LimitPerSec, rf.Burst, res.Note)
	}
	m := res.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d MiB, %s, nats-server %s, redis %s\n\n",
		m.CPUs, m.CPUModel, m.MemoryMiB, m.Go, m.NATSServer, m.RedisServer)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tjobs/s\tp50 ms\tp95 ms\tp99 ms\tpeak RSS MiB\tCPU s\tRedis cmds/job\t")
	row := func(name string, f Figures, redis string) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%s\t\n", name, f.JobsPerSec,
			f.LatencyP50Ms, f.LatencyP95Ms, f.LatencyP99Ms, f.PeakRSSMiB, f.CPUSeconds, redis)
	}
	if res.RateLimit == nil {
		row("bare", res.Bare, "-")
	}
	herald := "herald"
	if res.RateLimit != nil && res.Params.RedisCluster {
		herald = "herald, redis cluster"
	}
	row(herald, res.Herald, fmt.Sprintf("%.2f", res.Herald.RedisPerJob))
	if c := res.HeraldCluster; c != nil {
		row("herald, redis cluster", *c, fmt.Sprintf("%.2f", c.RedisPerJob))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	perJob := func(f Figures) string {
		us := func(s float64) float64 { return s / float64(max(f.Jobs, 1)) * 1e6 }
		return fmt.Sprintf("consumer %.0f, nats-server %.0f, redis %.0f, sandbox %.0f",
			us(f.CPUSeconds), us(f.NATSCPUSeconds), us(f.RedisCPUSeconds), us(f.SandboxCPUSeconds))
	}
	if rf := res.RateLimit; rf != nil {
		fmt.Fprintf(w, "\nCPU µs per job, herald: %s\n", perJob(res.Herald))
		yes := func(ok bool) string {
			if ok {
				return "yes"
			}
			return "NO"
		}
		fmt.Fprintf(w, "\nsent rate, first send + 1s to the last send (%.1fs): %.1f jobs/s, %+.2f%% from %g (within 5%%: %s)\n",
			rf.WindowSeconds, rf.SentPerSec, rf.DeviationPct, rf.LimitPerSec, yes(rf.WithinRate))
		_, err := fmt.Fprintf(w, "most sends in any 1s (sliding) window: %d, from %.2fs after the first send; limit + burst %g (within: %s); "+
			"from 1s after the first send on: %d; in one clock second: %d\n",
			rf.Max1s, rf.Max1sAtSeconds, rf.Max1sAllowed, yes(rf.WithinBurst), rf.Max1sSteady, rf.Max1sAligned)
		return err
	}
	if len(res.Rounds) > 1 {
		fmt.Fprintln(w)
		for i, rd := range res.Rounds {
			fmt.Fprintf(w, "round %d: bare %.0f jobs/s, herald %.0f jobs/s, ratio %.3f",
				i+1, rd.Bare.JobsPerSec, rd.Herald.JobsPerSec, rd.Ratio)
			if c := rd.HeraldCluster; c != nil {
				fmt.Fprintf(w, "; on the redis cluster %.0f jobs/s, ratio %.3f", c.JobsPerSec, rd.ClusterRatio)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "figures above and below: the round with the median ratio")
	}
	fmt.Fprintf(w, "\nCPU µs per job, bare:   %s\n", perJob(res.Bare))
	fmt.Fprintf(w, "CPU µs per job, herald: %s\n", perJob(res.Herald))
	if c := res.HeraldCluster; c != nil {
		fmt.Fprintf(w, "CPU µs per job, herald on the redis cluster (redis: all %d masters): %s\n", clusterMasters, perJob(*c))
	}
	_, err := fmt.Fprintf(w, "\nratio herald/bare: %.3f\n", res.Ratio)
	if c := res.HeraldCluster; c != nil && err == nil {
		_, err = fmt.Fprintf(w, "ratio herald on the redis cluster/bare: %.3f; cluster/single redis: %.3f\n",
			res.ClusterRatio, c.JobsPerSec/max(res.Herald.JobsPerSec, 1))
	}
	return err
}
