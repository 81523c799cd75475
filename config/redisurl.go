package config

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// RedisMode is the topology a [Redis.URL] names.
type RedisMode string

// The forms of [Redis.URL].
const (
	RedisServer   RedisMode = "server"   // redis://, rediss://, unix://
	RedisSentinel RedisMode = "sentinel" // redis+sentinel://, rediss+sentinel://
	RedisCluster  RedisMode = "cluster"  // redis+cluster://, rediss+cluster://
)

// Default ports where a sentinel or cluster address gives none.
const (
	defaultRedisPort    = "6379"
	defaultSentinelPort = "26379"
)

// RedisURL is a [Redis.URL] taken apart.
type RedisURL struct {
	Mode RedisMode
	// TLS is set by the rediss schemes.
	TLS bool
	// Addrs are the servers' host:port: the one server, the sentinels, or
	// the cluster nodes given. For unix:// it is the socket path.
	Addrs []string
	// Unix is set for unix://.
	Unix bool
	// Username and Password are the URL's credentials, if any; HasAuth
	// says whether it holds any.
	Username string
	Password Secret
	HasAuth  bool
	// DB is the database number (always 0 for a cluster).
	DB int
}

// ParseRedisURL takes a [Redis.URL] apart and checks it. Its errors never
// quote the URL, which may hold a password. The one-server form may carry
// the client's query options (?dial_timeout=3s); the sentinel and cluster
// forms take none.
func ParseRedisURL(s string) (RedisURL, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return RedisURL{}, errors.New("not a valid URL")
	}
	var r RedisURL
	switch scheme {
	case "redis", "rediss", "unix":
		r.Mode, r.TLS, r.Unix = RedisServer, scheme == "rediss", scheme == "unix"
		return r, r.parseServer(s)
	case "redis+sentinel", "rediss+sentinel":
		r.Mode, r.TLS = RedisSentinel, scheme == "rediss+sentinel"
	case "redis+cluster", "rediss+cluster":
		r.Mode, r.TLS = RedisCluster, scheme == "rediss+cluster"
	default:
		return RedisURL{}, errors.New("scheme must be redis, rediss or unix (one server), " +
			"redis+sentinel or rediss+sentinel (Sentinel), redis+cluster or rediss+cluster (Redis Cluster)")
	}
	return r, r.parseList(rest)
}

// parseServer checks the one-server form as go-redis reads it.
func (r *RedisURL) parseServer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	r.setAuth(u.User)
	if r.Unix {
		if u.Path == "" {
			return errors.New("socket path required, unix:///path/to/redis.sock")
		}
		r.Addrs = []string{u.Path}
		if db := u.Query().Get("db"); db != "" {
			n, err := strconv.Atoi(db)
			if err != nil || n < 0 {
				return errors.New("db must be a database number such as 0")
			}
			r.DB = n
		}
		return nil
	}
	if u.Hostname() == "" {
		return errors.New("host required")
	}
	db, ok := parseDB(u.Path)
	if !ok {
		return errors.New("path must be a database number such as /0")
	}
	r.DB = db
	port := u.Port()
	if port == "" {
		port = defaultRedisPort
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return errors.New("not a valid URL")
	}
	r.Addrs = []string{addr}
	return nil
}

// parseList reads [user:password@]host[:port],host[:port]/[db] of the
// sentinel and cluster forms.
func (r *RedisURL) parseList(rest string) error {
	if strings.ContainsAny(rest, "?#") {
		return errors.New("the sentinel and cluster forms take no query or fragment")
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		// Parse the user info alone, so a host list url.Parse would refuse
		// still has its credentials read the standard way.
		u, err := url.Parse("redis://" + hosts[:at+1] + "host")
		if err != nil {
			return errors.New("not a valid URL")
		}
		r.setAuth(u.User)
		hosts = hosts[at+1:]
	}
	port := defaultRedisPort
	if r.Mode == RedisSentinel {
		port = defaultSentinelPort
	}
	for h := range strings.SplitSeq(hosts, ",") {
		addr, err := hostPort(strings.TrimSpace(h), port)
		if err != nil {
			return err
		}
		r.Addrs = append(r.Addrs, addr)
	}
	db, ok := parseDB(path)
	switch {
	case !ok:
		return errors.New("path must be a database number such as /0")
	case r.Mode == RedisCluster && db != 0:
		return errors.New("a cluster has database 0 only")
	}
	r.DB = db
	return nil
}

func (r *RedisURL) setAuth(u *url.Userinfo) {
	if u == nil {
		return
	}
	r.HasAuth = true
	r.Username = u.Username()
	p, _ := u.Password()
	r.Password = Secret(p)
}

// hostPort checks one host[:port] of a list, giving it port if it has
// none.
func hostPort(h, port string) (string, error) {
	if h == "" {
		return "", errors.New("host required in every address of the list")
	}
	bad := errors.New("every address of the list must be host or host:port")
	if strings.ContainsAny(h, " \t/@") {
		return "", bad
	}
	addr := h
	if host, p, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return "", errors.New("host required in every address of the list")
		}
		if p == "" || !validPort(p) {
			return "", bad
		}
	} else {
		host := h
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			host = h[1 : len(h)-1] // an IPv6 address without a port
		}
		addr = net.JoinHostPort(host, port)
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || strings.ContainsAny(host, "[]") {
		return "", bad
	}
	return addr, nil
}

// parseDB reads a URL path as a database number; empty is 0.
func parseDB(path string) (int, bool) {
	db := strings.TrimPrefix(path, "/")
	if db == "" {
		return 0, true
	}
	n, err := strconv.Atoi(db)
	return n, err == nil && n >= 0
}
