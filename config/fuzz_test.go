package config_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/config"
)

// FuzzLoad feeds arbitrary bytes to Load as a config file, with secrets
// planted through the environment. Load must not panic, its errors must
// never contain a planted secret, and neither may Print's output.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apps: {default: {wechat: {app_id: wx1, app_secret_file: /dev/null}}}"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\nc: [*b, *b]"))
	f.Add([]byte("worker: {<<: {concurrency: 3}, ack_wait: 1d}"))

	const planted = "pl4nted-s3cret-d9e1"
	environ := []string{
		"HERALD_APPS_DEFAULT_WECHAT_APP_SECRET=" + planted,
		"HERALD_APPS_DEFAULT_ALIPAY_PRIVATE_KEY=" + planted,
		"HERALD_APPS_SHOP_ALIPAY_PRIVATE_KEY=" + planted,
		"HERALD_APPS_DEFAULT_WECHAT_PUSH_TOKEN=" + planted,
		"HERALD_APPS_DEFAULT_WECHAT_PUSH_ENCODING_AES_KEY=" + planted,
		"HERALD_REDIS_URL=redis://:" + planted + "@127.0.0.1:6379/0",
		"HERALD_NATS_URL=nats://" + planted + "@127.0.0.1:4222",
	}
	dir := f.TempDir() // one directory: a fresh one per input slows fuzzing tenfold
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte(planted)) {
			t.Skip("the input holds the secret itself")
		}
		path := writeTemp(t, dir, data)
		c, err := config.Load(path, environ)
		if err != nil {
			if strings.Contains(err.Error(), planted) {
				t.Fatalf("Load error reveals a secret:\n%v", err)
			}
			return
		}
		var out strings.Builder
		if err := c.Print(&out); err != nil {
			t.Fatalf("Print: %v", err)
		}
		if strings.Contains(out.String(), planted) {
			t.Fatalf("Print output reveals a secret:\n%s", out.String())
		}
	})
}

func writeTemp(t *testing.T, dir string, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// FuzzParseRedisURL feeds arbitrary URLs to ParseRedisURL with a password
// planted in the user info: it must not panic, its errors must never hold
// the password, and what it accepts must name at least one address, each
// host:port outside unix://.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0", "rediss://u:PW@h/3?dial_timeout=3s", "unix://:PW@/run/redis.sock?db=2",
		"redis+sentinel://:PW@s0,s1:26380,[::1]/1", "rediss+cluster://u:PW@n0:7000,n1",
		"redis+cluster://n0:6379,,n1", "redis+sentinel://s0?x=PW", "redis://:PW@h:port/0", "http://PW@h",
	} {
		f.Add(s)
	}
	const planted = "PW"
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Count(s, planted) != 1 {
			t.Skip("the planted password must appear once, where the input puts it")
		}
		u, err := config.ParseRedisURL(s)
		if err != nil {
			if strings.Contains(err.Error(), planted) {
				t.Fatalf("ParseRedisURL(%q) error reveals the password: %v", s, err)
			}
			return
		}
		if len(u.Addrs) == 0 {
			t.Fatalf("ParseRedisURL(%q) = %+v: no address", s, u)
		}
		for _, a := range u.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil && !u.Unix {
				t.Fatalf("ParseRedisURL(%q) address %q is not host:port: %v", s, a, err)
			}
		}
	})
}
