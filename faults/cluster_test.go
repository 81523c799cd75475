package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldhq/herald/internal/testenv"
)

// cluster is a JetStream cluster of embedded servers on loopback.
type cluster struct {
	t       *testing.T
	servers []*server.Server
}

// startCluster starts n JetStream servers routed to each other and waits
// until they have elected a meta leader.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	routeAddrs := make([]string, n)
	for i := range routeAddrs {
		routeAddrs[i] = freeAddr(t)
	}
	routes := make([]string, n)
	for i, a := range routeAddrs {
		routes[i] = "nats://" + a
	}
	c := &cluster{t: t}
	for i := range n {
		host, port := splitAddr(t, routeAddrs[i])
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "herald", Host: host, Port: port},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		c.servers = append(c.servers, s)
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range c.servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
	}
	testenv.Eventually(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range c.servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return c
}

// urls is every server's client URL, comma-separated.
func (c *cluster) urls() string {
	var out []string
	for _, s := range c.servers {
		out = append(out, s.ClientURL())
	}
	return strings.Join(out, ",")
}

// shutdown stops the server named name.
func (c *cluster) shutdown(name string) {
	for _, s := range c.servers {
		if s.Name() == name {
			s.Shutdown()
			s.WaitForShutdown()
			return
		}
	}
	c.t.Fatalf("no server named %s", name)
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	var host string
	var port int
	i := strings.LastIndexByte(addr, ':')
	host = addr[:i]
	if _, err := fmt.Sscan(addr[i+1:], &port); err != nil {
		t.Fatal(err)
	}
	return host, port
}
