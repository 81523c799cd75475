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
//	asyncfail…     success; with pushes on, its subscribe_msg_sent_event
//	               reports ErrorCode 10005 "fail:user block" (made up:
//	               WeChat does not document its non-zero codes)
//
// The same list is printed by `herald sandbox --help` ([ScriptsHelp]).
//
// # Subscription pushes and grants (WeChat)
//
// With Options.WeChatPush the sandbox is also WeChat's push side: for each
// appid it pushes subscription events to a receiver URL with the app's
// token, EncodingAESKey, mode (plain, compatible or safe) and format (xml
// or json), signed and encrypted exactly as WeChat does (package
// providers/wechat/push). XML items sit under <SubscribeMsgPopupEvent>
// (and the other events' wrappers); JSON puts them under a top-level List,
// an object for one item and an array for several, with numbers for
// CreateTime, MsgID and ErrorCode. Pushes leave in the background on a
// bounded queue (10000; more are dropped and counted), each tried up to 3
// times, Options.PushRetryWait apart (1 s by default), until the receiver
// answers "success" (or an empty body) with HTTP 200; [Server.Close] stops
// them. Stats["wechat"] counts pushes made, failed, retried and dropped.
//
//   - POST /sandbox/wechat/subscribe?appid=&openid=&template=T1&template=T2&status=accept
//     acts out a user answering the subscription popup (status accept, the
//     default, or reject): one subscribe_msg_popup_event with an item per
//     template (PopupScene 0). appid may be left out when one app is
//     configured.
//   - POST /sandbox/wechat/change?appid=&openid=&template=... acts out a
//     user turning templates off: one subscribe_msg_change_event, reject.
//   - Every accepted send pushes a subscribe_msg_sent_event with its MsgID
//     and ErrorCode 0 ("success"), or the scripted failure of asyncfail…
//     recipients.
//
// With Options.Grants the sandbox keeps one-time grants per (appid,
// openid, template) as WeChat does: an accept adds one (they accumulate),
// a send takes one, a change event takes them all, and a send with none
// left answers 43101 "user refuse to accept the msg". Scripted answers
// come first: refuse… still answers 43101 whatever the grants.
// GET /sandbox/wechat/grants?appid=&openid=&template= tells how many are
// left. The subscribe and change calls answer the templates, whether a
// push was queued ("pushed") and, with grants, each template's count.
//
// # Alipay (POST /gateway.do)
//
// The OpenAPI v2 gateway for alipay.open.app.mini.templatemessage.send and
// alipay.open.app.messagetemplate.subscribe.query, with the apps of
// Options.AlipayApps (app_id -> app public key). Common
// parameters come from the query or the form body. It checks, in order:
// app_id (40002 isv.invalid-app-id, in error_response and unsigned, as the
// gateway knows no key for it), sign present (40001 isv.missing-signature),
// sign_type RSA2 (40002 isv.invalid-signature-type), the timestamp
// (yyyy-MM-dd HH:mm:ss in Asia/Shanghai, within 10 minutes: 40002
// isv.invalid-timestamp), the signature over the same canonical string
// Alipay uses — every parameter but sign and empty ones, sorted, k=v
// joined by & with raw values, SHA256withRSA — (40002
// isv.invalid-signature, sub_msg echoing the string it verified), then
// method (one of the two), format, charset and version (40002
// isv.invalid-*). These gateway errors come in error_response, for both
// methods. Then, for the send, under
// alipay_open_app_mini_templatemessage_send_response: biz_content (40001
// missing, 40002 isv.invalid-parameter for bad JSON, both or neither of
// to_open_id and to_user_id, a page over 128 characters, a data that is
// not a JSON string or is over 2048 bytes), the keyword values (40004
// USER_TEMPLATE_LACK_KEYWORD for no keyword or an empty value,
// USER_KEYWORD_LENGTH_ERROR for a value over 50 characters), then the
// scripted answers below. Success is {"code":"10000","msg":"Success"}.
// Every answer but invalid-app-id carries a sign made with
// Options.AlipayGatewayKey over the response value's exact bytes.
// [NewAlipayKeys] and [LoadOrGenerateAlipayKeys] make a matching key set;
// `herald sandbox --alipay-keys DIR` writes one and prints a config.
//
// By recipient (to_open_id or to_user_id, and the query's open_id or
// user_id) prefix, for a call that passes every other check, for both
// methods (badsign… answers the query's success with a bad sign):
//
//	illegal…      40004 USER_TEMPLATE_ILLEGAL (bad or deleted template)
//	lackkw…       40004 USER_TEMPLATE_LACK_KEYWORD (a keyword is missing)
//	toolong…      40004 USER_KEYWORD_LENGTH_ERROR (a value is over 50 characters)
//	formid…       40004 FORM_ID_OVER_TIME (form id older than 7 days)
//	bizfail…      40004 SANDBOX_BUSINESS_FAILED (a sub_code herald does not know)
//	unavailable…  20000 isp.unknow-error (service currently unavailable)
//	badsign…      success whose sign does not verify (a forged answer; not accepted)
//
// The same list is printed by [AlipayScriptsHelp]. Latency, outages
// (POST /sandbox/alipay/outage?seconds=N), Stats["alipay"] and Record
// work as for WeChat; Stats["alipay"] counts queries apart (QueryCalls).
//
// # Alipay subscription query
//
// alipay.open.app.messagetemplate.subscribe.query checks biz_content
// (40001 missing, 40002 isv.invalid-parameter for bad JSON or both open_id
// and user_id, 40001 isv.missing-user-id for neither, 40001
// isv.missing-template-id-list for no template, 40002
// isv.invalid-parameter for more than 3, an empty id or a list that is not
// an array of strings), then answers, under
// alipay_open_app_messagetemplate_subscribe_query_response and signed,
// {"code":"10000","msg":"Success","show_component":…,"subscribe_relations":[…]}
// with the relations the sandbox holds for that app, user and those
// templates, in the order asked; templates never set are omitted (the list
// too when none is set), as Alipay omits users who never subscribed.
// show_component is true when some template asked about is not
// subscribed (no relation, or a subscribe_state other than "1"): the
// sandbox's rule, not a documented one.
//
//   - POST /sandbox/alipay/subscribe?app_id=&user=&template=T1&template=T2&state=1&subscribe_type=onetime&keep_state=0&show=true
//     sets the relations of a user (an open_id or a user_id alike) to 1 to
//     3 templates and answers them. state is the subscribe_state to report
//     ("1" by default), subscribe_type "onetime" by default, keep_state
//     none by default, show true by default; app_id may be left out when
//     one app is configured. [Server.SetAlipayRelation] does the same.
//
// Alipay does not document the value sets (platform-apis B.5); the
// defaults are those an older Alipay SDK model describes, and the sandbox
// reports whatever it is given. With Options.Grants, setting state "1" on
// a onetime relation adds a grant (they accumulate), any other relation
// has none, an accepted send to that user and template takes one, and the
// relation goes with the last one (what Alipay reports then is not
// documented either). A send is never refused for want of a grant: Alipay's
// sub_code for it is unknown. The control's answer carries the grants.
//
// # Test hooks
//
// [Server.Stats] counts token fetches per endpoint, send calls and accepted
// sends (also GET /sandbox/stats, for a worker in another process). With
// Options.Record, [Server.Accepted] (GET /sandbox/messages) keeps every
// accepted message so tests can count duplicates; [Server.TakeAccepted]
// also forgets them. Control endpoints:
// POST /sandbox/wechat/rotate?appid= invalidates the current tokens (as a
// force refresh elsewhere would), POST /sandbox/wechat/expire?appid= makes
// them expire, POST /sandbox/wechat/outage?seconds=N makes every send answer
// HTTP 503 for N seconds (0 ends it), POST /sandbox/alipay/subscribe sets
// the relations Alipay's query reports.
//
// # Invariants
//
// Every method is safe for concurrent use. The success path is cheap enough
// for benchmarks at 15k requests/s: atomic counters, no regexp compiled per
// call, no goroutine per call, and latency waits on a timer. A platform is
// one file implementing the unexported api interface plus one s.add line in
// New; Alipay's gateway belongs at /gateway.do.
package sandbox
