package job

import (
	"strconv"
	"strings"
	"testing"
)

// benchJob is a job of about 400 bytes, the size herald bench publishes.
func benchJob() []byte {
	var b strings.Builder
	b.WriteString(`{"id":"order-42-shipped","platform":"wechat","app":"default","template_id":"TEMPLATE-abcdefghijklmnop",` +
		`"to_user":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","page":"pages/order/detail?id=42","data":{`)
	for i := 1; i <= 8; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"thing` + strconv.Itoa(i) + `":{"value":"value of keyword ` + strconv.Itoa(i) + `"}`)
	}
	b.WriteString(`},"wechat":{"miniprogram_state":"formal","lang":"zh_CN"}}`)
	return []byte(b.String())
}

func BenchmarkDecode(b *testing.B) {
	data := benchJob()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, WeChat); err != nil {
			b.Fatal(err)
		}
	}
}
