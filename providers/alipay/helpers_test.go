package alipay

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/sandbox"
)

// Generating RSA keys is slow under the race detector: the package's tests
// share two key sets (the second plays a rotated or foreign key).
var (
	testKeys      = sync.OnceValues(sandbox.NewAlipayKeys)
	testOtherKeys = sync.OnceValues(sandbox.NewAlipayKeys)
)

const testAppID = "2021000000000042"

func keys(t testing.TB) sandbox.AlipayKeys {
	t.Helper()
	k, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func otherKeys(t testing.TB) sandbox.AlipayKeys {
	t.Helper()
	k, err := testOtherKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testBundle is a client talking to the sandbox gateway.
type testBundle struct {
	client *Client
	sb     *sandbox.Server
	srv    *httptest.Server
	keys   sandbox.AlipayKeys
}

func setup(t *testing.T, cfgFn func(*Config), opts ...Option) *testBundle {
	t.Helper()
	k := keys(t)
	so := k.Options(testAppID)
	so.Record = true
	sb := sandbox.New(so)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	cfg := Config{
		AppID:           testAppID,
		PrivateKey:      k.AppPrivateKey,
		AlipayPublicKey: k.GatewayPublicKey,
		Gateway:         srv.URL + sandbox.AlipayGatewayPath,
		Timeout:         5 * time.Second,
	}
	if cfgFn != nil {
		cfgFn(&cfg)
	}
	c, err := New(cfg, srv.Client(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{client: c, sb: sb, srv: srv, keys: k}
}

// fakeGateway answers every call with body, and hands each request's form
// to the test.
func fakeGateway(t testing.TB, status int, body string) (*httptest.Server, <-chan map[string][]string) {
	t.Helper()
	forms := make(chan map[string][]string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		select {
		case forms <- r.PostForm:
		default:
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, forms
}

// clientFor is a client of the test app posting to url.
func clientFor(t testing.TB, url string, cfgFn func(*Config), opts ...Option) *Client {
	t.Helper()
	k := keys(t)
	cfg := Config{
		AppID:           testAppID,
		PrivateKey:      k.AppPrivateKey,
		AlipayPublicKey: k.GatewayPublicKey,
		Gateway:         url,
		Timeout:         5 * time.Second,
	}
	if cfgFn != nil {
		cfgFn(&cfg)
	}
	c, err := New(cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testJob(toUser string) job.Job {
	return job.Job{
		ID: "j-" + toUser, Platform: job.Alipay, App: job.DefaultApp, TemplateID: "tpl-1", ToUser: toUser,
		Page: "pages/order/index?id=42",
		Data: map[string]job.Value{"keyword1": {Value: "订单已发货"}, "keyword2": {Value: "2026-11-23 10:00"}},
	}
}
