package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/worker/redisstore"
)

// clusterMasters is how many masters the bench's Redis Cluster has.
const clusterMasters = 3

// redisDeployment is a Redis a herald phase runs on: one server, or the
// masters of a Redis Cluster. Its figures (commands, CPU) are the sums
// over its servers.
type redisDeployment struct {
	url     string // as the worker's redis.url
	servers []*child
	clients []*redis.Client // one per server, for the bench's own calls
	// ledger is a store on it, with Options.Subscriptions, through which
	// the bench records the refused recipients' rejects; its client is
	// ledgerRDB.
	ledger    *redisstore.Store
	ledgerRDB redis.UniversalClient
}

func (d *redisDeployment) close() {
	if d.ledger != nil {
		d.ledger.Close()
		_ = d.ledgerRDB.Close()
	}
	for _, c := range d.clients {
		_ = c.Close()
	}
}

// openLedger opens d's ledger store.
func (d *redisDeployment) openLedger(cluster bool) {
	if cluster {
		addrs := make([]string, len(d.clients))
		for i, c := range d.clients {
			addrs[i] = c.Options().Addr
		}
		d.ledgerRDB = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	} else {
		d.ledgerRDB = redis.NewClient(&redis.Options{Addr: d.clients[0].Options().Addr})
	}
	d.ledger = redisstore.New(d.ledgerRDB, redisstore.Config{})
}

// resetStats zeroes the servers' command counts.
func (d *redisDeployment) resetStats(ctx context.Context) error {
	for _, c := range d.clients {
		if err := c.ConfigResetStat(ctx).Err(); err != nil {
			return fmt.Errorf("redis config resetstat: %w", err)
		}
	}
	return nil
}

// calls sums the client-issued calls of every server (see redisCalls).
func (d *redisDeployment) calls(ctx context.Context) (int64, error) {
	var total int64
	for _, c := range d.clients {
		n, err := redisCalls(ctx, c)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// cpu is the CPU seconds the servers have used so far.
func (d *redisDeployment) cpu() float64 {
	var sum float64
	for _, s := range d.servers {
		if u, err := readUsage(s.pid()); err == nil {
			sum += u.cpu
		}
	}
	return sum
}

// startRedisServer starts one redis-server child on a free port, in a
// directory of its own, persisting nothing, and waits until it listens.
func (r *runner) startRedisServer(ctx context.Context, label string, args ...string) (*child, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(r.dir, label)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	argv := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir}, args...)
	c, err := r.procs.start(r.dir, label, os.Environ(), "redis-server", argv...)
	if err != nil {
		return nil, "", fmt.Errorf("%w (install redis-server)", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitTCP(ctx, c, addr, 15*time.Second); err != nil {
		return nil, "", err
	}
	return c, addr, nil
}

// startRedis starts the single redis-server herald runs on by default.
func (r *runner) startRedis(ctx context.Context) (*redisDeployment, error) {
	c, addr, err := r.startRedisServer(ctx, "redis-server")
	if err != nil {
		return nil, err
	}
	return &redisDeployment{
		url:     "redis://" + addr + "/0",
		servers: []*child{c},
		clients: []*redis.Client{redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})},
	}, nil
}

// startRedisCluster starts a Redis Cluster of masters redis-server
// children with no replicas: each started in cluster mode, given a config
// epoch of its own, introduced to the first (CLUSTER MEET) and an equal
// share of the slots (CLUSTER ADDSLOTSRANGE), as redis-cli --cluster
// create would; it returns once every node reports cluster_state:ok and
// knows every other.
func (r *runner) startRedisCluster(ctx context.Context, masters int) (*redisDeployment, error) {
	d := &redisDeployment{}
	var addrs []string
	for i := range masters {
		c, addr, err := r.startRedisServer(ctx, fmt.Sprintf("redis-cluster-%d", i+1),
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		if err != nil {
			d.close()
			return nil, err
		}
		d.servers = append(d.servers, c)
		d.clients = append(d.clients, redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1}))
		addrs = append(addrs, addr)
	}
	do := func(i int, args ...any) error {
		if err := d.clients[i].Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("redis cluster node %s %v: %w", addrs[i], args, err)
		}
		return nil
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	for i := range masters {
		first, last := i*16384/masters, (i+1)*16384/masters-1
		err := do(i, "CLUSTER", "SET-CONFIG-EPOCH", i+1)
		if err == nil && i > 0 {
			err = do(i, "CLUSTER", "MEET", host, port)
		}
		if err == nil {
			err = do(i, "CLUSTER", "ADDSLOTSRANGE", first, last)
		}
		if err != nil {
			d.close()
			return nil, err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < masters; {
		info, err := d.clients[i].ClusterInfo(ctx).Result()
		if err == nil && clusterField(info, "cluster_state") == "ok" &&
			clusterField(info, "cluster_known_nodes") == strconv.Itoa(masters) {
			i++
			continue
		}
		if time.Now().After(deadline) {
			d.close()
			return nil, fmt.Errorf("redis cluster node %s not ready within 30s: %v %q", addrs[i], err, info)
		}
		select {
		case <-ctx.Done():
			d.close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling other processes
		}
	}
	d.url = "redis+cluster://" + strings.Join(addrs, ",")
	return d, nil
}

// clusterField is one field of CLUSTER INFO.
func clusterField(info, name string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
