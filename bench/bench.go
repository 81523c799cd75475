package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/producer"
	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// Options configure a benchmark run.
type Options struct {
	// Jobs per phase; 50000, or with RateLimit enough for Window plus 3 s.
	Jobs            int
	Concurrency     int           // in flight per consumer process; 512
	Latency         time.Duration // the sandbox's answer time
	Payload         int           // job size in bytes; 400
	DeadLetterRatio float64       // share of jobs the platform refuses (43101)
	// Tracing runs herald's workers with traces on, every job sampled,
	// exported over OTLP/HTTP to a sink in this process that discards
	// them: what tracing costs the worker.
	Tracing bool
	// Subscriptions is the worker's subscription ledger mode: "" (off),
	// observe or enforce. With a DeadLetterRatio the refused jobs'
	// recipients are recorded in the ledger as having rejected the
	// template before the herald phase starts, so enforce skips them.
	Subscriptions string
	Replicas      int // consumer processes per phase; 1
	// Rounds of a bare phase then a herald phase; 3. The result is the
	// round with the median ratio: on a shared machine the speed drifts
	// between phases, and one pair of phases can be off by a tenth.
	Rounds int
	// NoReceipts turns herald's delivery receipts off (events_stream: "").
	NoReceipts bool
	// RateLimit, when positive, gives herald one rate_limits rule of
	// RateLimit jobs/s with RateBurst (default 1, the least herald's config
	// accepts and what its stores take for no burst) for the bench's
	// template, runs the herald phase only, and reports the sent rate from
	// the sandbox's accept times ([RateFigures]).
	RateLimit float64
	RateBurst int
	// Window is the shortest steady window the sent rate is judged over;
	// default 10s, the design's target.
	Window time.Duration
	// NATSServer is the nats-server binary; empty finds or builds one.
	NATSServer string
	// RedisCluster adds a herald phase on a 3-master Redis Cluster (started
	// here too) after the one on a single Redis in each round, so that the
	// two compare in one run; with RateLimit, herald runs on the cluster
	// only.
	RedisCluster bool

	// BaselineCommand and WorkerCommand return the command line (program
	// first) of a bare consumer and of a herald worker with the config
	// file at path.
	BaselineCommand func(BaselineOptions) []string
	WorkerCommand   func(configPath string) []string
	// Env is the children's environment.
	Env []string
	// Progress gets a line now and then; nil discards.
	Progress io.Writer
}

func (o *Options) setDefaults() {
	if o.RateLimit > 0 {
		if o.RateBurst == 0 {
			o.RateBurst = 1
		}
		if o.Window <= 0 {
			o.Window = 10 * time.Second
		}
		if o.Jobs <= 0 {
			o.Jobs = jobsForWindow(o.RateLimit, o.RateBurst, o.Window+2*time.Second)
		}
		o.Rounds = 1 // herald only: there is no ratio to take a median of
	}
	if o.Jobs <= 0 {
		o.Jobs = 50000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 512
	}
	if o.Payload <= 0 {
		o.Payload = 400
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Validate reports options Run cannot use.
func (o *Options) Validate() error {
	var errs []error
	if o.Latency < 0 {
		errs = append(errs, errors.New("latency must not be negative"))
	}
	if o.DeadLetterRatio < 0 || o.DeadLetterRatio >= 1 {
		errs = append(errs, errors.New("dead-letter ratio must be in [0, 1)"))
	}
	switch o.Subscriptions {
	case "", "off", "observe", "enforce":
	default:
		errs = append(errs, fmt.Errorf("subscriptions %q is not off, observe or enforce", o.Subscriptions))
	}
	if o.Payload > job.MaxSize {
		errs = append(errs, fmt.Errorf("payload must be at most %d bytes", job.MaxSize))
	}
	if o.BaselineCommand == nil || o.WorkerCommand == nil {
		errs = append(errs, errors.New("baseline and worker commands are required"))
	}
	switch {
	case o.RateLimit < 0 || math.IsNaN(o.RateLimit) || math.IsInf(o.RateLimit, 0):
		errs = append(errs, errors.New("rate limit must be a positive number of jobs per second"))
	case o.RateLimit > 0:
		if o.DeadLetterRatio > 0 {
			// Refused calls count against the limit but are not recorded
			// as accepted, so the measured rate would be short.
			errs = append(errs, errors.New("a rate limit cannot be combined with dead letters"))
		}
		if o.RateBurst < 1 {
			errs = append(errs, errors.New("the rate burst must be at least 1"))
		}
		if o.Window < time.Second {
			errs = append(errs, errors.New("the rate window must be at least 1s"))
		} else if need := jobsForWindow(o.RateLimit, o.RateBurst, o.Window); o.Jobs < need {
			errs = append(errs, fmt.Errorf("%d jobs at %g/s last less than 1s + the %v window: use at least %d (%d leaves a margin)",
				o.Jobs, o.RateLimit, o.Window, need, jobsForWindow(o.RateLimit, o.RateBurst, o.Window+2*time.Second)))
		}
	}
	return errors.Join(errs...)
}

// Figures are one phase's measurements.
type Figures struct {
	Jobs         int     `json:"jobs"`
	Delivered    int64   `json:"delivered"`
	Seconds      float64 `json:"seconds"`
	JobsPerSec   float64 `json:"jobs_per_sec"`
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP95Ms float64 `json:"latency_p95_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// PeakRSSMiB is the largest VmHWM of the phase's consumer processes.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPUSeconds is their user plus system time, summed.
	CPUSeconds float64 `json:"cpu_seconds"`
	// NATSCPUSeconds, RedisCPUSeconds and SandboxCPUSeconds are the CPU the
	// phase cost nats-server, redis-server and the sandbox (this process)
	// from the consumers' start to the stream being empty: on a small
	// machine they share the cores with the consumers.
	NATSCPUSeconds    float64 `json:"nats_cpu_seconds"`
	RedisCPUSeconds   float64 `json:"redis_cpu_seconds"`
	SandboxCPUSeconds float64 `json:"sandbox_cpu_seconds"`
	// RedisCommands are client-issued Redis calls (herald only; on a
	// Redis Cluster, over all masters), and RedisPerJob those per
	// delivered job.
	RedisCommands int64   `json:"redis_commands,omitempty"`
	RedisPerJob   float64 `json:"redis_commands_per_job,omitempty"`
	// StalledSeconds is the time, between the first and the last send, in
	// gaps of more than StallGap in which the platform accepted nothing:
	// with jobs queued, a consumer that stops pulling. LongestGapMs is the
	// longest gap between two sends.
	StalledSeconds float64 `json:"stalled_seconds"`
	LongestGapMs   float64 `json:"longest_gap_ms"`
	// PlatformCalls are the send calls the platform got: fewer than the
	// jobs when the ledger skips refused recipients.
	PlatformCalls int64 `json:"platform_calls"`
}

// StallGap is the shortest pause between two sends that counts as a stall.
const StallGap = 250 * time.Millisecond

// gaps returns the time in pauses longer than StallGap and the longest
// pause between consecutive times of at, which it sorts.
func gaps(at []time.Time) (stalled, longest time.Duration) {
	slices.SortFunc(at, time.Time.Compare)
	for i := 1; i < len(at); i++ {
		g := at[i].Sub(at[i-1])
		longest = max(longest, g)
		if g > StallGap {
			stalled += g
		}
	}
	return stalled, longest
}

// Params echo the options in the result.
type Params struct {
	Jobs            int     `json:"jobs"`
	Concurrency     int     `json:"concurrency"`
	LatencyMs       float64 `json:"latency_ms"`
	Payload         int     `json:"payload_bytes"`
	DeadLetterRatio float64 `json:"dead_letter_ratio"`
	Replicas        int     `json:"replicas"`
	Rounds          int     `json:"rounds"`
	RedisCluster    bool    `json:"redis_cluster,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemoryMiB   int64  `json:"memory_mib"`
	Go          string `json:"go"`
	NATSServer  string `json:"nats_server"`
	RedisServer string `json:"redis_server"`
}

// Round is one bare phase and the herald phase after it (and, with a
// Redis Cluster, the herald phase on it after that).
type Round struct {
	Ratio  float64 `json:"ratio"`
	Bare   Figures `json:"bare"`
	Herald Figures `json:"herald"`
	// ClusterRatio is HeraldCluster's jobs per second over Bare's.
	ClusterRatio  float64  `json:"cluster_ratio,omitempty"`
	HeraldCluster *Figures `json:"herald_cluster,omitempty"`
}

// Result is a whole run.
type Result struct {
	// Ratio is herald's jobs per second over the bare baseline's in the
	// median round (the lower middle one of an even number); 0 with a rate
	// limit. Bare and Herald are that round's figures.
	Ratio  float64 `json:"ratio"`
	Bare   Figures `json:"bare"`
	Herald Figures `json:"herald"`
	// ClusterRatio and HeraldCluster are the median round's herald phase
	// on a 3-master Redis Cluster, with Options.RedisCluster. In a
	// rate-limit run herald runs on the cluster only, and Herald holds it.
	ClusterRatio  float64  `json:"cluster_ratio,omitempty"`
	HeraldCluster *Figures `json:"herald_cluster,omitempty"`
	// Rounds are all rounds, in the order they ran.
	Rounds  []Round `json:"rounds,omitempty"`
	Params  Params  `json:"params"`
	Machine Machine `json:"machine"`
	// RateLimit is set in a rate-limit run, which has no bare phase (Bare
	// stays zero); Note says why.
	RateLimit *RateFigures `json:"rate_limit,omitempty"`
	Note      string       `json:"note,omitempty"`
}

// noBareNote explains a rate-limit run's missing baseline.
const noBareNote = "herald only: a bare consumer has no rate limit, so a ratio with it would mean nothing"

// Run measures the bare baseline, then herald, against one nats-server,
// one sandbox and (for herald) one redis-server, all started here and all
// stopped before it returns.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &runner{o: o, dir: dir}
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	res := &Result{
		Params: Params{
			Jobs: o.Jobs, Concurrency: o.Concurrency, LatencyMs: float64(o.Latency) / float64(time.Millisecond),
			Payload: o.Payload, DeadLetterRatio: o.DeadLetterRatio, Replicas: o.Replicas, Rounds: o.Rounds,
			RedisCluster: o.RedisCluster,
		},
		Machine: r.machine,
	}
	if o.RateLimit > 0 {
		res.Note = noBareNote
		var at []time.Time
		rd := r.single
		if r.cluster != nil {
			rd = r.cluster
		}
		if res.Herald, at, err = r.phase(ctx, "herald", 1, r.topo.Consumer, rd, r.startHerald(rd)); err != nil {
			return nil, fmt.Errorf("herald: %w", err)
		}
		rf, err := rateFigures(at, o.RateLimit, o.RateBurst, o.Window)
		if err != nil {
			return nil, fmt.Errorf("herald: %w", err)
		}
		res.RateLimit = &rf
		r.logf("herald: %.1f jobs/s over %.1fs (%+.2f%% from %g/s), at most %d in 1s (limit + burst %g)",
			rf.SentPerSec, rf.WindowSeconds, rf.DeviationPct, o.RateLimit, rf.Max1s, rf.Max1sAllowed)
		return res, nil
	}
	// Bare and herald alternate, so a drift in the machine's speed falls
	// on both sides of some round instead of on one side of the only one.
	for i := 1; i <= o.Rounds; i++ {
		var rd Round
		if rd.Bare, _, err = r.phase(ctx, "bare", i, bareDurable, nil, r.startBare); err != nil {
			return nil, fmt.Errorf("bare baseline: %w", err)
		}
		if rd.Herald, _, err = r.phase(ctx, "herald", i, r.topo.Consumer, r.single, r.startHerald(r.single)); err != nil {
			return nil, fmt.Errorf("herald: %w", err)
		}
		if rd.Bare.JobsPerSec > 0 {
			rd.Ratio = rd.Herald.JobsPerSec / rd.Bare.JobsPerSec
		}
		if r.cluster != nil {
			f, _, err := r.phase(ctx, "herald-cluster", i, r.topo.Consumer, r.cluster, r.startHerald(r.cluster))
			if err != nil {
				return nil, fmt.Errorf("herald on the redis cluster: %w", err)
			}
			rd.HeraldCluster = &f
			if rd.Bare.JobsPerSec > 0 {
				rd.ClusterRatio = f.JobsPerSec / rd.Bare.JobsPerSec
			}
		}
		if o.Rounds > 1 {
			r.logf("round %d of %d: ratio %.3f", i, o.Rounds, rd.Ratio)
		}
		res.Rounds = append(res.Rounds, rd)
	}
	med := medianRound(res.Rounds)
	res.Ratio, res.Bare, res.Herald = med.Ratio, med.Bare, med.Herald
	res.ClusterRatio, res.HeraldCluster = med.ClusterRatio, med.HeraldCluster
	return res, nil
}

// medianRound returns the round with the median ratio, the lower middle
// one of an even number.
func medianRound(rounds []Round) Round {
	sorted := slices.Clone(rounds)
	slices.SortStableFunc(sorted, func(a, b Round) int { return cmp.Compare(a.Ratio, b.Ratio) })
	return sorted[(len(sorted)-1)/2]
}

const (
	bareDurable = "bench-bare"
	sandboxApp  = sandbox.DevWeChatAppID
	sandboxKey  = sandbox.DevWeChatSecret
)

type runner struct {
	o       Options
	dir     string
	procs   procs
	machine Machine

	natsServer *child

	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    producer.Topology
	// single is the one redis-server; cluster the Redis Cluster, with
	// Options.RedisCluster. With Subscriptions each has a ledger, which
	// records the refused recipients' rejects before its herald phase.
	single, cluster *redisDeployment
	// traceSink is the URL of the OTLP sink, with Tracing.
	traceSink string
	traceSrv  *http.Server

	sbx        *sandbox.Server
	sbxURL     string
	srv        *http.Server
	firstSend  atomic.Int64 // unix nanos of the phase's first send call
	sendPrefix string
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "bench: "+format+"\n", args...)
}

func (r *runner) close() {
	if r.srv != nil {
		_ = r.srv.Close()
	}
	for _, d := range []*redisDeployment{r.single, r.cluster} {
		if d != nil {
			d.close()
		}
	}
	if r.traceSrv != nil {
		_ = r.traceSrv.Close()
	}
	if r.nc != nil {
		r.nc.Close()
	}
	r.procs.stopAll()
}

func (r *runner) setup(ctx context.Context) error {
	r.machine = machine()
	// nats-server: standalone, file storage in the temporary directory.
	bin, err := natsServerBinary(ctx, r.dir, r.o.NATSServer)
	if err != nil {
		return err
	}
	r.machine.NATSServer = strings.TrimPrefix(version(bin, "--version"), "nats-server: ")
	port, err := freePort()
	if err != nil {
		return err
	}
	ns, err := r.procs.start(r.dir, "nats-server", os.Environ(), bin,
		"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(r.dir, "jetstream"))
	if err != nil {
		return err
	}
	r.natsServer = ns
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitTCP(ctx, ns, addr, 15*time.Second); err != nil {
		return err
	}
	r.natsURL = "nats://" + addr
	r.logf("nats-server %s on %s (%s)", r.machine.NATSServer, r.natsURL, bin)
	if r.nc, err = nats.Connect(r.natsURL, nats.Name("herald bench")); err != nil {
		return fmt.Errorf("connect nats: %w", err)
	}
	if r.js, err = jetstream.New(r.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return err
	}
	r.topo = producer.DefaultTopology
	for _, sc := range r.topo.Streams() {
		if _, err := r.js.CreateStream(ctx, sc); err != nil {
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
	}

	// redis-server, for herald only; persisting nothing.
	if r.single, err = r.startRedis(ctx); err != nil {
		return err
	}
	r.machine.RedisServer = infoField(ctx, r.single.clients[0], "server", "redis_version")
	r.logf("redis-server %s on %s", r.machine.RedisServer, r.single.url)
	if r.o.RedisCluster {
		if r.cluster, err = r.startRedisCluster(ctx, clusterMasters); err != nil {
			return err
		}
		r.logf("redis cluster of %d masters on %s", clusterMasters, r.cluster.url)
	}
	if r.o.Tracing {
		// Spans are exported and dropped: the sink costs this process (the
		// sandbox's), which is measured as such, not the worker.
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ts := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/x-protobuf")
		})}
		go func() { _ = ts.Serve(tl) }()
		r.traceSrv = ts
		r.traceSink = "http://" + tl.Addr().String()
	}
	if r.o.Subscriptions == "observe" || r.o.Subscriptions == "enforce" {
		r.single.openLedger(false)
		if r.cluster != nil {
			r.cluster.openLedger(true)
		}
	}

	// The sandbox runs in this process: it is the same for both phases,
	// this process is not the one measured, and it lets the bench read the
	// accept times directly.
	r.sbx = sandbox.New(sandbox.Options{Latency: r.o.Latency, Record: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.sbxURL = "http://" + l.Addr().String()
	r.sendPrefix = "/cgi-bin/message/subscribe/send"
	r.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == r.sendPrefix && r.firstSend.Load() == 0 {
				r.firstSend.CompareAndSwap(0, time.Now().UnixNano())
			}
			r.sbx.ServeHTTP(w, req)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = r.srv.Serve(l) }()
	r.logf("sandbox on %s, latency %v", r.sbxURL, r.o.Latency)
	return nil
}

// startBare creates the bare consumer and starts its processes.
func (r *runner) startBare(ctx context.Context) ([]*child, func(), error) {
	cc := r.topo.ConsumerConfig()
	cc.Durable, cc.Description = bareDurable, "herald bench bare baseline"
	if _, err := r.js.CreateConsumer(ctx, r.topo.SendStream, cc); err != nil {
		return nil, nil, fmt.Errorf("create consumer: %w", err)
	}
	cleanup := func() {
		// A work-queue stream takes one unfiltered consumer at a time.
		_ = r.js.DeleteConsumer(context.WithoutCancel(ctx), r.topo.SendStream, bareDurable)
	}
	var kids []*child
	for i := range r.o.Replicas {
		argv := r.o.BaselineCommand(BaselineOptions{
			NATSURL: r.natsURL, Stream: r.topo.SendStream, Durable: bareDurable, SandboxURL: r.sbxURL,
			AppID: sandboxApp, AppSecret: sandboxKey, Concurrency: r.o.Concurrency,
		})
		c, err := r.procs.start(r.dir, fmt.Sprintf("bare-%d", i+1), r.o.Env, argv[0], argv[1:]...)
		if err != nil {
			return kids, cleanup, err
		}
		kids = append(kids, c)
	}
	return kids, cleanup, nil
}

// startHerald returns a starter that writes a worker config for rd and
// starts the worker processes.
func (r *runner) startHerald(rd *redisDeployment) starter {
	return func(ctx context.Context) ([]*child, func(), error) { return r.startHeraldOn(ctx, rd) }
}

func (r *runner) startHeraldOn(ctx context.Context, rd *redisDeployment) ([]*child, func(), error) {
	if err := rd.resetStats(ctx); err != nil {
		return nil, nil, err
	}
	// The workers create their durable; the next round's bare phase needs
	// the work-queue stream to have no other.
	cleanup := func() {
		_ = r.js.DeleteConsumer(context.WithoutCancel(ctx), r.topo.SendStream, r.topo.Consumer)
	}
	var kids []*child
	for i := range r.o.Replicas {
		path := filepath.Join(r.dir, fmt.Sprintf("herald-%d.yaml", i+1))
		events, limits := "", ""
		if r.o.NoReceipts {
			events = "\n  events_stream: \"\""
		}
		if r.o.Subscriptions != "" && r.o.Subscriptions != "off" {
			limits = "subscriptions:\n  mode: " + r.o.Subscriptions + "\n"
		}
		if r.o.RateLimit > 0 {
			limits += fmt.Sprintf("rate_limits:\n  - {platform: %s, app: %s, template_id: %s, per_second: %g, burst: %d}\n",
				job.WeChat, job.DefaultApp, benchTemplate, r.o.RateLimit, r.o.RateBurst)
		}
		cfg := fmt.Sprintf(`nats:
  url: %s%s
redis:
  url: %s
worker:
  instance: bench-%d
  concurrency: %d
  http_addr: 127.0.0.1:0
apps:
  default:
    wechat:
      app_id: %s
      app_secret: %s
      base_url: %s
%s`, r.natsURL, events, rd.url, i+1, r.o.Concurrency, sandboxApp, sandboxKey, r.sbxURL, limits)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return kids, cleanup, err
		}
		argv := r.o.WorkerCommand(path)
		env := r.o.Env
		if r.traceSink != "" {
			env = append(slices.Clip(env), "OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
				"OTEL_EXPORTER_OTLP_ENDPOINT="+r.traceSink, "OTEL_TRACES_SAMPLER=always_on")
		}
		c, err := r.procs.start(r.dir, fmt.Sprintf("herald-%d", i+1), env, argv[0], argv[1:]...)
		if err != nil {
			return kids, cleanup, err
		}
		kids = append(kids, c)
	}
	return kids, cleanup, nil
}

// starter starts a phase's consumer processes and names their durable.
type starter func(ctx context.Context) ([]*child, func(), error)

// phase publishes the jobs, starts the consumers and waits until the stream
// is empty. It also returns when the sandbox accepted each send.
func (r *runner) phase(ctx context.Context, name string, round int, durable string, rd *redisDeployment,
	start starter) (Figures, []time.Time, error) {
	f := Figures{Jobs: r.o.Jobs}
	stream, err := r.js.Stream(ctx, r.topo.SendStream)
	if err != nil {
		return f, nil, err
	}
	if err := stream.Purge(ctx); err != nil {
		return f, nil, fmt.Errorf("purge: %w", err)
	}
	// Job ids are new in every round: herald's dedup would take a
	// repeated id for a duplicate.
	label := name
	if r.o.Rounds > 1 {
		label = fmt.Sprintf("%s %d/%d", name, round, r.o.Rounds)
	}
	if err := r.publish(ctx, label, name+"-"+strconv.Itoa(round), rd); err != nil {
		return f, nil, err
	}
	// Each phase starts with no records: the last phase's would make this
	// process's heap, and its GC work on the shared cores, larger.
	r.sbx.TakeAccepted()
	statsBefore := r.sbx.Stats()[job.WeChat]
	r.firstSend.Store(0)

	r.logf("%s: starting %d consumer process(es), %d in flight each", label, r.o.Replicas, r.o.Concurrency)
	serversBefore := r.serverCPU(rd)
	kids, cleanup, err := start(ctx)
	if cleanup != nil {
		defer cleanup()
	}
	defer func() {
		for _, c := range kids {
			_ = c.stop(30 * time.Second)
		}
	}()
	if err != nil {
		return f, nil, err
	}

	peak := make([]int64, len(kids))
	sample := func() {
		for i, c := range kids {
			if u, err := readUsage(c.pid()); err == nil {
				peak[i] = max(peak[i], u.peakKiB, u.rssKiB)
			}
		}
	}
	deadline := time.Now().Add(2*time.Minute + time.Duration(r.o.Jobs)*5*time.Millisecond)
	if r.o.RateLimit > 0 {
		deadline = deadline.Add(time.Duration(float64(r.o.Jobs) / r.o.RateLimit * float64(time.Second)))
	}
	lastLog, lastSample := time.Now(), time.Time{}
	var end time.Time
	for {
		// Done when the consumer has nothing left to deliver and nothing
		// unacknowledged (dead-lettered jobs are termed, not acked, and
		// stay in the stream).
		left := int64(r.o.Jobs)
		info, err := r.js.Consumer(ctx, r.topo.SendStream, durable)
		switch {
		case err == nil:
			ci := info.CachedInfo()
			left = int64(ci.NumPending) + int64(ci.NumAckPending)
		case !errors.Is(err, jetstream.ErrConsumerNotFound): // the worker creates it
			return f, nil, fmt.Errorf("consumer info: %w", err)
		}
		now := time.Now()
		if left == 0 {
			end = now
			break
		}
		for _, c := range kids {
			if c.exited() {
				return f, nil, fmt.Errorf("%s exited early: %v\n%s", c.name, c.err, c.tail())
			}
		}
		if now.Sub(lastSample) >= 50*time.Millisecond {
			sample()
			lastSample = now
		}
		if now.Sub(lastLog) >= time.Second {
			r.logf("%s: %d of %d jobs left", label, left, r.o.Jobs)
			lastLog = now
		}
		if now.After(deadline) {
			return f, nil, fmt.Errorf("%d jobs still queued at the deadline", left)
		}
		// Polling costs nats-server and this process CPU the consumers
		// share: poll slowly while much is left, finely near the end.
		poll := 50 * time.Millisecond
		if left < int64(r.o.Jobs)/20+100 {
			poll = 2 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return f, nil, ctx.Err()
		case <-time.After(poll):
		}
	}
	sample()
	for _, c := range kids {
		if u, err := readUsage(c.pid()); err == nil {
			f.CPUSeconds += u.cpu
		}
	}
	servers := r.serverCPU(rd)
	f.NATSCPUSeconds = servers[0] - serversBefore[0]
	f.RedisCPUSeconds = servers[1] - serversBefore[1]
	f.SandboxCPUSeconds = servers[2] - serversBefore[2]
	for _, p := range peak {
		f.PeakRSSMiB = max(f.PeakRSSMiB, float64(p)/1024)
	}
	first := r.firstSend.Load()
	if first == 0 {
		return f, nil, errors.New("the sandbox saw no send")
	}
	f.Seconds = end.Sub(time.Unix(0, first)).Seconds()
	f.JobsPerSec = float64(r.o.Jobs) / f.Seconds
	f.Delivered = r.sbx.Stats()[job.WeChat].Accepted - statsBefore.Accepted
	f.PlatformCalls = r.sbx.Stats()[job.WeChat].SendCalls - statsBefore.SendCalls

	accepted := r.sbx.TakeAccepted()
	at := make([]time.Time, len(accepted))
	lat := make([]float64, 0, len(accepted))
	for i, m := range accepted {
		at[i] = m.At
		if pub, ok := publishedAt(m.ToUser); ok {
			lat = append(lat, float64(m.At.Sub(pub))/float64(time.Millisecond))
		}
	}
	slices.Sort(lat)
	stalled, longest := gaps(at)
	f.StalledSeconds, f.LongestGapMs = stalled.Seconds(), float64(longest)/float64(time.Millisecond)
	f.LatencyP50Ms, f.LatencyP95Ms, f.LatencyP99Ms = quantile(lat, .50), quantile(lat, .95), quantile(lat, .99)

	if rd != nil {
		f.RedisCommands, err = rd.calls(ctx)
		if err != nil {
			return f, nil, err
		}
		if f.Delivered > 0 {
			f.RedisPerJob = float64(f.RedisCommands) / float64(f.Delivered)
		}
	}
	r.logf("%s: %d jobs in %.2fs: %.0f jobs/s, p50 %.0f ms, peak RSS %.1f MiB, CPU %.2fs, stalled %.2fs",
		label, r.o.Jobs, f.Seconds, f.JobsPerSec, f.LatencyP50Ms, f.PeakRSSMiB, f.CPUSeconds, f.StalledSeconds)
	return f, at, nil
}

// serverCPU returns the CPU seconds nats-server, rd's redis-servers
// (the single one for a bare phase) and this process have used so far.
func (r *runner) serverCPU(rd *redisDeployment) [3]float64 {
	if rd == nil {
		rd = r.single
	}
	var cpu [3]float64
	for i, pid := range []int{r.natsServer.pid(), os.Getpid()} {
		if u, err := readUsage(pid); err == nil {
			cpu[2*i] = u.cpu
		}
	}
	cpu[1] = rd.cpu()
	return cpu
}

// publish sends the phase's jobs, their ids starting with tag,
// asynchronously, at most 4096 unacknowledged.
func (r *runner) publish(ctx context.Context, phase, tag string, rd *redisDeployment) error {
	r.logf("%s: publishing %d jobs of %d bytes", phase, r.o.Jobs, r.o.Payload)
	started := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, r.o.Jobs)
	subject := job.SendSubject(job.WeChat)
	for i := range r.o.Jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		refuse := refused(i, r.o.DeadLetterRatio)
		data, err := makeJob(tag, i, time.Now(), refuse, r.o.Payload)
		if err != nil {
			return err
		}
		if refuse && rd != nil && rd.ledger != nil {
			if err := r.reject(ctx, rd.ledger, data); err != nil {
				return err
			}
		}
		msg := nats.NewMsg(subject)
		msg.Data = data
		msg.Header.Set(job.HeaderMsgID, tag+"-"+strconv.Itoa(i))
		fut, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, fut)
	}
	select {
	case <-r.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return errors.New("publish acks not received within 2m")
	}
	for _, fut := range futures {
		select {
		case err := <-fut.Err():
			return fmt.Errorf("publish: %w", err)
		default:
		}
	}
	r.logf("%s: published in %.2fs", phase, time.Since(started).Seconds())
	return nil
}

// reject records in the ledger that the recipient of the job data has
// rejected its template, as a WeChat popup event would.
func (r *runner) reject(ctx context.Context, ledger *redisstore.Store, data []byte) error {
	var j job.Job
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	k := worker.SubscriptionKey{Platform: j.Platform, App: j.App, User: j.ToUser, Template: j.TemplateID}
	if _, err := ledger.Apply(ctx, k, worker.LedgerEvent{ID: "bench-" + j.ID, At: time.Now().Add(-time.Minute)}); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// scriptCommands are the commands herald's Lua scripts run. Redis counts
// commands run inside a script in INFO commandstats like client calls, so
// they are left out: what remains is what clients sent (EVALSHA, SCRIPT
// LOAD, HELLO, PING, DEL, ...). The token store's own GET, SET and HMGET
// calls (a few per process) are left out with them.
var scriptCommands = map[string]bool{
	"get": true, "set": true, "hdel": true, "hget": true, "hincrby": true, "hmget": true,
	"hset": true, "pexpire": true, "pexpireat": true, "pttl": true, "time": true,
	"lpush": true, "ltrim": true, "zadd": true, "zscore": true, "zremrangebyscore": true,
}

// redisCalls sums the client-issued calls in INFO commandstats, except the
// bench's own (config resetstat, info).
func redisCalls(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info: %w", err)
	}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok || name == "info" || strings.HasPrefix(name, "config") || scriptCommands[name] {
			continue
		}
		n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest+",", ',')], 10, 64)
		total += n
	}
	return total, nil
}

func infoField(ctx context.Context, rdb *redis.Client, section, key string) string {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return "unknown"
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kib, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemoryMiB = kib / 1024
				}
			}
		}
	}
	return m
}
