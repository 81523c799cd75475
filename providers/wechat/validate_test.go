package wechat

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

func TestValidate(t *testing.T) {
	c := &Client{}
	tests := []struct {
		name      string
		give      map[string]string
		wantField string // "" means valid
	}{
		{"typical", map[string]string{"thing1": "订单已发货", "time2": "2026-03-01 12:00", "amount3": "¥99.00",
			"character_string4": "SO-2026-0001", "phrase5": "已发货", "number6": "3", "name7": "张三"}, ""},
		{"thing at 20 runes", map[string]string{"thing1": strings.Repeat("字", 20)}, ""},
		{"thing at 21 runes", map[string]string{"thing1": strings.Repeat("字", 21)}, "data.thing1.value"},
		{"emoji allowed", map[string]string{"thing1": "到货啦🎉"}, ""},
		{"empty", map[string]string{"thing2": ""}, "data.thing2.value"},
		{"newline", map[string]string{"thing3": "a\nb"}, "data.thing3.value"},
		{"number with a letter", map[string]string{"number1": "12a"}, "data.number1.value"},
		{"number with 33 digits", map[string]string{"number1": strings.Repeat("1", 33)}, "data.number1.value"},
		{"number with decimals", map[string]string{"number1": "1234.5678"}, ""},
		{"letter with a digit", map[string]string{"letter1": "abc1"}, "data.letter1.value"},
		{"letter with Chinese", map[string]string{"letter1": "ab中"}, "data.letter1.value"},
		{"symbol of 6", map[string]string{"symbol1": "%%%%%%"}, "data.symbol1.value"},
		{"symbol with a letter", map[string]string{"symbol1": "%a"}, "data.symbol1.value"},
		{"character_string with Chinese", map[string]string{"character_string1": "AB中"}, "data.character_string1.value"},
		{"character_string of 33", map[string]string{"character_string1": strings.Repeat("A", 33)}, "data.character_string1.value"},
		{"time without digits", map[string]string{"time1": "明天下午"}, "data.time1.value"},
		{"time in an unusual format is left to WeChat", map[string]string{"time1": "15时30分"}, ""},
		{"date", map[string]string{"date1": "2026年3月1日"}, ""},
		{"amount of 11 integer digits", map[string]string{"amount1": "¥12345678901"}, "data.amount1.value"},
		{"amount with 元", map[string]string{"amount1": "100.50元"}, ""},
		{"amount without digits", map[string]string{"amount1": "免费"}, "data.amount1.value"},
		{"phone with letters", map[string]string{"phone_number1": "call 110"}, "data.phone_number1.value"},
		{"phone of 17", map[string]string{"phone_number1": "+86-0766-66888866"}, ""},
		{"car number", map[string]string{"car_number1": "粤A12345"}, ""},
		{"car number of 9", map[string]string{"car_number1": "粤A1234567"}, "data.car_number1.value"},
		{"car number with Chinese inside", map[string]string{"car_number1": "粤A中345"}, "data.car_number1.value"},
		{"name of 11 Chinese", map[string]string{"name1": strings.Repeat("张", 11)}, "data.name1.value"},
		{"name of 20 letters", map[string]string{"name1": strings.Repeat("a", 20)}, ""},
		{"mixed name counts as Chinese", map[string]string{"name1": "张abcdefghij"}, "data.name1.value"},
		{"phrase of 6", map[string]string{"phrase1": "一二三四五六"}, "data.phrase1.value"},
		{"phrase with letters", map[string]string{"phrase1": "OK"}, "data.phrase1.value"},
		{"enum is not checked", map[string]string{"enum1": ""}, ""},
		{"unknown type is not checked", map[string]string{"future1": strings.Repeat("x", 500)}, ""},
		{"smallest bad key reported", map[string]string{"thing9": "", "thing1": "", "thing5": ""}, "data.thing1.value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := job.Job{TemplateID: "TPL", Data: map[string]job.Value{}}
			for k, v := range tt.give {
				j.Data[k] = job.Value{Value: v}
			}
			err := c.Validate(j)
			d := retry.Decide(err)
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.wantField == "":
			case d.Action != retry.DeadLetter || d.Reason != job.ReasonInvalidTemplateData:
				t.Fatalf("Validate = %v, decision %+v; want dead letter invalid_template_data", err, d)
			case d.Detail.Field != tt.wantField || !strings.HasPrefix(d.Detail.Message, tt.wantField+" ") || d.Detail.Code != "":
				t.Fatalf("Detail = %+v, want field %s named in the message", d.Detail, tt.wantField)
			}
		})
	}
}
