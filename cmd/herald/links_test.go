package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/internal/testenv"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/sandbox"
	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/redisstore"
)

// Secrets the link tests plant; no error or log may show them.
const (
	natsPassword  = "nats-pa55-4d1e"
	natsToken     = "nats-t0ken-9b2c"
	redisPassword = "redis-pa55-7f3a"
	adminPassword = "admin-pa55-1c8e"
	wrongPassword = "wr0ng-pa55-0e5d"
)

// linkFixture is what the link tests share: a CA that signs the servers
// and herald's client certificate, another CA that signs nothing they
// use, and an nkey user.
type linkFixture struct {
	ca, otherCA *testenv.CA
	client      testenv.Pair
	nkeyPublic  string
	nkeySeed    string // file
	otherSeed   string // file of a user no server knows
	secrets     []string
}

func newLinkFixture(t *testing.T) *linkFixture {
	t.Helper()
	f := &linkFixture{ca: testenv.NewCA(t, "herald test CA"), otherCA: testenv.NewCA(t, "another CA")}
	f.client = f.ca.Client(t, "herald")
	dir := t.TempDir()
	f.nkeyPublic, f.nkeySeed = newNkeyUser(t, dir, "herald.nk")
	_, f.otherSeed = newNkeyUser(t, dir, "other.nk")
	for _, file := range []string{f.nkeySeed, f.otherSeed} {
		seed, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, strings.TrimSpace(string(seed)))
	}
	f.secrets = append(f.secrets, natsPassword, natsToken, redisPassword, adminPassword, wrongPassword)
	return f
}

// newNkeyUser makes an nkey user and writes its seed to dir/name.
func newNkeyUser(t *testing.T, dir, name string) (public, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	public, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(dir, name)
	if err := os.WriteFile(seedFile, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return public, seedFile
}

// requireNoSecret fails t if s shows a planted secret.
func (f *linkFixture) requireNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range f.secrets {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows a secret:\n%s", what, s)
		}
	}
}

// mutualTLS is herald's side of mutual TLS with f's CA.
func (f *linkFixture) mutualTLS() config.TLS {
	return config.TLS{CAFile: f.ca.CertFile, CertFile: f.client.CertFile, KeyFile: f.client.KeyFile}
}

// natsAuth is how a test NATS server authenticates clients.
type natsAuth int

const (
	natsNoAuth natsAuth = iota
	natsUsers
	natsTokenAuth
	natsNkeys
	// natsNkeysLeastPrivilege also allows the user only the subjects
	// docs/operations.md lists.
	natsNkeysLeastPrivilege
)

// startNATS starts JetStream speaking TLS with a certificate of f's CA
// (none if !tlsOn), requiring client certificates if verify, and
// authenticating clients as auth says.
func (f *linkFixture) startNATS(t *testing.T, tlsOn, verify bool, auth natsAuth) *testenv.JetStream {
	t.Helper()
	var srv testenv.Pair
	if tlsOn {
		srv = f.ca.Server(t, "nats-server")
	}
	return testenv.StartJetStream(t, func(o *server.Options) {
		if tlsOn {
			o.TLS, o.TLSVerify, o.TLSTimeout = true, verify, 5
			o.TLSConfig = f.ca.ServerTLS(srv, verify)
		}
		switch auth {
		case natsUsers:
			o.Users = []*server.User{{Username: "herald", Password: natsPassword}}
		case natsTokenAuth:
			o.Authorization = natsToken
		case natsNkeys:
			o.Nkeys = []*server.NkeyUser{{Nkey: f.nkeyPublic}}
		case natsNkeysLeastPrivilege:
			o.Nkeys = []*server.NkeyUser{{Nkey: f.nkeyPublic, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>", "$JS.ACK.>", "notify.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}}}
		}
	})
}

// Each way of authenticating to NATS, over TLS with and without a client
// certificate, and each way it can be refused: the connection the worker
// and the operator commands make (connectNATS) either reaches JetStream
// or fails naming the server, and never showing a secret.
func TestNATSLinks(t *testing.T) {
	t.Parallel()
	f := newLinkFixture(t)
	tests := []struct {
		name     string
		tlsOn    bool // the server speaks TLS
		verify   bool // and requires client certificates
		auth     natsAuth
		give     config.NATS
		wantErrs []string // each in the error; none: no error
		wantAny  []string // one of them in the error
	}{
		{
			name: "user and password over mutual TLS", tlsOn: true, verify: true, auth: natsUsers,
			give: config.NATS{User: "herald", Password: natsPassword, TLS: f.mutualTLS()},
		},
		{
			name: "token over TLS with the server's certificate only", tlsOn: true, auth: natsTokenAuth,
			give: config.NATS{Token: natsToken, TLS: config.TLS{CAFile: f.ca.CertFile}},
		},
		{
			name: "nkey seed over mutual TLS", tlsOn: true, verify: true, auth: natsNkeys,
			give: config.NATS{NKeySeedFile: f.nkeySeed, TLS: f.mutualTLS()},
		},
		{
			name: "server name the certificate holds", tlsOn: true,
			give: config.NATS{TLS: config.TLS{CAFile: f.ca.CertFile, ServerName: "localhost"}},
		},
		{
			name: "CA that did not sign the server", tlsOn: true,
			give:     config.NATS{TLS: config.TLS{CAFile: f.otherCA.CertFile}},
			wantErrs: []string{"certificate signed by unknown authority"},
		},
		{
			name: "no client certificate where one is required", tlsOn: true, verify: true, auth: natsUsers,
			give: config.NATS{User: "herald", Password: natsPassword, TLS: config.TLS{CAFile: f.ca.CertFile}},
			// The server refuses after the handshake (TLS 1.3): the client
			// sees the alert, or the connection closed, depending on timing.
			wantErrs: []string{"tls"},
			wantAny:  []string{"certificate required", "connection closed by remote after TLS handshake"},
		},
		{
			name: "server name the certificate lacks", tlsOn: true,
			give:     config.NATS{TLS: config.TLS{CAFile: f.ca.CertFile, ServerName: "nats.internal"}},
			wantErrs: []string{"certificate is valid for", "not nats.internal"},
		},
		{
			name:     "TLS asked of a server without it",
			give:     config.NATS{TLS: config.TLS{CAFile: f.ca.CertFile}},
			wantErrs: []string{"secure connection not available"},
		},
		{
			name: "wrong password", tlsOn: true, verify: true, auth: natsUsers,
			give:     config.NATS{User: "herald", Password: wrongPassword, TLS: f.mutualTLS()},
			wantErrs: []string{"Authorization Violation"},
		},
		{
			name: "wrong token", auth: natsTokenAuth,
			give:     config.NATS{Token: wrongPassword},
			wantErrs: []string{"Authorization Violation"},
		},
		{
			name: "nkey the server does not know", auth: natsNkeys,
			give:     config.NATS{NKeySeedFile: f.otherSeed},
			wantErrs: []string{"Authorization Violation"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := f.startNATS(t, tt.tlsOn, tt.verify, tt.auth)
			cfg := config.Default()
			tt.give.URL = js.URL
			cfg.NATS = mergeNATS(cfg.NATS, tt.give)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			nc, err := connectNATS(cfg.NATS, "herald test", zap.NewNop())
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer nc.Close()
				jsc, err := jetstream.New(nc)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jsc.AccountInfo(t.Context()); err != nil {
					t.Fatalf("JetStream over the link: %v", err)
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("connect succeeded, want it refused with %q", tt.wantErrs)
			}
			for _, want := range append([]string{"connect to nats " + js.URL}, tt.wantErrs...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if len(tt.wantAny) > 0 && !slices.ContainsFunc(tt.wantAny, func(s string) bool { return strings.Contains(err.Error(), s) }) {
				t.Errorf("error %q contains none of %q", err, tt.wantAny)
			}
			f.requireNoSecret(t, "the error", err.Error())
		})
	}
}

// mergeNATS sets the link settings of give on n, keeping n's streams.
func mergeNATS(n, give config.NATS) config.NATS {
	n.URL, n.CredsFile, n.NKeySeedFile = give.URL, give.CredsFile, give.NKeySeedFile
	n.User, n.Password, n.Token, n.TLS = give.User, give.Password, give.Token, give.TLS
	return n
}

// startRedis starts a Redis speaking TLS only, requiring client
// certificates of f's CA and a password, with an ACL user "herald" that
// has redisstore.ACLRules.
func (f *linkFixture) startRedis(t *testing.T) *testenv.Redis {
	t.Helper()
	r := testenv.StartRedis(t, testenv.RedisTLS(t, f.ca, true), testenv.RedisPassword(adminPassword))
	args := []any{"ACL", "SETUSER", "herald", "on", ">" + redisPassword}
	for _, rule := range strings.Fields(redisstore.ACLRules) {
		args = append(args, rule)
	}
	if err := r.Client(t).Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	return r
}

// Each way of reaching a Redis that requires TLS with a client
// certificate and a password, and each way it can be refused: the stores
// the worker builds (newStores) either work or their Ping, which the
// worker's readiness reports, fails naming the Redis and never showing a
// secret.
func TestRedisLinks(t *testing.T) {
	t.Parallel()
	f := newLinkFixture(t)
	r := f.startRedis(t)
	tests := []struct {
		name     string
		give     config.Redis
		wantErrs []string
	}{
		{
			name: "ACL user over mutual TLS",
			give: config.Redis{URL: r.URL, Username: "herald", Password: redisPassword, TLS: f.mutualTLS()},
		},
		{
			name: "credentials in the URL",
			give: config.Redis{URL: "rediss://herald:" + redisPassword + "@" + r.Addr + "/0", TLS: f.mutualTLS()},
		},
		{
			name: "requirepass of the default user, server name the certificate holds",
			give: config.Redis{URL: r.URL, Password: adminPassword,
				TLS: config.TLS{CAFile: f.ca.CertFile, CertFile: f.client.CertFile, KeyFile: f.client.KeyFile, ServerName: "localhost"}},
		},
		{
			name:     "CA that did not sign the server",
			give:     config.Redis{URL: r.URL, Username: "herald", Password: redisPassword, TLS: config.TLS{CAFile: f.otherCA.CertFile, CertFile: f.client.CertFile, KeyFile: f.client.KeyFile}},
			wantErrs: []string{"dial " + r.Addr, "certificate signed by unknown authority"},
		},
		{
			name:     "no client certificate",
			give:     config.Redis{URL: r.URL, Username: "herald", Password: redisPassword, TLS: config.TLS{CAFile: f.ca.CertFile}},
			wantErrs: []string{"certificate required"},
		},
		{
			name:     "server name the certificate lacks",
			give:     config.Redis{URL: r.URL, Username: "herald", Password: redisPassword, TLS: config.TLS{CAFile: f.ca.CertFile, CertFile: f.client.CertFile, KeyFile: f.client.KeyFile, ServerName: "redis.internal"}},
			wantErrs: []string{"certificate is valid for", "not redis.internal"},
		},
		{
			name:     "wrong password",
			give:     config.Redis{URL: r.URL, Username: "herald", Password: wrongPassword, TLS: f.mutualTLS()},
			wantErrs: []string{"WRONGPASS"},
		},
		{
			name:     "wrong password in the URL",
			give:     config.Redis{URL: "rediss://herald:" + wrongPassword + "@" + r.Addr + "/0", TLS: f.mutualTLS()},
			wantErrs: []string{"WRONGPASS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Redis = tt.give
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			st, err := newStores(cfg, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = st.jobs.Ping(ctx)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Ping: %v", err)
				}
				a, err := st.jobs.Admit(ctx, worker.Claim{Key: "wechat:default:link", Owner: "o", Lease: time.Second, TTL: time.Minute})
				if err != nil || a.Status != worker.Claimed {
					t.Fatalf("Admit over the link = %+v, %v", a, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Ping succeeded, want it refused with %q", tt.wantErrs)
			}
			for _, want := range append([]string{"redis " + redactURL(tt.give.URL)}, tt.wantErrs...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			f.requireNoSecret(t, "the error", err.Error())
		})
	}
}

// A Redis behind Sentinel: the stores follow the master through a
// failover (SENTINEL FAILOVER) by themselves. A sent marker replicated
// before the failover is still there after it, and new claims are written
// to the new master.
func TestRedisThroughSentinelFollowsAFailover(t *testing.T) {
	t.Parallel()
	master := testenv.StartRedis(t)
	replica := testenv.StartRedis(t)
	replica.ReplicaOf(t, master)
	sentinel := testenv.StartSentinel(t, master, "herald-primary", "sentinel-pw")

	cfg := config.Default()
	cfg.Redis = config.Redis{
		URL:      "redis+sentinel://" + sentinel.Addr + "/0",
		Sentinel: config.Sentinel{MasterName: "herald-primary", Password: "sentinel-pw"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := newStores(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	ctx := context.Background()
	claim := func(id string) worker.Claim {
		return worker.Claim{Key: "wechat:default:" + id, Owner: "o", Lease: time.Second, TTL: time.Hour}
	}
	if a, err := st.jobs.Admit(ctx, claim("before")); err != nil || a.Status != worker.Claimed {
		t.Fatalf("Admit through Sentinel = %+v, %v", a, err)
	}
	if err := st.jobs.MarkSent(ctx, "wechat:default:before", time.Hour, worker.SentRecord{Seq: 7, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tok := wechat.Token{Value: "T1", RefreshAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(2 * time.Hour)}
	if err := st.tokens.Put(ctx, "wxA", tok); err != nil {
		t.Fatal(err)
	}
	// The marker must be on the replica before it takes over.
	if n, err := master.Client(t).Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}

	sentinel.Failover(t, replica)
	// The old master takes writes until Sentinel reconfigures it: wait
	// for the store's claims to land on the new one.
	newMaster := replica.Client(t)
	n := 0
	testenv.Eventually(t, 30*time.Second, "the store to claim on the new master", func() bool {
		n++
		id := fmt.Sprintf("after-%d", n)
		a, err := st.jobs.Admit(ctx, claim(id))
		if err != nil || a.Status != worker.Claimed {
			return false
		}
		found, err := newMaster.Exists(ctx, st.jobs.(*redisstore.Store).JobKey("wechat:default:"+id)).Result()
		return err == nil && found == 1
	})
	t.Logf("the store claimed on the new master after %d tries", n)
	if err := st.jobs.Ping(ctx); err != nil {
		t.Fatalf("Ping after the failover: %v", err)
	}
	if a, err := st.jobs.Admit(ctx, claim("before")); err != nil || a.Status != worker.AlreadySent || a.Sent.Seq != 7 {
		t.Fatalf("Admit of the job sent before the failover = %+v, %v; want AlreadySent, seq 7", a, err)
	}
	if got, err := st.tokens.Get(ctx, "wxA"); err != nil || got.Value != "T1" {
		t.Fatalf("token after the failover = %+v, %v", got, err)
	}
}

// A redis+cluster URL builds a cluster client that reaches every master
// of a real Redis Cluster, and the stores run on it: the token store, and
// the job store, whose jobs and Ping reach every master.
func TestRedisClusterURL(t *testing.T) {
	t.Parallel()
	rc := testenv.StartRedisCluster(t, 3, 0)
	cfg := config.Default()
	cfg.Redis.URL = rc.URL()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb, mode, err := newRedis(cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok || mode != config.RedisCluster {
		t.Fatalf("newRedis(%s) = %T, %s; want a cluster client", cfg.Redis.URL, rdb, mode)
	}
	ctx := context.Background()
	tokens := redisstore.NewTokens(rdb, "")
	masters := map[int]bool{}
	for i := 0; len(masters) < len(rc.Masters); i++ {
		app := fmt.Sprintf("wx%d", i)
		tok := wechat.Token{Value: "T-" + app, RefreshAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(2 * time.Hour)}
		if err := tokens.Put(ctx, app, tok); err != nil {
			t.Fatalf("token Put %s: %v", app, err)
		}
		if got, err := tokens.Get(ctx, app); err != nil || got.Value != tok.Value {
			t.Fatalf("token Get %s = %+v, %v", app, got, err)
		}
		masters[rc.MasterFor(t, "herald:wxtoken:"+app)] = true
	}

	st, err := newStores(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("newStores on a cluster: %v", err)
	}
	defer st.close()
	if err := st.jobs.Ping(ctx); err != nil {
		t.Fatalf("Ping on the cluster: %v", err)
	}
	limit := &worker.Limit{Key: "wechat:default:tpl", PerSecond: 100, Burst: 10}
	masters = map[int]bool{}
	for i := 0; len(masters) < len(rc.Masters); i++ {
		key := fmt.Sprintf("wechat:default:c%d", i)
		c := worker.Claim{Key: key, Owner: "o", Lease: time.Second, TTL: time.Hour, MaxWait: time.Second, Limit: limit}
		if a, err := st.jobs.Admit(ctx, c); err != nil || a.Status != worker.Claimed {
			t.Fatalf("Admit %s on the cluster = %+v, %v", key, a, err)
		}
		if err := st.jobs.MarkSent(ctx, key, time.Hour, worker.SentRecord{Seq: uint64(i + 1), At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		c.Owner = "o2"
		if a, err := st.jobs.Admit(ctx, c); err != nil || a.Status != worker.AlreadySent || a.Sent.Seq != uint64(i+1) {
			t.Fatalf("Admit %s again = %+v, %v; want AlreadySent", key, a, err)
		}
		masters[rc.MasterFor(t, st.jobs.(*redisstore.Store).JobKey(key))] = true
	}
}

// The worker and the operator commands, given one config file, reach
// NATS over mutual TLS with an nkey allowed only herald's subjects and
// Redis over mutual TLS as the ACL user: herald streams apply, send and
// dlq stats go the way the worker does, the worker delivers what send
// published, and neither logs a secret.
func TestWorkerAndOperatorCommandsShareTheAuthenticatedLinks(t *testing.T) {
	t.Parallel()
	f := newLinkFixture(t)
	js := f.startNATS(t, true, true, natsNkeysLeastPrivilege)
	rd := f.startRedis(t)
	sb := sandbox.New(sandbox.Options{Record: true})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)

	// Secrets beside the file, named by relative paths, as a mounted
	// Kubernetes Secret would be.
	dir := t.TempDir()
	seed, err := os.ReadFile(f.nkeySeed)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"herald.nk": string(seed), "redis_password": redisPassword + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsBlock := fmt.Sprintf("{ca_file: %s, cert_file: %s, key_file: %s}", f.ca.CertFile, f.client.CertFile, f.client.KeyFile)
	file := filepath.Join(dir, "herald.yaml")
	yaml := `nats:
  url: ` + js.URL + `
  nkey_seed_file: herald.nk
  tls: ` + tlsBlock + `
redis:
  url: ` + rd.URL + `
  username: herald
  password_file: redis_password
  tls: ` + tlsBlock + `
worker:
  instance: secure
  http_addr: 127.0.0.1:0
apps:
  default:
    wechat: {app_id: ` + sandbox.DevWeChatAppID + `, app_secret: ` + sandbox.DevWeChatSecret + `, base_url: ` + srv.URL + `}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := []string{"HERALD_CONFIG=" + file}
	herald := func(environ []string, args ...string) (string, error) {
		var out, errOut syncBuffer
		err := run(t.Context(), args, environ, strings.NewReader(""), &out, &errOut)
		return out.String() + errOut.String(), err
	}

	if out, err := herald(environ, "streams", "apply"); err != nil {
		t.Fatalf("herald streams apply: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	workerLog := &syncBuffer{}
	go func() { done <- run(ctx, []string{"worker"}, environ, nil, io.Discard, workerLog) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("herald worker: %v", err)
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", workerLog)
		}
	})

	if out, err := herald(environ, "send", "--id", "secure-1", "--template", "tpl", "--to", "user-secure", "--data", "thing1=hi"); err != nil {
		t.Fatalf("herald send: %v\n%s", err, out)
	}
	testenv.Eventually(t, 30*time.Second, "the job delivered", func() bool {
		for _, m := range sb.Accepted() {
			if m.ToUser == "user-secure" {
				return true
			}
		}
		return false
	})
	if out, err := herald(environ, "dlq", "stats", "--json"); err != nil {
		t.Fatalf("herald dlq stats: %v\n%s", err, out)
	}

	// The same commands with a key the server does not know are refused,
	// naming the server.
	out, err := herald(append(environ[:1:1], "HERALD_NATS_NKEY_SEED_FILE="+f.otherSeed), "streams", "status")
	if err == nil || !strings.Contains(err.Error(), "connect to nats "+js.URL) || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("herald streams status with an unknown nkey: %v\n%s", err, out)
	}
	f.requireNoSecret(t, "the worker's log", workerLog.String())
	f.requireNoSecret(t, "the refused command's error", err.Error())
}
