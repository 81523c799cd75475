package push

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// KeyLen is the length of an EncodingAESKey: 43 letters and digits, the
// base64 of a 32-byte AES key without its trailing "=".
const KeyLen = 43

// padBlock is the block size of WeChat's PKCS#7 padding, not AES's 16.
const padBlock = 32

// Errors, each wrapped with detail. The receiver answers 401 to all but
// ErrMalformed, which it answers 400.
var (
	// ErrSignature: signature is missing or does not match the token.
	ErrSignature = errors.New("bad signature")
	// ErrMsgSignature: msg_signature is missing or does not match Encrypt.
	ErrMsgSignature = errors.New("bad msg_signature")
	// ErrStale: timestamp is missing or more than the allowed skew off.
	ErrStale = errors.New("timestamp out of range")
	// ErrMode: a plaintext push to an app with an EncodingAESKey, or an
	// encrypted one to an app without.
	ErrMode = errors.New("push mode does not match the app's settings")
	// ErrDecrypt: the key does not decrypt Encrypt (bad length, padding or
	// framing); with a valid msg_signature this means the wrong key.
	ErrDecrypt = errors.New("cannot decrypt")
	// ErrAppID: the decrypted message names another app.
	ErrAppID = errors.New("appid mismatch")
	// ErrMalformed: the body or the message cannot be parsed.
	ErrMalformed = errors.New("malformed push")
)

// Key is a decoded EncodingAESKey: an AES-256 key whose first 16 bytes
// are also the CBC IV. It is safe for concurrent use.
type Key struct {
	block cipher.Block
	iv    [aes.BlockSize]byte
}

// ParseKey decodes an EncodingAESKey as the WeChat console shows it. The
// error never quotes the key.
func ParseKey(encodingAESKey string) (*Key, error) {
	if len(encodingAESKey) != KeyLen || !alnum(encodingAESKey) {
		return nil, fmt.Errorf("encoding aes key: want %d letters and digits", KeyLen)
	}
	raw, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(raw) != 32 {
		return nil, errors.New("encoding aes key: not base64 of 32 bytes")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("encoding aes key: %w", err)
	}
	k := &Key{block: block}
	copy(k.iv[:], raw)
	return k, nil
}

func alnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Decrypt opens Encrypt (standard base64) and returns the message and the
// appid it carries. Errors wrap [ErrMalformed] (not base64) or
// [ErrDecrypt]. Call it only on an Encrypt whose msg_signature holds.
func (k *Key) Decrypt(encrypted string) (msg []byte, appID string, err error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encrypted))
	if err != nil {
		return nil, "", fmt.Errorf("%w: Encrypt is not base64", ErrMalformed)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: %d bytes of ciphertext, not whole AES blocks", ErrDecrypt, len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(k.block, k.iv[:]).CryptBlocks(pt, ct)
	n := int(pt[len(pt)-1])
	if n < 1 || n > padBlock || n > len(pt) {
		return nil, "", fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	for _, b := range pt[len(pt)-n:] {
		if int(b) != n {
			return nil, "", fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
	}
	pt = pt[:len(pt)-n]
	if len(pt) < 20 {
		return nil, "", fmt.Errorf("%w: %d bytes, too short for the framing", ErrDecrypt, len(pt))
	}
	size := binary.BigEndian.Uint32(pt[16:20])
	if uint64(size) > uint64(len(pt)-20) {
		return nil, "", fmt.Errorf("%w: message length %d beyond the %d bytes decrypted", ErrDecrypt, size, len(pt)-20)
	}
	return pt[20 : 20+size], string(pt[20+size:]), nil
}

// Encrypt frames msg and appID as WeChat does (random(16) | length | msg
// | appid), pads to 32 bytes and encrypts; the result is standard base64.
// random supplies the 16 random bytes; nil means crypto/rand.
func (k *Key) Encrypt(msg []byte, appID string, random io.Reader) (string, error) {
	if len(msg) > math.MaxUint32 {
		return "", errors.New("encrypt: message too long")
	}
	if random == nil {
		random = rand.Reader
	}
	size := 20 + len(msg) + len(appID)
	n := padBlock - size%padBlock
	pt := make([]byte, size+n)
	if _, err := io.ReadFull(random, pt[:16]); err != nil {
		return "", fmt.Errorf("encrypt: random bytes: %w", err)
	}
	binary.BigEndian.PutUint32(pt[16:20], uint32(len(msg)))
	copy(pt[20:], msg)
	copy(pt[20+len(msg):], appID)
	for i := size; i < len(pt); i++ {
		pt[i] = byte(n)
	}
	cipher.NewCBCEncrypter(k.block, k.iv[:]).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt), nil
}

// Sign is WeChat's signature over parts: the hex SHA-1 of the parts
// sorted lexically and joined. signature = Sign(token, timestamp, nonce);
// msg_signature = Sign(token, timestamp, nonce, Encrypt).
func Sign(parts ...string) string {
	sorted := slices.Clone(parts)
	slices.Sort(sorted)
	h := sha1.New()
	for _, p := range sorted {
		_, _ = io.WriteString(h, p)
	}
	var sum [sha1.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// validSignature compares a received signature with Sign(parts...) in
// constant time; hex case does not matter.
func validSignature(got string, parts ...string) bool {
	want := Sign(parts...)
	return len(got) == len(want) && subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}
