package main

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/bench"
)

func init() { commands = append(commands, newBenchCmd) }

func newBenchCmd(e *env) *cobra.Command {
	var o bench.Options
	var asJSON, baseline bool
	var pprofAddr string
	var bo bench.BaselineOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure herald's worker against a bare JetStream consumer",
		Long: `Measure, in one run, a bare nats.go pull consumer that makes the same WeChat send
call and acks (no dedup, limits or dead letters), then herald's worker, each as a
child process, against the same standalone nats-server (started here on a free
loopback port with file storage in a temporary directory), the same sandbox
platform API (served in this process) and, for herald, a redis-server started
here. Each phase publishes its jobs first, then starts its consumer and waits
until the stream is empty. Bare and herald phases alternate for --rounds rounds;
the round with the median herald/bare ratio is reported (with --json every round
is listed too), since a shared machine's speed drifts between phases.

Reported per phase: jobs/s (jobs over the time from the first send call to the
stream being empty), p50/p95/p99 of publish-to-accepted latency, the consumer's
peak resident set and CPU time, and for herald the Redis commands per delivered
job. Needs nats-server (or Go to build it) and redis-server on PATH. See
docs/performance.md.

With --rate-limit R the worker config gets one rate_limits rule of R jobs/s
(burst --rate-burst) for the bench's template, and only the herald phase runs
(--replicas workers sharing the limit through Redis): a bare consumer has no
limit, so a ratio with it would mean nothing. From the times the sandbox
accepted the sends it reports the sent rate over the steady window (the first
send + 1s to the last send, which must last at least --window), its deviation
from R in %, and the most sends in any sliding 1-second window against R + burst.
The design's target: within 5% over 10s, no second above R + burst.

With --redis-cluster the bench also starts a 3-master Redis Cluster (redis-server
children in cluster mode, joined here) and each round runs a third phase, herald
on the cluster, after the one on the single Redis: both figures and their ratios
come from the same run. With --rate-limit, herald runs on the cluster only.`,
		Example: `  herald bench
  herald bench --latency 100ms --concurrency 2048 --json
  herald bench --dead-letter-ratio 0.1
  herald bench --rate-limit 500 --replicas 3 --jobs 7000
  herald bench --jobs 30000 --redis-cluster`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if baseline {
				if pprofAddr != "" {
					addr, err := pprofListenAddr(pprofAddr, false)
					if err != nil {
						return err
					}
					_, stop, err := servePprof(addr)
					if err != nil {
						return err
					}
					defer stop()
				}
				return bench.RunBaseline(cmd.Context(), bo)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Env = childEnv(e.environ)
			o.Progress = e.stderr
			o.BaselineCommand = func(b bench.BaselineOptions) []string {
				argv := []string{exe, "bench", "--baseline-consumer", "--nats", b.NATSURL, "--stream", b.Stream,
					"--durable", b.Durable, "--sandbox", b.SandboxURL, "--app-id", b.AppID, "--app-secret", b.AppSecret,
					"--concurrency", strconv.Itoa(b.Concurrency)}
				if pprofAddr != "" {
					argv = append(argv, "--pprof", pprofAddr)
				}
				return argv
			}
			o.WorkerCommand = func(path string) []string {
				argv := []string{exe, "worker", "--config", path, "--log-level", "warn"}
				if pprofAddr != "" {
					argv = append(argv, "--pprof", pprofAddr)
				}
				return argv
			}
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				return enc.Encode(res)
			}
			return bench.WriteTable(e.stdout, res)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Jobs, "jobs", 0, "jobs per phase (default 50000; with --rate-limit, enough for 1s + --window + 2s)")
	fl.IntVar(&o.Concurrency, "concurrency", 512, "jobs in flight per consumer process")
	fl.DurationVar(&o.Latency, "latency", 0, "time the sandbox takes to answer a send, e.g. 100ms")
	fl.IntVar(&o.Payload, "payload", 400, "job size in bytes")
	fl.Float64Var(&o.DeadLetterRatio, "dead-letter-ratio", 0, "share of jobs the platform refuses (43101), dead-lettered by herald")
	fl.IntVar(&o.Replicas, "replicas", 1, "consumer processes per phase (worker replicas)")
	fl.IntVar(&o.Rounds, "rounds", 3, "rounds of a bare then a herald phase; the round with the median ratio is reported")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object")
	fl.BoolVar(&o.NoReceipts, "no-receipts", false, "run herald without delivery receipts (events_stream: \"\")")
	fl.BoolVar(&o.Tracing, "tracing", false, "run herald with OpenTelemetry traces on, every job sampled, exported to a sink in the bench process")
	fl.StringVar(&o.Subscriptions, "subscriptions", "", "the worker's subscription ledger mode: observe or enforce (default off); with --dead-letter-ratio the refused recipients are recorded as rejected first")
	fl.Float64Var(&o.RateLimit, "rate-limit", 0, "limit the bench's template to this many jobs/s and measure the sent rate (herald only)")
	fl.IntVar(&o.RateBurst, "rate-burst", 1, "with --rate-limit: the rule's burst (herald's config has no default; 1 is its minimum)")
	fl.DurationVar(&o.Window, "window", 10*time.Second, "with --rate-limit: the shortest steady window the rate is judged over")
	fl.StringVar(&o.NATSServer, "nats-server", "", "nats-server binary (default: v2.10+ on PATH, else built from the module cache)")
	fl.BoolVar(&o.RedisCluster, "redis-cluster", false, "also run herald on a 3-master Redis Cluster, after the single Redis in each round")

	// The bare consumer is this binary too, run by the bench as a child.
	fl.BoolVar(&baseline, "baseline-consumer", false, "run the bare baseline consumer")
	fl.StringVar(&bo.NATSURL, "nats", "", "baseline: NATS URL")
	fl.StringVar(&bo.Stream, "stream", "NOTIFY_SEND", "baseline: stream")
	fl.StringVar(&bo.Durable, "durable", "", "baseline: durable consumer")
	fl.StringVar(&bo.SandboxURL, "sandbox", "", "baseline: WeChat base URL")
	fl.StringVar(&bo.AppID, "app-id", "", "baseline: WeChat appid")
	fl.StringVar(&bo.AppSecret, "app-secret", "", "baseline: WeChat app secret")
	// Each phase's consumer serves its runtime profiles here (one phase
	// runs at a time), so both sides can be profiled under the same load.
	fl.StringVar(&pprofAddr, "pprof", "", "serve the consumers' net/http/pprof on this address")
	for _, name := range []string{"pprof", "baseline-consumer", "nats", "stream", "durable", "sandbox", "app-id", "app-secret"} {
		_ = fl.MarkHidden(name)
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if o.RateLimit == 0 && (fl.Changed("rate-burst") || fl.Changed("window")) {
			return errors.New("--rate-burst and --window need --rate-limit")
		}
		if o.RateLimit > 0 && fl.Changed("rounds") {
			return errors.New("--rounds does not apply to --rate-limit, which runs herald once")
		}
		if o.Rounds < 1 {
			return errors.New("--rounds must be at least 1")
		}
		if o.RateBurst < 1 {
			return errors.New("--rate-burst must be at least 1")
		}
		if baseline {
			bo.Concurrency = o.Concurrency
			if bo.NATSURL == "" || bo.Durable == "" || bo.SandboxURL == "" {
				return errors.New("--baseline-consumer needs --nats, --durable and --sandbox")
			}
		}
		return nil
	}
	return cmd
}

// childEnv is the environment of the bench's children: this one without
// HERALD_ variables, so the generated worker config is the whole config.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "HERALD_") {
			out = append(out, kv)
		}
	}
	return out
}
