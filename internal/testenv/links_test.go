package testenv_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/internal/testenv"
)

// The cluster helper makes a cluster whose masters share the slots and
// keep them through a failover: keys written before are read after, from
// the promoted replica.
func TestRedisClusterServesEverySlotAndFailsOver(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 1)
	c := rc.Client(t)
	ctx := context.Background()
	perMaster := make([]int, len(rc.Masters))
	for i := range 30 {
		key := fmt.Sprintf("k%d", i)
		if err := c.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
		perMaster[rc.MasterFor(t, key)]++
	}
	for i, n := range perMaster {
		if n == 0 {
			t.Fatalf("master %d holds none of 30 keys (%v): slots not shared", i, perMaster)
		}
		if got := rc.Masters[i].Client(t).DBSize(ctx).Val(); got != int64(n) {
			t.Errorf("master %d holds %d keys, MasterFor says %d", i, got, n)
		}
	}

	old := rc.Masters[0]
	rc.Failover(t, 0)
	if rc.Masters[0] == old || rc.Masters[0].Role(t) != "master" || old.Role(t) != "slave" {
		t.Fatalf("after the failover master 0 is %s (%s), the old one %s", rc.Masters[0].Addr, rc.Masters[0].Role(t), old.Role(t))
	}
	for i := range 30 {
		key := fmt.Sprintf("k%d", i)
		testenv.Eventually(t, 10*time.Second, "key "+key+" readable after the failover", func() bool {
			v, err := c.Get(ctx, key).Int()
			return err == nil && v == i
		})
	}
}

// A TLS Redis that authenticates clients takes the tests' own connections
// and refuses one without a client certificate.
func TestRedisTLSRequiresAClientCertificate(t *testing.T) {
	t.Parallel()
	ca := testenv.NewCA(t, "testenv CA")
	r := testenv.StartRedis(t, testenv.RedisTLS(t, ca, true), testenv.RedisPassword("pw"))
	if !strings.HasPrefix(r.URL, "rediss://") {
		t.Errorf("URL = %s, want rediss://", r.URL)
	}
	ctx := context.Background()
	if err := r.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("admin ping: %v", err)
	}
	opts := r.Options()
	opts.TLSConfig = &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	err := c.Ping(ctx).Err()
	var rerr redis.Error
	if err == nil || errors.As(err, &rerr) {
		t.Fatalf("ping without a client certificate: %v, want a TLS failure", err)
	}
}

// The sentinel helper watches a master and fails it over to its replica.
func TestSentinelFailsOver(t *testing.T) {
	t.Parallel()
	master := testenv.StartRedis(t)
	replica := testenv.StartRedis(t)
	replica.ReplicaOf(t, master)
	s := testenv.StartSentinel(t, master, "herald", "sentinel-pw")
	if got := s.MasterAddr(t); got != master.Addr {
		t.Fatalf("sentinel master = %s, want %s", got, master.Addr)
	}
	s.Failover(t, replica)
	if got := s.MasterAddr(t); got != replica.Addr {
		t.Fatalf("sentinel master after failover = %s, want %s", got, replica.Addr)
	}
}
