package sandbox

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkWeChatSend measures the success path of a send, handler only.
func BenchmarkWeChatSend(b *testing.B) {
	srv := New(Options{})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cgi-bin/stable_token",
		strings.NewReader(`{"grant_type":"client_credential","appid":"`+DevWeChatAppID+`","secret":"`+DevWeChatSecret+`"}`)))
	token := strings.Split(rec.Body.String(), `"`)[3]
	target := "/cgi-bin/message/subscribe/send?access_token=" + url.QueryEscape(token)
	const body = `{"touser":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","template_id":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",` +
		`"page":"pages/index?id=1","data":{"thing1":{"value":"订单已发货"},"time2":{"value":"2026-03-01 12:00"},` +
		`"character_string3":{"value":"SO-2026-000123"},"amount4":{"value":"¥99.00"}},"miniprogram_state":"formal","lang":"zh_CN"}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `{"errcode":0,`) {
				b.Fatalf("answer %d %s", rec.Code, rec.Body)
			}
		}
	})
}
