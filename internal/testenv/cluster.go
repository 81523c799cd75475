package testenv

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is how many hash slots a Redis Cluster divides keys into.
const clusterSlots = 16384

// RedisCluster is a Redis Cluster of redis-server processes on loopback.
type RedisCluster struct {
	// Masters are the nodes serving the slots, in slot order: master i
	// serves the i-th share. Replicas[i] replicates Masters[i], or is nil.
	// Failover swaps the two.
	Masters  []*Redis
	Replicas []*Redis
}

// StartRedisCluster starts masters redis-server processes in cluster mode
// (--cluster-enabled yes), each with replicas replicas of its own, joins
// them with CLUSTER MEET, gives each master an equal share of the slots
// (CLUSTER ADDSLOTSRANGE) and waits until every node reports
// cluster_state:ok.
func StartRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	if masters < 1 || replicas < 0 {
		t.Fatalf("redis cluster of %d masters with %d replicas each", masters, replicas)
	}
	node := func() *Redis {
		// A node that stops answering for a second is failed; a failover
		// by its replica follows.
		return StartRedis(t, RedisArgs("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"))
	}
	rc := &RedisCluster{}
	var all []*Redis
	for range masters {
		m := node()
		rc.Masters = append(rc.Masters, m)
		all = append(all, m)
	}
	for range masters * replicas {
		all = append(all, node())
	}
	// Distinct config epochs up front spare the cluster resolving
	// collisions, as redis-cli --cluster create does.
	for i, n := range all {
		n.do(t, "CLUSTER", "SET-CONFIG-EPOCH", i+1)
	}
	host, port, _ := net.SplitHostPort(all[0].Addr)
	for _, n := range all[1:] {
		n.do(t, "CLUSTER", "MEET", host, port)
	}
	for i, m := range rc.Masters {
		first, last := i*clusterSlots/masters, (i+1)*clusterSlots/masters-1
		m.do(t, "CLUSTER", "ADDSLOTSRANGE", first, last)
	}
	Eventually(t, 30*time.Second, "every node to know every other", func() bool {
		for _, n := range all {
			if strings.Count(n.do(t, "CLUSTER", "NODES").(string), "\n") < len(all) {
				return false
			}
		}
		return true
	})
	rc.Replicas = make([]*Redis, masters)
	for i, n := range all[masters:] {
		m := rc.Masters[i%masters]
		n.do(t, "CLUSTER", "REPLICATE", m.nodeID(t))
		if rc.Replicas[i%masters] == nil {
			rc.Replicas[i%masters] = n
		}
	}
	rc.WaitOK(t)
	for _, r := range rc.Replicas {
		if r != nil {
			Eventually(t, 30*time.Second, "replica "+r.Addr+" to sync", func() bool {
				return infoField(r.info(t, "replication"), "master_link_status") == "up"
			})
		}
	}
	return rc
}

// Addrs are the masters' addresses, for a cluster client to start from.
func (rc *RedisCluster) Addrs() []string {
	out := make([]string, len(rc.Masters))
	for i, m := range rc.Masters {
		out[i] = m.Addr
	}
	return out
}

// URL is the cluster as herald's redis.url names it.
func (rc *RedisCluster) URL() string {
	return "redis+cluster://" + strings.Join(rc.Addrs(), ",")
}

// Client returns a cluster client, closed at cleanup.
func (rc *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// WaitOK waits until every running node reports cluster_state:ok and
// agrees on who serves every slot.
func (rc *RedisCluster) WaitOK(t testing.TB) {
	t.Helper()
	Eventually(t, 30*time.Second, "cluster_state:ok on every node", func() bool {
		for _, n := range rc.running() {
			if infoField(n.do(t, "CLUSTER", "INFO").(string), "cluster_state") != "ok" {
				return false
			}
		}
		return true
	})
}

// MasterFor is the index in Masters of the master serving key's slot.
func (rc *RedisCluster) MasterFor(t testing.TB, key string) int {
	t.Helper()
	slot := int(rc.Masters[0].do(t, "CLUSTER", "KEYSLOT", key).(int64))
	for i := len(rc.Masters) - 1; i > 0; i-- {
		if slot >= i*clusterSlots/len(rc.Masters) {
			return i
		}
	}
	return 0
}

// Failover promotes master i's replica (CLUSTER FAILOVER, which waits for
// the replica to catch up first, so nothing is lost), waits until the two
// have swapped roles and the cluster agrees, and swaps Masters[i] with
// Replicas[i].
func (rc *RedisCluster) Failover(t testing.TB, i int) {
	t.Helper()
	r := rc.Replicas[i]
	if r == nil {
		t.Fatalf("redis cluster master %d has no replica to fail over to", i)
	}
	r.do(t, "CLUSTER", "FAILOVER")
	old := rc.Masters[i]
	Eventually(t, 30*time.Second, "replica "+r.Addr+" to take over from "+old.Addr, func() bool {
		return r.Role(t) == "master" && old.Role(t) == "slave"
	})
	rc.Masters[i], rc.Replicas[i] = r, old
	rc.WaitOK(t)
}

// StopMaster kills master i. With a replica, the cluster fails over to it
// after the node timeout; wait with WaitOK. Without one, the master's
// slots stay unserved.
func (rc *RedisCluster) StopMaster(t testing.TB, i int) {
	t.Helper()
	rc.Masters[i].Stop()
}

// running are the nodes whose process runs.
func (rc *RedisCluster) running() []*Redis {
	var out []*Redis
	for _, n := range append(append([]*Redis{}, rc.Masters...), rc.Replicas...) {
		if n != nil && n.cmd != nil {
			out = append(out, n)
		}
	}
	return out
}

// nodeID is the node's cluster id.
func (r *Redis) nodeID(t testing.TB) string {
	t.Helper()
	id, ok := r.do(t, "CLUSTER", "MYID").(string)
	if !ok || id == "" {
		t.Fatalf("redis %s: no cluster node id", r.Addr)
	}
	return id
}
