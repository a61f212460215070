package providers

import (
	"testing"
)

// TestDecodeTargetBool: a boolean field takes true or false, nothing else.
func TestDecodeTargetBool(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		raw     string
		want    bool
		wantErr bool
	}{
		{`{"flag": true}`, true, false},
		{`{"flag": false}`, false, false},
		{`{}`, false, false},
		{`{"flag": "true"}`, false, true},
		{`{"flag": 1}`, false, true},
		{`{"flag": null}`, false, true},
	} {
		var got bool
		err := DecodeTarget("test", []byte(tt.raw), []Field{{"flag", &got}})
		if tt.wantErr {
			if err == nil || err.Error() != "test: target.flag: must be a JSON boolean" {
				t.Errorf("%s: error %v, want target.flag: must be a JSON boolean", tt.raw, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.raw, got, err, tt.want)
		}
	}
}
