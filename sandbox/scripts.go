package sandbox

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// Script is one scripted answer: what in a request triggers it, and what
// the sandbox answers.
type Script struct {
	Match  string
	Answer string
}

// wxScript is a scripted answer keyed on the touser prefix.
type wxScript struct {
	prefix string
	answer string        // for the documentation
	code   int           // errcode to answer
	msg    string        // its errmsg (a rid is appended)
	status int           // answer this HTTP status instead
	extra  time.Duration // succeed after this extra latency instead
	once   bool          // answer code only to the recipient's first call
	async  bool          // succeed; the sent event reports a failure
}

// wechatScripts are checked in order; the first matching prefix wins.
func wechatScripts() []wxScript {
	return []wxScript{
		{prefix: "refuse", answer: "errcode 43101 (user refused / no grant left)",
			code: 43101, msg: "user refuse to accept the msg"},
		{prefix: "badopenid", answer: "errcode 40003 (invalid openid)",
			code: 40003, msg: "invalid openid"},
		{prefix: "sensitive", answer: "errcode 45168 (keyword in blacklist)",
			code: 45168, msg: "keyword in blacklist"},
		{prefix: "busy", answer: "errcode 43108 (concurrent calls to the same openid)",
			code: 43108, msg: "Cannot make concurrent calls to the same OpenID, please try again"},
		{prefix: "quota", answer: "errcode 45011 (per-minute quota)",
			code: 45011, msg: "api minute-quota reach limit  mustslower  retry next minute"},
		{prefix: "dailyquota", answer: "errcode 45009 (daily quota)",
			code: 45009, msg: "reach max api daily quota limit"},
		{prefix: "unauthorized", answer: "errcode 48001 (api unauthorized)",
			code: 48001, msg: "api unauthorized"},
		{prefix: "fail", answer: "errcode -1 (system error), always",
			code: -1, msg: "system error"},
		{prefix: "flaky", answer: "errcode -1 on the recipient's first call, then success",
			code: -1, msg: "system error", once: true},
		{prefix: "http500", answer: "HTTP 500",
			status: http.StatusInternalServerError},
		{prefix: "slow", answer: "success after 2 s of extra latency",
			extra: 2 * time.Second},
		{prefix: "unknown", answer: "errcode 99999 (a code herald does not know)",
			code: 99999, msg: "sandbox: unknown error"},
		{prefix: asyncFailPrefix, answer: "success; its sent event reports ErrorCode " + asyncFailCode + " (" + asyncFailStatus + ")",
			async: true},
	}
}

// WeChatScripts lists the WeChat scripted answers. The touser rules apply
// to a send that passes every other check (token, body, template, page,
// values).
func WeChatScripts() []Script {
	out := []Script{
		{Match: "template_id bad…", Answer: "errcode 40037 (invalid template_id)"},
		{Match: "page missing/…", Answer: "errcode 41030 (invalid page)"},
	}
	for _, sc := range wechatScripts() {
		out = append(out, Script{Match: "touser " + sc.prefix + "…", Answer: sc.answer})
	}
	return out
}

// ScriptsHelp describes the scripted answers, for herald sandbox --help.
func ScriptsHelp() string {
	var b strings.Builder
	b.WriteString("WeChat scripted answers (POST /cgi-bin/message/subscribe/send):\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range WeChatScripts() {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Match, s.Answer)
	}
	fmt.Fprintf(tw, "  %s\t%s\n", "any other touser", `success {"errcode":0,"errmsg":"ok","msgid":<19 digits>}`)
	_ = tw.Flush()
	b.WriteString(`Values break WeChat's keyword rules -> 47003 "argument invalid! data.<key>.value invalid rid: …"
(empty: "… is emtpy rid: …"). Tokens: 41001 missing, 40001 invalid or rotated, 42001 expired.
`)
	return b.String()
}
