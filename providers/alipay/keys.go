package alipay

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// This file is the RSA2 half of platform-apis B.1 and B.3: loading keys,
// the canonical string requests are signed over, and SHA256withRSA
// (PKCS#1 v1.5) signatures. Error texts never quote key material.

// ParsePrivateKey reads an RSA private key given as PEM ("RSA PRIVATE KEY"
// for PKCS#1, "PRIVATE KEY" for PKCS#8) or as the bare base64 of either,
// as Alipay's key tool and console hand them out. A bare key is tried as
// PKCS#1, then as PKCS#8.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	der, err := keyDER(s, "private key")
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("private key is neither PKCS#1 nor PKCS#8 RSA")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, not RSA", k)
	}
	return rk, nil
}

// ParsePublicKeys reads one or more RSA public keys: PEM blocks ("PUBLIC
// KEY" for X.509 SubjectPublicKeyInfo, "RSA PUBLIC KEY" for PKCS#1), or
// bare base64 keys separated by commas. Several keys let answers signed
// with either the old or the new Alipay key verify during a rotation.
func ParsePublicKeys(s string) ([]*rsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	var ders [][]byte
	if strings.Contains(s, "-----BEGIN") {
		rest := []byte(s)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			ders = append(ders, b.Bytes)
		}
		if strings.TrimSpace(string(rest)) != "" {
			return nil, errors.New("public key: text after the last PEM block is not PEM")
		}
	} else {
		for part := range strings.SplitSeq(s, ",") {
			der, err := bareDER(part)
			if err != nil {
				return nil, fmt.Errorf("public key: %w", err)
			}
			ders = append(ders, der)
		}
	}
	if len(ders) == 0 {
		return nil, errors.New("public key: no key found")
	}
	keys := make([]*rsa.PublicKey, 0, len(ders))
	for i, der := range ders {
		k, err := parsePublicDER(der)
		if err != nil {
			return nil, fmt.Errorf("public key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parsePublicDER(der []byte) (*rsa.PublicKey, error) {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%T, not RSA", k)
		}
		return rk, nil
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("neither X.509 nor PKCS#1 RSA")
}

// keyDER returns the DER of a single key given as PEM or bare base64.
func keyDER(s, what string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty", what)
	}
	if strings.Contains(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			return nil, fmt.Errorf("%s: malformed PEM", what)
		}
		return b.Bytes, nil
	}
	der, err := bareDER(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return der, nil
}

// bareDER decodes a key's base64 body, ignoring white space (it may be
// wrapped) — the same bytes PEM armour around it would give.
func bareDER(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return nil, errors.New("empty key")
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// No detail: the decoder's error quotes an offset into the key.
		return nil, errors.New("neither PEM nor base64")
	}
	return der, nil
}

// canonical is the string a v2 request is signed over (platform-apis
// B.1): every parameter but sign and empty ones, sorted by key, joined as
// k=v with &, values raw (not URL-encoded).
func canonical(params map[string]string) string {
	keys := make([]string, 0, len(params))
	n := 0
	for k, v := range params {
		if k == "sign" || v == "" {
			continue
		}
		keys = append(keys, k)
		n += len(k) + len(v) + 2
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(n)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

// sign returns the standard base64 of SHA256withRSA (PKCS#1 v1.5) over
// msg.
func sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	sum := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verify reports whether sig (standard base64) is a SHA256withRSA
// signature of msg by any of keys.
func verify(keys []*rsa.PublicKey, msg []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) == 0 {
		return false
	}
	sum := sha256.Sum256(msg)
	for _, k := range keys {
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], raw) == nil {
			return true
		}
	}
	return false
}
