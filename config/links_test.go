package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/heraldhq/herald/config"
)

// TestLinksFile loads authenticated NATS and Redis links from a file:
// secrets read from their files, relative paths resolved against the
// file's directory, absolute ones kept.
func TestLinksFile(t *testing.T) {
	t.Parallel()
	c, err := config.Load("testdata/links.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNATS := config.NATS{
		URL:          "tls://nats-0.nats:4222,tls://nats-1.nats:4222",
		User:         "herald",
		Password:     "nats-pa55word",
		PasswordFile: "testdata/secrets/nats_password",
		TLS: config.TLS{
			CAFile:     "testdata/tls/ca.pem",
			CertFile:   "testdata/tls/herald.pem",
			KeyFile:    "testdata/tls/herald-key.pem",
			ServerName: "nats.internal",
		},
	}
	gotNATS := c.NATS
	gotNATS.Stream, gotNATS.DeadStream, gotNATS.EventsStream, gotNATS.Consumer = "", "", "", ""
	gotNATS.Replicas, gotNATS.DuplicateWindow, gotNATS.DeadMaxAge, gotNATS.EventsMaxAge, gotNATS.MaxAckPending = 0, 0, 0, 0, 0
	gotNATS.SubscriptionsStream, gotNATS.SubscriptionsMaxAge = "", 0
	gotNATS.DeadMaxBytes, gotNATS.EventsMaxBytes, gotNATS.SubscriptionsMaxBytes = 0, 0, 0
	if !reflect.DeepEqual(gotNATS, wantNATS) {
		t.Errorf("nats = %#v\nwant %#v", gotNATS, wantNATS)
	}
	wantRedis := config.Redis{
		URL:          "rediss+sentinel://sentinel-0.redis:26379,sentinel-1.redis,[::1]:26380/2",
		Username:     "herald",
		Password:     "redis-pa55word",
		PasswordFile: "testdata/secrets/redis_password",
		TLS:          config.TLS{CAFile: "/etc/herald/tls/ca.pem"},
		Sentinel: config.Sentinel{
			MasterName:   "herald-primary",
			Password:     "sentinel-pa55word",
			PasswordFile: "testdata/secrets/sentinel_password",
		},
	}
	if !reflect.DeepEqual(c.Redis, wantRedis) {
		t.Errorf("redis = %#v\nwant %#v", c.Redis, wantRedis)
	}
}

// TestLinkSecretsFromTheEnvironment sets every new secret and path through
// HERALD_ variables, as a Kubernetes Secret mapped to the environment does.
func TestLinkSecretsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envBase, []string{
		"HERALD_NATS_TOKEN=nats-t0ken",
		"HERALD_NATS_TLS_CA_FILE=/run/secrets/ca.pem",
		"HERALD_REDIS_URL=redis+sentinel://10.0.0.1,10.0.0.2:26380",
		"HERALD_REDIS_USERNAME=herald",
		"HERALD_REDIS_PASSWORD=redis-pa55word",
		"HERALD_REDIS_SENTINEL_MASTER_NAME=mymaster",
		"HERALD_REDIS_SENTINEL_PASSWORD=sentinel-pa55word",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give any
		want any
	}{
		{name: "nats token", give: c.NATS.Token.Reveal(), want: "nats-t0ken"},
		{name: "nats ca file, as given", give: c.NATS.TLS.CAFile, want: "/run/secrets/ca.pem"},
		{name: "redis user", give: c.Redis.Username, want: "herald"},
		{name: "redis password", give: c.Redis.Password.Reveal(), want: "redis-pa55word"},
		{name: "sentinel master", give: c.Redis.Sentinel.MasterName, want: "mymaster"},
		{name: "sentinel password", give: c.Redis.Sentinel.Password.Reveal(), want: "sentinel-pa55word"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.give, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.give, tt.want)
		}
	}
}

// TestValidateLinks checks the combinations of link settings built in
// code, one problem each.
func TestValidateLinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(*config.Config)
		want string
	}{
		{
			name: "nkey seed",
			give: func(c *config.Config) { c.NATS.NKeySeedFile = "/run/secrets/herald.nk" },
		},
		{
			name: "token from a file",
			give: func(c *config.Config) { c.NATS.TokenFile = "/run/secrets/token" },
		},
		{
			name: "creds file beside URL credentials, as before",
			give: func(c *config.Config) { c.NATS.URL = "nats://u:p@nats:4222"; c.NATS.CredsFile = "herald.creds" },
		},
		{
			name: "nkey and creds",
			give: func(c *config.Config) { c.NATS.NKeySeedFile = "a.nk"; c.NATS.CredsFile = "a.creds" },
			want: "nats: set only one of nats.creds_file, nats.nkey_seed_file: each is a way to authenticate",
		},
		{
			name: "password without a user",
			give: func(c *config.Config) { c.NATS.Password = "pw" },
			want: "nats.user: required with nats.password",
		},
		{
			name: "token in the URL and in nats.token",
			give: func(c *config.Config) { c.NATS.URL = "nats-0:4222,t0ken@nats-1:4222"; c.NATS.Token = "t" },
			want: "nats.url: holds credentials, and so do nats.nkey_seed_file, nats.user or nats.token: give them in one place",
		},
		{
			name: "TLS over plain websocket",
			give: func(c *config.Config) { c.NATS.URL = "ws://nats:8080"; c.NATS.TLS.CAFile = "ca.pem" },
			want: "nats.tls: set, but nats.url has a ws:// server: use wss:// for TLS",
		},
		{
			name: "nats key without its certificate",
			give: func(c *config.Config) { c.NATS.TLS.KeyFile = "k.pem" },
			want: "nats.tls.cert_file: required with nats.tls.key_file",
		},
		{
			name: "embedded server leaves credentials unused",
			give: func(c *config.Config) {
				c.NATS.URL = ""
				c.NATS.User = "u"
				c.NATS.Password = "p"
				c.NATS.TLS.CAFile = "ca.pem"
			},
		},
		{
			name: "in-process stores leave redis credentials unused",
			give: func(c *config.Config) { c.Redis.URL = ""; c.Redis.Password = "p"; c.Redis.TLS.CAFile = "ca.pem" },
		},
		{
			name: "redis mutual TLS",
			give: func(c *config.Config) {
				c.Redis.URL = "rediss://redis:6380/0"
				c.Redis.TLS = config.TLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "redis.internal"}
			},
		},
		{
			name: "redis password alone (requirepass)",
			give: func(c *config.Config) { c.Redis.Password = "p" },
		},
		{
			name: "redis TLS on a plain URL",
			give: func(c *config.Config) { c.Redis.URL = "unix:///run/redis.sock"; c.Redis.TLS.CAFile = "ca.pem" },
			want: "redis.tls: set, but redis.url does not use TLS: use rediss://, rediss+sentinel:// or rediss+cluster://",
		},
		{
			name: "sentinel",
			give: func(c *config.Config) {
				c.Redis.URL = "redis+sentinel://s0,s1:26380"
				c.Redis.Sentinel = config.Sentinel{MasterName: "m", Username: "u", Password: "p"}
			},
		},
		{
			name: "sentinel without a master name",
			give: func(c *config.Config) { c.Redis.URL = "rediss+sentinel://s0:26379/1" },
			want: "redis.sentinel.master_name: required with a redis+sentinel url",
		},
		{
			name: "sentinel user without a password",
			give: func(c *config.Config) {
				c.Redis.URL = "redis+sentinel://s0"
				c.Redis.Sentinel = config.Sentinel{MasterName: "m", Username: "u"}
			},
			want: "redis.sentinel.password: required with redis.sentinel.username (inline, password_file or HERALD_REDIS_SENTINEL_PASSWORD)",
		},
		{
			name: "cluster",
			give: func(c *config.Config) { c.Redis.URL = "rediss+cluster://herald:pw@n0:6379,n1,n2:7000" },
		},
		{
			name: "cluster with a query",
			give: func(c *config.Config) { c.Redis.URL = "redis+cluster://n0:6379?read_only=true" },
			want: "redis.url: the sentinel and cluster forms take no query or fragment",
		},
		{
			name: "cluster address that is not host:port",
			give: func(c *config.Config) { c.Redis.URL = "redis+cluster://n0:6379,n1:port" },
			want: "redis.url: every address of the list must be host or host:port",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.give(c)
			if got := errorText(c.Validate()); got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want config.RedisURL
	}{
		{
			give: "redis://127.0.0.1:6379/0",
			want: config.RedisURL{Mode: config.RedisServer, Addrs: []string{"127.0.0.1:6379"}},
		},
		{
			give: "rediss://herald:pw@redis.internal/3?dial_timeout=3s",
			want: config.RedisURL{Mode: config.RedisServer, TLS: true, Addrs: []string{"redis.internal:6379"},
				Username: "herald", Password: "pw", HasAuth: true, DB: 3},
		},
		{
			give: "unix://:pw@/run/redis.sock?db=2",
			want: config.RedisURL{Mode: config.RedisServer, Unix: true, Addrs: []string{"/run/redis.sock"},
				Password: "pw", HasAuth: true, DB: 2},
		},
		{
			give: "redis+sentinel://s0,s1:26380,[::1]/1",
			want: config.RedisURL{Mode: config.RedisSentinel, Addrs: []string{"s0:26379", "s1:26380", "[::1]:26379"}, DB: 1},
		},
		{
			give: "rediss+cluster://:p%40ss@n0:7000,n1",
			want: config.RedisURL{Mode: config.RedisCluster, TLS: true, Addrs: []string{"n0:7000", "n1:6379"},
				Password: "p@ss", HasAuth: true},
		},
	}
	for _, tt := range tests {
		got, err := config.ParseRedisURL(tt.give)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRedisURL(%q) = %#v, %v\nwant %#v", tt.give, got, err, tt.want)
		}
	}
}

// TestPrintMasksLinkSecrets: the link passwords and token print masked,
// the files and user names as they are.
func TestPrintMasksLinkSecrets(t *testing.T) {
	t.Parallel()
	const (
		natsToken = "nats-t0ken-value"
		redisPass = "redis-pa55-value"
		sentPass  = "sentinel-pa55-value"
		urlPass   = "url-pa55-value"
	)
	c, err := config.Load(envBase, []string{
		"HERALD_NATS_TOKEN=" + natsToken,
		"HERALD_REDIS_URL=redis+cluster://herald:" + urlPass + "@n0:6379,n1:6379",
	})
	if err != nil {
		t.Fatal(err)
	}
	out := printed(t, c)
	c2, err := config.Load("testdata/links.good.yaml", []string{
		"HERALD_REDIS_PASSWORD_FILE=",
		"HERALD_REDIS_PASSWORD=" + redisPass,
		"HERALD_REDIS_SENTINEL_PASSWORD_FILE=",
		"HERALD_REDIS_SENTINEL_PASSWORD=" + sentPass,
	})
	if err != nil {
		t.Fatal(err)
	}
	out += printed(t, c2)
	for _, secret := range []string{natsToken, redisPass, sentPass, urlPass, "nats-pa55word"} {
		if strings.Contains(out, secret) {
			t.Errorf("Print output contains %q:\n%s", secret, out)
		}
	}
	for _, shown := range []string{
		"token: <secret>",
		"url: redis+cluster://herald:xxxxx@n0:6379,n1:6379",
		"password: <secret>",
		"password_file: testdata/secrets/nats_password",
		"user: herald",
		"master_name: herald-primary",
		"cert_file: testdata/tls/herald.pem",
	} {
		if !strings.Contains(out, shown) {
			t.Errorf("Print output lacks %q:\n%s", shown, out)
		}
	}
}
