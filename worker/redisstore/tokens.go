package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/providers/wechat"
)

// Tokens shares WeChat access tokens between replicas ([wechat.TokenStore]).
//
// Keys (with the prefix, "herald:" by default):
//
//	<prefix>wxtoken:<appid>        hash: v (token), r (refresh at, unix ms),
//	                               e (expires at, unix ms); expires with the token
//	<prefix>wxtoken:<appid>:lock   refresh lock: a random owner id, SET NX PX
type Tokens struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ wechat.TokenStore = (*Tokens)(nil)

// NewTokens returns a token store on rdb; prefix "" means "herald:".
func NewTokens(rdb redis.UniversalClient, prefix string) *Tokens {
	if prefix == "" {
		prefix = "herald:"
	}
	return &Tokens{rdb: rdb, prefix: prefix}
}

func (s *Tokens) key(appID string) string { return s.prefix + "wxtoken:" + appID }

// putTokenScript stores a token and its expiry at once.
// KEYS[1] token hash; ARGV[1] token, ARGV[2] refresh at ms, ARGV[3] expires at ms.
var putTokenScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

// invalidateTokenScript deletes the token only if it is ARGV[1], so a
// replica with a stale token cannot delete the one that replaced it.
var invalidateTokenScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// unlockTokenScript releases the lock only for its owner ARGV[1].
var unlockTokenScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Get implements [wechat.TokenStore].
func (s *Tokens) Get(ctx context.Context, appID string) (wechat.Token, error) {
	vals, err := s.rdb.HMGet(ctx, s.key(appID), "v", "r", "e").Result()
	if err != nil {
		return wechat.Token{}, fmt.Errorf("get token: %w", err)
	}
	v, _ := vals[0].(string)
	r, _ := vals[1].(string)
	e, _ := vals[2].(string)
	if v == "" {
		return wechat.Token{}, wechat.ErrNoToken
	}
	refreshAt, err1 := strconv.ParseInt(r, 10, 64)
	expiresAt, err2 := strconv.ParseInt(e, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return wechat.Token{}, fmt.Errorf("get token: corrupt entry: %w", err)
	}
	return wechat.Token{Value: v, RefreshAt: time.UnixMilli(refreshAt), ExpiresAt: time.UnixMilli(expiresAt)}, nil
}

// Put implements [wechat.TokenStore]. A token already expired is not
// stored.
func (s *Tokens) Put(ctx context.Context, appID string, t wechat.Token) error {
	if t.Value == "" {
		return errors.New("put token: empty token")
	}
	err := putTokenScript.Run(ctx, s.rdb, []string{s.key(appID)},
		t.Value, t.RefreshAt.UnixMilli(), t.ExpiresAt.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("put token: %w", err)
	}
	return nil
}

// Invalidate implements [wechat.TokenStore].
func (s *Tokens) Invalidate(ctx context.Context, appID, token string) error {
	if err := invalidateTokenScript.Run(ctx, s.rdb, []string{s.key(appID)}, token).Err(); err != nil {
		return fmt.Errorf("invalidate token: %w", err)
	}
	return nil
}

// Lock implements [wechat.TokenStore]. The lock expires after ttl even if
// its holder dies; unlock deletes it only while this caller still owns it.
func (s *Tokens) Lock(ctx context.Context, appID string, ttl time.Duration) (func(), bool, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	owner := hex.EncodeToString(b[:])
	key := s.key(appID) + ":lock"
	ok, err := s.rdb.SetNX(ctx, key, owner, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("lock token: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		// Unlock must run even when the caller's context has ended; the
		// lock's TTL bounds the damage if it cannot.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = unlockTokenScript.Run(uctx, s.rdb, []string{key}, owner).Err()
	}, true, nil
}
