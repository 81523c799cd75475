// Package wechat delivers mini-program subscription messages through the
// WeChat API (subscribeMessage.send) and owns the app's access token.
//
// A [Client] serves one WeChat app. [Client.Validate] checks template values
// against the documented keyword rules before any call is made, and
// [Client.Send] posts one message. Every error Send returns carries its
// decision for the worker (see package retry and classify.go): the WeChat
// errcode table lives here and nowhere else. Platform answers are typed
// [*APIError] values that also implement retry.Detailer, so dead letters keep
// the errcode, the errmsg byte for byte (rid included) and the offending
// field.
//
// Invariants:
//
//   - The app secret and access tokens never appear in an error string. The
//     URL in net/http's *url.Error carries the token, so transport errors are
//     rebuilt with it redacted.
//   - The access token is shared through a [TokenStore] by every replica.
//     Tokens are fetched in normal mode only (stable_token with
//     force_refresh=false by default); herald never force-refreshes. A
//     refresh happens under the store's lock, so one replica fetches while
//     the others keep using the still-valid token or wait for the new one;
//     within a process, one goroutine refreshes for all.
//   - The hot path costs an atomic load and a clock read: the store is read
//     only when the local copy is missing, due for refresh (about
//     expires_in-300 s after the fetch) or rejected by WeChat.
//   - The package never logs; callers decide what to log from the errors.
package wechat
