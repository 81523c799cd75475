package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bareBase64 strips PEM armour, as Alipay's console shows keys.
func bareBase64(t *testing.T, pemText string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		t.Fatal("not PEM")
	}
	return base64.StdEncoding.EncodeToString(b.Bytes)
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParsePrivateKeyFormats(t *testing.T) {
	k := keys(t)
	want, err := ParsePrivateKey(k.AppPrivateKey) // PKCS#8 PEM
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(want)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(want)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name string
		give string
	}{
		{"PKCS#8 PEM", pemOf("PRIVATE KEY", pkcs8)},
		{"PKCS#1 PEM", pemOf("RSA PRIVATE KEY", pkcs1)},
		{"PKCS#1 bare base64", b64(pkcs1)},
		{"PKCS#8 bare base64", b64(pkcs8)},
		{"bare base64 wrapped at 64 with CRLF", wrap(b64(pkcs8), 64, "\r\n")},
		{"PEM with surrounding white space", "\n  " + pemOf("PRIVATE KEY", pkcs8) + "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivateKey(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Fatal("parsed a different key")
			}
		})
	}
}

func wrap(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

func TestParsePrivateKeyErrorsHideTheKey(t *testing.T) {
	k := keys(t)
	body := bareBase64(t, k.AppPrivateKey)
	tests := []struct {
		name string
		give string
	}{
		{"empty", ""},
		{"not base64", body[:100] + "!!!" + body[100:]},
		{"truncated DER", body[:len(body)/2]},
		{"a public key", k.AppPublicKey},
		{"malformed PEM", "-----BEGIN PRIVATE KEY-----\n" + body[:200]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePrivateKey(tt.give)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), body[20:40]) || strings.Contains(err.Error(), body[200:220]) {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

func TestParsePublicKeysFormatsAndRotation(t *testing.T) {
	a, b := keys(t).GatewayPublicKey, otherKeys(t).GatewayPublicKey
	ka, err := ParsePublicKeys(a)
	if err != nil || len(ka) != 1 {
		t.Fatalf("%d keys, %v", len(ka), err)
	}
	kb, err := ParsePublicKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(ka[0]))
	tests := []struct {
		name string
		give string
		want []*rsa.PublicKey
	}{
		{"X.509 PEM", a, ka},
		{"PKCS#1 PEM", pkcs1, ka},
		{"bare base64", bareBase64(t, a), ka},
		{"two PEM blocks", a + b, append(ka[:1:1], kb[0])},
		{"two bare keys, comma separated", bareBase64(t, a) + ",\n" + bareBase64(t, b), append(ka[:1:1], kb[0])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKeys(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Fatalf("key %d differs", i+1)
				}
			}
		})
	}
	for _, bad := range []string{"", "not a key", a + "trailing junk", pemOf("PUBLIC KEY", []byte("junk"))} {
		if _, err := ParsePublicKeys(bad); err == nil {
			t.Errorf("ParsePublicKeys(%.30q) succeeded", bad)
		}
	}
}

func TestCanonicalString(t *testing.T) {
	got := canonical(map[string]string{
		"timestamp": "2026-11-23 18:00:00", "sign": "ignored", "app_auth_token": "",
		"biz_content": `{"data":"{\"k\":{\"value\":\"a&b=c 你好\"}}","to_open_id":"o1"}`,
		"method":      Method, "app_id": "2021", "version": "1.0", "sign_type": "RSA2", "format": "JSON", "charset": "utf-8",
	})
	want := `app_id=2021&biz_content={"data":"{\"k\":{\"value\":\"a&b=c 你好\"}}","to_open_id":"o1"}` +
		`&charset=utf-8&format=JSON&method=alipay.open.app.mini.templatemessage.send&sign_type=RSA2` +
		`&timestamp=2026-11-23 18:00:00&version=1.0`
	if got != want {
		t.Fatalf("canonical\n got %s\nwant %s", got, want)
	}
}

// openssl runs the openssl command line tool, skipping the test when it is
// not installed.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not on PATH: install it to cross-check RSA2 signatures against an independent implementation")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSignatureVerifiesWithOpenSSL: what herald signs, openssl accepts as
// SHA256withRSA by the app key over the same canonical string.
func TestSignatureVerifiesWithOpenSSL(t *testing.T) {
	dir := t.TempDir()
	k := keys(t)
	c := clientFor(t, "http://127.0.0.1:1/gateway.do", nil)
	form, err := c.request(testJob("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for key := range form {
		params[key] = form.Get(key)
	}
	sig, err := base64.StdEncoding.DecodeString(form.Get("sign"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "pub.pem", k.AppPublicKey)
	writeFile(t, dir, "data.txt", canonical(params))
	writeFile(t, dir, "sig.bin", string(sig))
	out := openssl(t, dir, "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "data.txt")
	if !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl: %s", out)
	}
}

// TestVerifiesOpenSSLSignature: what openssl signs with the gateway key,
// herald's verification accepts; altered bytes it rejects.
func TestVerifiesOpenSSLSignature(t *testing.T) {
	dir := t.TempDir()
	k := keys(t)
	raw := `{"code":"40004","msg":"Business Failed","sub_code":"USER_TEMPLATE_ILLEGAL","sub_msg":"模板不合法\u003c/"}`
	writeFile(t, dir, "priv.pem", k.GatewayPrivateKey)
	writeFile(t, dir, "data.txt", raw)
	openssl(t, dir, "dgst", "-sha256", "-sign", "priv.pem", "-out", "sig.bin", "data.txt")
	sig, err := os.ReadFile(filepath.Join(dir, "sig.bin"))
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := ParsePublicKeys(k.GatewayPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(sig)
	if !verify(pubs, []byte(raw), b64) {
		t.Fatal("openssl's signature does not verify")
	}
	if verify(pubs, []byte(strings.Replace(raw, "40004", "10000", 1)), b64) {
		t.Fatal("a tampered body verifies")
	}
	// The same answer, as Alipay sends it, passes the whole client path.
	c := clientFor(t, "http://unused/gateway.do", nil)
	a, err := parseResponse([]byte(`{"`+responseKey+`":`+raw+`,"sign":"`+b64+`"}`), responseKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.judge(a); !isPermanent(err, "invalid_template") {
		t.Fatalf("judge = %v, want dead letter invalid_template", err)
	}
}

// TestParsesOpenSSLKeys: keys in the forms openssl writes them load.
func TestParsesOpenSSLKeys(t *testing.T) {
	dir := t.TempDir()
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "pkcs8.pem")
	openssl(t, dir, "rsa", "-in", "pkcs8.pem", "-traditional", "-out", "pkcs1.pem")
	openssl(t, dir, "rsa", "-in", "pkcs8.pem", "-pubout", "-out", "pub.pem")
	openssl(t, dir, "rsa", "-in", "pkcs8.pem", "-RSAPublicKey_out", "-out", "pub1.pem")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	k8, err := ParsePrivateKey(read("pkcs8.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read("pkcs1.pem"), "BEGIN RSA PRIVATE KEY") {
		t.Fatalf("openssl did not write PKCS#1:\n%.40s", read("pkcs1.pem"))
	}
	k1, err := ParsePrivateKey(read("pkcs1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := ParsePrivateKey(bareBase64(t, read("pkcs1.pem")))
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := ParsePublicKeys(read("pub.pem") + read("pub1.pem"))
	if err != nil || len(pubs) != 2 {
		t.Fatalf("%d public keys, %v", len(pubs), err)
	}
	if !k8.Equal(k1) || !k8.Equal(kb) || !pubs[0].Equal(&k8.PublicKey) || !pubs[1].Equal(&k8.PublicKey) {
		t.Fatal("the forms of one key parse to different keys")
	}
}
