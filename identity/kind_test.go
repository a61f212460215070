package identity

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// conditionNames are the first-class conditions of the admin API, in the
// order mappings check them.
var conditionNames = []string{ConditionRepository, ConditionRepositoryID, ConditionRef,
	ConditionEnvironment, ConditionEventName, ConditionWorkflowRef}

var kindName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// TestPlatformContract runs over the registry: every registered kind
// implements the whole of Platform with values its users can rely on, and
// reads its fixtures (oidctest.ClaimSets: <kind>-*.json, realistic claim sets) the way
// its Conditions say.
func TestPlatformContract(t *testing.T) {
	t.Parallel()
	if len(Platforms()) == 0 {
		t.Fatal("no kind registered")
	}
	readBy := map[string]string{} // claim -> the condition that reads it, across kinds
	seen := map[Kind]bool{}
	for _, p := range Platforms() {
		k := p.Kind()
		if seen[k] {
			t.Fatalf("kind %q registered twice", k)
		}
		seen[k] = true
		for _, cd := range p.Conditions() {
			for _, claim := range cd.Claims {
				if other, ok := readBy[claim]; ok && other != cd.Name {
					t.Errorf("claim %q is read by condition %s of one kind and %s of another: a claims condition's refusal could name only one", claim, other, cd.Name)
				}
				readBy[claim] = cd.Name
			}
		}
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			checkPlatform(t, p)
		})
	}
}

func checkPlatform(t *testing.T, p Platform) {
	k := p.Kind()
	if !kindName.MatchString(string(k)) || !k.Valid() || PlatformOf(k) != p {
		t.Errorf("kind %q: not a lower-case name, not Valid, or PlatformOf does not return it", k)
	}

	d := p.Defaults()
	for _, lim := range []int64{int64(d.TokenAge), int64(d.TokenLifetime)} {
		if lim < int64(MinTokenLimit) || lim > int64(MaxTokenLimit) {
			t.Errorf("Defaults %+v: token limits outside %v..%v", d, MinTokenLimit, MaxTokenLimit)
		}
	}
	if age, lifetime := KindLimits(k); age != d.TokenAge || lifetime != d.TokenLifetime {
		t.Errorf("KindLimits = %v, %v; Defaults say %v, %v", age, lifetime, d.TokenAge, d.TokenLifetime)
	}
	if d.ReplayScope != ReplayScopeToken && d.ReplayScope != ReplayScopeTokenMapping {
		t.Errorf("Defaults.ReplayScope = %q", d.ReplayScope)
	}

	cds := p.Conditions()
	var names []string
	for _, cd := range cds {
		names = append(names, cd.Name)
		if cd.Compare != Exact && cd.Compare != Fold && cd.Compare != Equal {
			t.Errorf("condition %s: Compare %d is none of Exact, Fold, Equal", cd.Name, cd.Compare)
		}
		if len(cd.Claims) == 0 {
			t.Errorf("condition %s reads no claim", cd.Name)
		}
		if cd.Name == ConditionRepositoryID && cd.Compare != Equal {
			t.Errorf("repository_id compares by %d: ids are compared exactly, never as patterns", cd.Compare)
		}
	}
	// A kind supports a subset of the API's conditions, in the API's order.
	var inOrder []string
	for _, n := range conditionNames {
		if slices.Contains(names, n) {
			inOrder = append(inOrder, n)
		}
	}
	if !slices.Equal(names, inOrder) {
		t.Errorf("Conditions = %v, want a subset of the API's %v in its order", names, conditionNames)
	}

	isCondition := func(name string) bool {
		claim, ok := strings.CutPrefix(name, "claims.")
		return slices.Contains(conditionNames, name) || ok && claim != ""
	}
	b := p.Breadth()
	if b.Message == "" || b.Detail == "" {
		t.Errorf("Breadth %+v lacks its message or its explainer detail", b)
	}
	for _, name := range b.AnyOf {
		if !isCondition(name) {
			t.Errorf("Breadth.AnyOf names %q, not a condition", name)
		}
	}
	if len(b.AnyOf) > 0 && !strings.Contains(b.Message, string(k)) {
		t.Errorf("Breadth.Message %q does not name the kind", b.Message)
	}

	l := p.Lint()
	if l.RefProtectedCaveat == "" {
		t.Error("Lint.RefProtectedCaveat is empty")
	}
	if (len(l.ImmutableID) > 0) != (l.ImmutableIDMessage != "") {
		t.Errorf("Lint.ImmutableID %v and its message %q go together", l.ImmutableID, l.ImmutableIDMessage)
	}
	for _, name := range l.ImmutableID {
		if !isCondition(name) {
			t.Errorf("Lint.ImmutableID names %q, not a condition", name)
		}
	}
	if (len(l.TenantPin)+len(l.TenantPinAll) > 0) != (l.TenantPinMessage != "") {
		t.Errorf("Lint.TenantPin %v and its message %q go together", l.TenantPin, l.TenantPinMessage)
	}
	supported := func(name string) bool {
		return strings.HasPrefix(name, "claims.") || slices.Contains(names, name)
	}
	for _, list := range [][]string{l.TenantPin, l.TenantPinAll, l.ImmutableID, b.AnyOf} {
		for _, name := range list {
			if !isCondition(name) || !supported(name) {
				t.Errorf("lint or breadth names %q, not a condition the kind supports", name)
			}
		}
	}
	is := p.Issuer()
	if is.AudienceHint == "" {
		t.Error("Issuer().AudienceHint is empty")
	}
	if is.Shared && len(l.TenantPin) == 0 {
		t.Error("a kind whose issuer is shared between tenants has no TenantPin")
	}
	if is.Path != "" && !strings.HasPrefix(is.Path, "/") {
		t.Errorf("Issuer().Path %q is not a path", is.Path)
	}
	if (l.HostedRunner != "") != (l.HostedRunnerMessage != "") {
		t.Errorf("Lint.HostedRunner %q and its message %q go together", l.HostedRunner, l.HostedRunnerMessage)
	}

	files, err := fs.Glob(oidctest.ClaimSets(), string(k)+"-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixture test/oidctest/claimsets/%s-*.json (a realistic claim set of the kind's tokens): %v", k, err)
	}
	for _, f := range files {
		checkFixture(t, p, filepath.Base(f))
	}
}

// checkFixture: the fixture reads; each condition's value is set, comes
// from the claims the condition names and from no other claim; the jti is
// required exactly when Defaults say so; an ordinary run draws no guard.
func checkFixture(t *testing.T, p Platform, file string) {
	const url = "https://ci.example.test"
	iss := Issuer{Name: "contract", URL: url, Kind: p.Kind()}
	read := func(claims map[string]any) (*Claims, error) {
		t.Helper()
		raw, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		return NormalizeClaims(iss, raw)
	}
	base := sample(t, file, url)
	c, err := read(base)
	if err != nil {
		t.Fatalf("%s does not read as a %s token: %v", file, p.Kind(), err)
	}
	if c.Kind != p.Kind() || c.Raw == nil || c.Subject == "" {
		t.Errorf("%s: claims %+v", file, c)
	}
	if g := p.Guards(c); g != nil {
		t.Errorf("%s: an ordinary run draws guards %+v", file, g)
	}
	for _, cd := range p.Conditions() {
		want := c.ConditionValue(cd.Name)
		if want == "" {
			t.Errorf("%s: condition %s reads nothing from the fixture", file, cd.Name)
			continue
		}
		without := func(drop ...string) map[string]any {
			m := make(map[string]any, len(base))
			for name, v := range base {
				if !slices.Contains(drop, name) {
					m[name] = v
				}
			}
			return m
		}
		if got, err := read(without(cd.Claims...)); err == nil && got.ConditionValue(cd.Name) != "" {
			t.Errorf("%s: without %v, condition %s still reads %q: it reads another claim", file, cd.Claims, cd.Name, got.ConditionValue(cd.Name))
		}
		for name := range base {
			if slices.Contains(cd.Claims, name) {
				continue
			}
			if got, err := read(without(name)); err == nil && got.ConditionValue(cd.Name) != want {
				t.Errorf("%s: without %s, condition %s reads %q, not %q: Claims should list %s", file, name, cd.Name, got.ConditionValue(cd.Name), want, name)
			}
		}
	}
	got, err := read(func() map[string]any { m := sample(t, file, url); delete(m, "jti"); return m }())
	switch {
	case p.Defaults().JTIRequired && (err == nil || Reason(err) != ReasonMissingClaim):
		t.Errorf("%s without jti: %v, want missing_claim: Defaults say the jti is required", file, err)
	case !p.Defaults().JTIRequired && (err != nil || got.JTI != ""):
		t.Errorf("%s without jti: %v, want the claims without jti: Defaults say it is optional", file, err)
	}
}

// TestPlatformOfUnknownKind: an unregistered kind gets the strictest rules
// and reads no token.
func TestPlatformOfUnknownKind(t *testing.T) {
	t.Parallel()
	p := PlatformOf("teamcity")
	if p.Kind() != "teamcity" || Kind("teamcity").Valid() {
		t.Fatalf("PlatformOf(teamcity) = %v", p)
	}
	if b := p.Breadth(); !slices.Equal(b.AnyOf, []string{ConditionRepository, ConditionRepositoryID}) {
		t.Errorf("Breadth.AnyOf = %v, want repository or repository_id", b.AnyOf)
	}
	for _, cd := range p.Conditions() {
		if cd.Name == ConditionEnvironment && cd.Compare != Exact {
			t.Errorf("environment compares by %d, want Exact", cd.Compare)
		}
	}
	if g := p.Guards(&Claims{EventName: eventPullRequestTarget}); g != nil {
		t.Errorf("Guards = %+v, want none", g)
	}
	l, gh := p.Lint(), PlatformOf(KindGitHub).Lint()
	if l.ProductionEvents != "" || l.HostedRunner != "" || !slices.Equal(l.ImmutableID, gh.ImmutableID) || l.RefProtectedCaveat != gh.RefProtectedCaveat {
		t.Errorf("Lint = %+v, want github's without its production rules", l)
	}
	if age, lifetime := KindLimits("teamcity"); age != MaxTokenLimit || lifetime != MaxTokenLimit {
		t.Errorf("KindLimits = %v, %v", age, lifetime)
	}
	obj, err := parseObject([]byte(`{"iss":"https://x","sub":"s","jti":"j"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, e := normalize("teamcity", obj, nil); e == nil || !errors.Is(e, ErrUntrustedIssuer) {
		t.Errorf("normalize of an unknown kind = %v, want untrusted_issuer", e)
	}
}
