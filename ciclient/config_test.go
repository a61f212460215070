package ciclient

import "testing"

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"900": 900, "15m": 900, "1h": 3600} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-5", "1.5s", "soon"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}
