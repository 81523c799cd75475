// Package alipay delivers mini-program subscription messages through
// Alipay's OpenAPI v2 gateway (alipay.open.app.mini.templatemessage.send),
// signing requests with the app's RSA key and verifying every answer with
// Alipay's public key before believing it.
//
// A [Client] serves one Alipay app. [Client.Validate] checks a job against
// Alipay's documented limits before any call is made, and [Client.Send]
// posts one message. [Client.QuerySubscriptions] asks
// alipay.open.app.messagetemplate.subscribe.query which of up to 3
// templates a user subscribed to, for operators: it decides nothing for
// the worker. Every error Send returns carries its decision for the
// worker (see package retry and classify.go): the Alipay code table lives
// here and nowhere else. Platform answers are typed [*APIError] values that
// also implement retry.Detailer, so dead letters keep the sub_code (or
// code) and Alipay's message unchanged.
//
// Invariants:
//
//   - Requests are signed as platform-apis B.1 says: every parameter but
//     sign and empty ones, sorted by key, joined as k=v with & using raw
//     values, SHA256withRSA (PKCS#1 v1.5), standard base64. The timestamp
//     is Asia/Shanghai time, from a fixed UTC+8 zone (no tzdata needed).
//   - An answer is verified on the exact bytes of its response value, taken
//     from the body without re-encoding, and its fields are decoded from
//     those same bytes. Several Alipay public keys may be configured (key
//     rotation); any one verifying is enough.
//   - Both methods are signed alike and their answers verified alike; only
//     the response member differs (the method's name with underscores,
//     then _response).
//   - An answer that fails verification is never believed: the outcome is
//     unknown and the error is transient, so the job is retried and, if
//     that persists, dead-lettered as retries_exhausted; it is never
//     counted as delivered. A success or a business failure must be
//     signed; unsigned gateway errors (invalid-app-id carries no sign) are
//     classified by code, which can pause the app but never end a job.
//     A query believes no unsigned answer at all.
//   - The private key never appears in an error or in [Config.String].
//   - The package never logs; callers decide what to log from the errors.
package alipay
