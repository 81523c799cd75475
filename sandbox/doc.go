// Package sandbox is a real HTTP server that behaves like the platform APIs
// herald calls, for development, tests and benchmarks. `herald sandbox`
// serves it on loopback; tests mount it with httptest.NewServer.
//
// # WeChat (/cgi-bin/...)
//
//   - GET /cgi-bin/token?grant_type=client_credential&appid=&secret= issues a
//     new token on every call; the previous one stays valid 5 minutes.
//   - POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}
//     returns the same token while it is valid (normal mode), rotating it 5
//     minutes before expiry with the old one still valid; force_refresh
//     revokes the current token at once. Both endpoints answer 40002 for a
//     bad grant_type, 41002/41004 for a missing appid/secret, 40013 for an
//     unknown appid and 40125 for a wrong secret.
//   - POST /cgi-bin/message/subscribe/send?access_token= checks, in order:
//     the token (41001 missing, 40001 invalid, rotated or revoked, 42001
//     expired), the body (47001 unparsable JSON), touser (40003 empty),
//     template_id (40037), page (41030), the keyword values (47003, with
//     errmsg "argument invalid! data.<key>.value invalid rid: <hex>-<hex>-<hex>",
//     or "... is emtpy rid: ..." for an empty value), then the scripted
//     answers below. Success is {"errcode":0,"errmsg":"ok","msgid":<19-digit int64>}.
//
// The keyword rules are the documented ones taken literally (see
// wechat_rules.go); herald's own check before sending is looser, so the
// sandbox rejects everything herald rejects.
//
// # Scripted answers
//
// By template_id and page:
//
//	template_id bad…     errcode 40037 (invalid template_id)
//	page missing/…       errcode 41030 (invalid page)
//
// By touser prefix, for a send that passes every other check:
//
//	refuse…        errcode 43101 (user refused / no grant left)
//	badopenid…     errcode 40003 (invalid openid)
//	sensitive…     errcode 45168 (keyword in blacklist)
//	busy…          errcode 43108 (concurrent calls to the same openid)
//	quota…         errcode 45011 (per-minute quota)
//	dailyquota…    errcode 45009 (daily quota)
//	unauthorized…  errcode 48001 (api unauthorized)
//	fail…          errcode -1 (system error), always
//	flaky…         errcode -1 on the recipient's first call, then success
//	http500…       HTTP 500
//	slow…          success after 2 s of extra latency
//	unknown…       errcode 99999 (a code herald does not know)
//
// The same list is printed by `herald sandbox --help` ([ScriptsHelp]).
//
// # Test hooks
//
// [Server.Stats] counts token fetches per endpoint, send calls and accepted
// sends (also GET /sandbox/stats, for a worker in another process). With
// Options.Record, [Server.Accepted] (GET /sandbox/messages) keeps every
// accepted message so tests can count duplicates. Control endpoints:
// POST /sandbox/wechat/rotate?appid= invalidates the current tokens (as a
// force refresh elsewhere would), POST /sandbox/wechat/expire?appid= makes
// them expire, POST /sandbox/wechat/outage?seconds=N makes every send answer
// HTTP 503 for N seconds (0 ends it).
//
// # Invariants
//
// Every method is safe for concurrent use. The success path is cheap enough
// for benchmarks at 15k requests/s: atomic counters, no regexp compiled per
// call, no goroutine per call, and latency waits on a timer. A platform is
// one file implementing the unexported api interface plus one s.add line in
// New; Alipay's gateway belongs at /gateway.do.
package sandbox
