package faulttest_test

import (
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
)

type fate struct {
	hang   bool
	status int
	drop   bool
}

func TestNext(t *testing.T) {
	t.Parallel()
	var f faulttest.Faults
	next := func() fate { h, s, d := f.Next(); return fate{h, s, d} }
	if got := next(); got != (fate{}) {
		t.Fatalf("zero value: %+v", got)
	}
	f.Fail(2, 503)
	f.Drop(1)
	// Fail first, then Drop, each spent by the requests it applies to.
	for i, want := range []fate{{status: 503}, {status: 503}, {drop: true}, {}} {
		if got := next(); got != want {
			t.Errorf("request %d: %+v, want %+v", i, got, want)
		}
	}
	// Hang comes before all and spends nothing.
	f.Fail(1, 500)
	f.Hang()
	for range 3 {
		if got := next(); got != (fate{hang: true}) {
			t.Fatalf("hanging: %+v", got)
		}
	}
	if !f.Hanging() {
		t.Error("Hanging after Hang")
	}
	f.Reset()
	if got := next(); got != (fate{}) || f.Hanging() {
		t.Errorf("after Reset: %+v", got)
	}
}

func TestTake(t *testing.T) {
	t.Parallel()
	var f faulttest.Faults
	f.Fail(1, 429)
	f.Drop(1)
	if s := f.TakeFail(); s != 429 {
		t.Errorf("TakeFail = %d", s)
	}
	if s := f.TakeFail(); s != 0 {
		t.Errorf("second TakeFail = %d", s)
	}
	if !f.TakeDrop() || f.TakeDrop() {
		t.Error("TakeDrop: want one drop")
	}
}

// A call recorded early is recorded once, where RecordEarly put it; All
// copies with clone; Reset forgets.
func TestCalls(t *testing.T) {
	t.Parallel()
	var l faulttest.Calls[string]
	a, b, c := "a", "b", "c"
	l.RecordEarly(&b) // a dropped request, recorded before the others answer
	l.Record(&a)
	l.Record(&b) // its handler's deferred Record: nothing more
	l.Record(&c)
	got := l.All(func(s string) string { return s + "'" })
	if want := []string{"b'", "a'", "c'"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("calls %q, want %q", got, want)
	}
	l.Reset()
	if got := l.All(func(s string) string { return s }); len(got) != 0 {
		t.Errorf("after Reset: %q", got)
	}
}
