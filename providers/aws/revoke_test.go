package aws_test

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// setupIAM is setup with a fake IAM too, through AWS_ENDPOINT_URL_IAM.
func setupIAM(t *testing.T) (*ststest.Server, *ststest.IAMServer, *aws.Provider) {
	t.Helper()
	iam := ststest.NewIAM(t)
	t.Setenv("AWS_ENDPOINT_URL_IAM", iam.URL())
	s, p := setup(t, aws.Config{})
	return s, iam, p
}

// ownRole is a role of the account of the bridge's own key at the fake.
const ownRole = "arn:aws:iam::" + ststest.CallerAccount + ":role/ci/web-deploy"

func TestRevokePolicy(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 250e6, time.FixedZone("CET", 3600))
	want := `{"Statement":[{"Action":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-25T09:00:01Z"}},` +
		`"Effect":"Deny","Resource":["*"]}],"Version":"2012-10-17"}`
	if got := aws.RevokePolicy(at); got != want {
		t.Errorf("RevokePolicy:\n%s\nwant\n%s", got, want)
	}
	// A whole second stays as it is.
	if got := aws.RevokePolicy(at.Truncate(time.Second)); got != strings.Replace(want, "09:00:01", "09:00:00", 1) {
		t.Errorf("whole second: %s", got)
	}
}

func TestRevokeSessions(t *testing.T) {
	sts, iam, p := setupIAM(t)
	before := time.Now()
	for _, mode := range []string{"assume_role", "web_identity"} {
		iam.Reset()
		if err := p.RevokeSessions(t.Context(), target(t, map[string]string{"role_arn": ownRole, "region": "eu-west-1", "mode": mode}), before); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		calls := iam.Calls()
		if len(calls) != 1 {
			t.Fatalf("%s: IAM calls %+v", mode, calls)
		}
		c := calls[0]
		if c.Action != "PutRolePolicy" || c.Status != 200 || c.RoleName != "web-deploy" || c.PolicyName != aws.RevokePolicyName ||
			c.PolicyDocument != aws.RevokePolicy(before) || c.AccessKeyID != ststest.AccessKeyID || c.Region != "us-east-1" {
			t.Errorf("%s: IAM call %+v", mode, c)
		}
		if doc, ok := iam.RolePolicy("web-deploy", aws.RevokePolicyName); !ok || doc != aws.RevokePolicy(before) {
			t.Errorf("%s: the role's policy %q", mode, doc)
		}
	}
	var policy map[string]any
	doc, _ := iam.RolePolicy("web-deploy", aws.RevokePolicyName)
	if err := json.Unmarshal([]byte(doc), &policy); err != nil {
		t.Fatal(err)
	}
	st := policy["Statement"].([]any)[0].(map[string]any)
	if st["Effect"] != "Deny" || st["Condition"].(map[string]any)["DateLessThan"].(map[string]any)["aws:TokenIssueTime"] == nil {
		t.Errorf("policy %s", doc)
	}
	// The account is asked of STS once.
	n := 0
	for _, c := range sts.Calls() {
		if c.Action == "GetCallerIdentity" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("GetCallerIdentity called %d times", n)
	}
}

func TestRevokeSessionsRefused(t *testing.T) {
	_, iam, p := setupIAM(t)
	code := func(err error) string {
		t.Helper()
		var pe *providers.Error
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T)", err, err)
		}
		return pe.Code
	}
	now := time.Now()
	tgt := target(t, map[string]string{"role_arn": ownRole, "region": "eu-west-1"})

	iam.Refuse("AccessDenied")
	err := p.RevokeSessions(t.Context(), tgt, now)
	if code(err) != "AccessDenied" || !errors.Is(err, providers.ErrRefused) {
		t.Errorf("refused: %v", err)
	}
	iam.Refuse("")
	iam.RefuseRole("web-deploy", "NoSuchEntity")
	if err := p.RevokeSessions(t.Context(), tgt, now); code(err) != "NoSuchEntity" {
		t.Errorf("no such role: %v", err)
	}

	// A role of another account is never touched: IAM would act on a
	// namesake in the bridge's own account.
	iam.Reset()
	other := target(t, map[string]string{"role_arn": "arn:aws:iam::123456789012:role/web-deploy", "region": "eu-west-1"})
	if err := p.RevokeSessions(t.Context(), other, now); code(err) != "CrossAccountRole" {
		t.Errorf("cross-account: %v", err)
	}
	if err := p.RevokeSessions(t.Context(), json.RawMessage(`{"role_arn": "nope"}`), now); code(err) != "InvalidTarget" {
		t.Errorf("bad target: %v", err)
	}
	if n := len(iam.Calls()); n != 0 {
		t.Errorf("IAM called %d times", n)
	}
}

// The fake checks signatures like STS: an unknown key is refused.
func TestIAMFakeSignature(t *testing.T) {
	iam := ststest.NewIAM(t, ststest.WithKeys(ststest.Key{AccessKeyID: "AKIAOTHER", SecretAccessKey: "x"}))
	t.Setenv("AWS_ENDPOINT_URL_IAM", iam.URL())
	_, p := setup(t, aws.Config{})
	err := p.RevokeSessions(t.Context(), target(t, map[string]string{"role_arn": ownRole, "region": "eu-west-1"}), time.Now())
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "InvalidClientTokenId" {
		t.Fatalf("unknown key: %v", err)
	}
	if c := iam.Calls(); len(c) != 1 || c[0].Status != 403 || c[0].ErrorCode != "InvalidClientTokenId" {
		t.Fatalf("calls %+v", c)
	}
}

// Each Provider keeps its own IAM client and account: a second provider,
// made for other endpoints, asks its own STS and IAM, and the first keeps
// using its own.
func TestRevokeSessionsStatePerProvider(t *testing.T) {
	stsA, iamA, a := setupIAM(t)
	tgt := target(t, map[string]string{"role_arn": ownRole, "region": "eu-west-1"})
	if err := a.RevokeSessions(t.Context(), tgt, time.Now()); err != nil {
		t.Fatal(err)
	}
	stsB, iamB, b := setupIAM(t) // the environment now names B's fakes
	for i, p := range []*aws.Provider{b, a, b} {
		if err := p.RevokeSessions(t.Context(), tgt, time.Now()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for _, c := range []struct {
		name     string
		sts      *ststest.Server
		iam      *ststest.IAMServer
		wantPuts int
	}{{"A", stsA, iamA, 2}, {"B", stsB, iamB, 2}} {
		if n := len(c.iam.Calls()); n != c.wantPuts {
			t.Errorf("provider %s: %d IAM calls, want %d", c.name, n, c.wantPuts)
		}
		n := 0
		for _, call := range c.sts.Calls() {
			if call.Action == "GetCallerIdentity" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("provider %s: GetCallerIdentity called %d times at its STS, want 1", c.name, n)
		}
	}
}

// A Provider that revoked is garbage once dropped: nothing outside it
// keeps its IAM state, so providers made and dropped (as a config reload
// or a test suite does) leave nothing behind.
func TestRevokeSessionsStateGoesWithProvider(t *testing.T) {
	w := func() weak.Pointer[aws.Provider] {
		_, _, p := setupIAM(t)
		if err := p.RevokeSessions(t.Context(), target(t, map[string]string{"role_arn": ownRole, "region": "eu-west-1"}), time.Now()); err != nil {
			t.Fatal(err)
		}
		return weak.Make(p)
	}()
	for range 10 {
		runtime.GC()
		if w.Value() == nil {
			return
		}
	}
	t.Fatal("a dropped Provider that revoked is still reachable")
}
