package redisstore

// ACLRules are the Redis ACL rules (ACL SETUSER <user> on ><password>
// followed by these) of a user that can run the Store, the Tokens and Ping
// under the default "herald:" prefix and nothing else: herald's keys only,
// no channels, and only the commands the clients send and their scripts
// call. Another prefix needs its own key pattern in place of ~herald:*.
//
// The commands are those of the job and token scripts (the subscription
// ledger's included: sorted sets of applied events, lists of changes), of
// Forget (DEL), of the token reads and lock (HMGET, SET), of the reads of
// herald jobs show and subscriptions show (HGETALL, LRANGE, GET) and of
// Ping (TIME, PING, SET), and on a Redis Cluster CLUSTER SLOTS, which the
// client learns the slot map from and Ping the masters (the user must
// exist on every node).
// Connecting needs no rule: HELLO and AUTH are open to every user, and the
// client ignores a refused CLIENT SETINFO.
const ACLRules = "resetkeys ~herald:* resetchannels -@all " +
	"+ping +time +evalsha +eval +cluster|slots " +
	"+get +set +del +hget +hmget +hgetall +hset +hdel +hincrby +pexpire +pexpireat +pttl " +
	"+zadd +zscore +zremrangebyscore +lpush +ltrim +lrange"
