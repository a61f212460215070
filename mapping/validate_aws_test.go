package mapping

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
)

// awsTarget is an aws target of role deploy with extra, a JSON object's
// members ("" for none).
func awsTarget(extra string) func(*Mapping) {
	if extra != "" {
		extra = "," + extra
	}
	return withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"`+extra+`}`)
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// manyTags is session_tags with n tags whose keys and values are k and v
// long (k >= 3).
func manyTags(n, k, v int) string {
	var b strings.Builder
	b.WriteString(`"session_tags":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		key := fmt.Sprintf("t%0*d", k-1, i)
		fmt.Fprintf(&b, "%q:%q", key, strings.Repeat("v", v))
	}
	b.WriteByte('}')
	return b.String()
}

func policyOf(statement string) string {
	return `"session_policy":` + jsonString(`{"Version":"2012-10-17","Statement":`+statement+`}`)
}

func TestValidateAWSLimits(t *testing.T) {
	t.Parallel()
	allow := `{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}`
	// A policy of exactly n characters: allow padded in its Resource.
	policyOfLen := func(n int) string {
		base := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/"}}`
		pad := strings.Repeat("x", n-len(base))
		return `"session_policy":` + jsonString(strings.Replace(base, "b/", "b/"+pad, 1))
	}
	tests := []struct {
		name      string
		edit      func(*Mapping)
		wantField string
	}{
		// session_tags
		{"static tags", awsTarget(`"session_tags":{"team":"payments","cost center":"42/x@y","empty":""}`), ""},
		{"41 static tags fill AWS's 50 with the bridge's 9", awsTarget(manyTags(41, 3, 1)), ""},
		{"42 static tags are too many", awsTarget(manyTags(42, 3, 1)), "target.session_tags"},
		{"key of 128 characters", awsTarget(`"session_tags":{"` + strings.Repeat("k", 128) + `":"v"}`), ""},
		{"key of 129 characters", awsTarget(`"session_tags":{"` + strings.Repeat("k", 129) + `":"v"}`), "target.session_tags"},
		{"empty key", awsTarget(`"session_tags":{"":"v"}`), "target.session_tags"},
		{"key with a comma", awsTarget(`"session_tags":{"a,b":"v"}`), "target.session_tags"},
		{"unicode key", awsTarget(`"session_tags":{"équipe":"paiements"}`), ""},
		{"value of 256 characters", awsTarget(`"session_tags":{"k":"` + strings.Repeat("é", 256) + `"}`), ""},
		{"value of 257 characters", awsTarget(`"session_tags":{"k":"` + strings.Repeat("v", 257) + `"}`), "target.session_tags.k"},
		{"value with a quote", awsTarget(`"session_tags":{"k":"a\"b"}`), "target.session_tags.k"},
		{"value with a line separator", awsTarget(`"session_tags":{"k":"a\u2028b"}`), "target.session_tags.k"},
		{"aws: prefix", awsTarget(`"session_tags":{"AWS:x":"v"}`), "target.session_tags.AWS:x"},
		{"a bridge key", awsTarget(`"session_tags":{"environment":"production"}`), "target.session_tags.environment"},
		{"a bridge key in another case", awsTarget(`"session_tags":{"Repository":"acme/web"}`), "target.session_tags.Repository"},
		{"keys differing in case", awsTarget(`"session_tags":{"Team":"a","team":"b"}`), "target.session_tags.team"},
		{"a key twice", awsTarget(`"session_tags":{"team":"a","team":"b"}`), "target.session_tags.team"},
		{"value not a string", awsTarget(`"session_tags":{"team":1}`), "target.session_tags"},
		{"tags not an object", awsTarget(`"session_tags":["team"]`), "target.session_tags"},
		{"web_identity carries tags too", awsTarget(`"mode":"web_identity","session_tags":{"team":"a"},"transitive_tag_keys":["team"]`), ""},

		// transitive_tag_keys
		{"transitive static and bridge keys", awsTarget(`"session_tags":{"team":"a"},"transitive_tag_keys":["team","Repository","environment"]`), ""},
		{"transitive key not carried", awsTarget(`"session_tags":{"team":"a"},"transitive_tag_keys":["team","owner"]`), "target.transitive_tag_keys[1]"},
		{"transitive key twice", awsTarget(`"transitive_tag_keys":["ref","Ref"]`), "target.transitive_tag_keys[1]"},
		{"transitive keys not a list", awsTarget(`"transitive_tag_keys":"ref"`), "target.transitive_tag_keys"},

		// session_policy
		{"policy of 2048 characters", awsTarget(policyOfLen(2048)), ""},
		{"policy of 2049 characters", awsTarget(policyOfLen(2049)), "target.session_policy"},
		{"policy counted in characters, not bytes", awsTarget(`"session_policy":` + jsonString(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::`+strings.Repeat("é", 1900)+`"}}`)), ""},
		{"policy outside Latin-1", awsTarget(`"session_policy":` + jsonString(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::日本"}}`)), "target.session_policy"},
		{"policy without Version", awsTarget(`"session_policy":` + jsonString(`{"Statement":`+allow+`}`)), "target.session_policy"},
		{"policy without Statement", awsTarget(`"session_policy":` + jsonString(`{"Version":"2012-10-17"}`)), "target.session_policy"},
		{"policy with another member", awsTarget(`"session_policy":` + jsonString(`{"Version":"2012-10-17","Statement":[],"Principal":"*"}`)), "target.session_policy"},
		{"policy statement list", awsTarget(policyOf(`[` + allow + `,` + allow + `]`)), ""},
		{"policy statement without Effect", awsTarget(policyOf(`{"Action":"s3:*","Resource":"*"}`)), "target.session_policy"},
		{"policy statement with a Principal", awsTarget(policyOf(`{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}`)), "target.session_policy"},
		{"policy statement not an object", awsTarget(policyOf(`["x"]`)), "target.session_policy"},

		// the packed-size rule: minified policy + static tags <= 2048
		{"full policy alone", awsTarget(policyOfLen(2048)), ""},
		{"policy and tags within the packed rule", awsTarget(policyOfLen(1900) + `,"session_tags":{"team":"` + strings.Repeat("v", 144) + `"}`), ""},
		{"policy and tags over the packed rule", awsTarget(policyOfLen(1900) + `,"session_tags":{"team":"` + strings.Repeat("v", 145) + `"}`), "target.session_tags"},
		{"tags alone over the packed rule", awsTarget(manyTags(10, 3, 202)), "target.session_tags"},
		{"the policy is measured minified", awsTarget(`"session_policy":` + jsonString(`{ "Version" : "2012-10-17" , "Statement" : `+allow+strings.Repeat(" ", 1700)+`}`) + `,"session_tags":{"team":"` + strings.Repeat("v", 256) + `"}`), ""},

		// external_id: [\w+=,.@:/-]{2,1224}
		{"external id of 1224", awsTarget(`"external_id":"` + strings.Repeat("e", 1224) + `"`), ""},
		{"external id of 1225", awsTarget(`"external_id":"` + strings.Repeat("e", 1225) + `"`), "target.external_id"},
		{"external id of 1", awsTarget(`"external_id":"e"`), "target.external_id"},
		{"external id with every allowed character", awsTarget(`"external_id":"aZ09_+=,.@:/-"`), ""},
		{"external id with a space", awsTarget(`"external_id":"a b"`), "target.external_id"},
		{"external id with unicode", awsTarget(`"external_id":"ab\u00e9"`), "target.external_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantField(t, ValidateMapping(ghMapping(tt.edit), identity.KindGitHub), tt.wantField)
		})
	}
}

func TestValidateAWSRoleChaining(t *testing.T) {
	t.Parallel()
	chaining := ValidateOptions{Providers: Providers().With(aws.Spec{RoleChaining: true})}
	long := func(extra string, d int) *Mapping {
		return ghMapping(func(m *Mapping) { awsTarget(extra)(m); m.MaxDurationSeconds = d })
	}
	tests := []struct {
		name      string
		m         *Mapping
		opts      ValidateOptions
		wantField string
	}{
		{"assume_role 3600 chaining", long("", 3600), chaining, ""},
		{"assume_role 3601 chaining", long("", 3601), chaining, "max_duration_seconds"},
		{"explicit assume_role 43200 chaining", long(`"mode":"assume_role"`, 43200), chaining, "max_duration_seconds"},
		{"assume_role 43200 with an IAM user's keys", long("", 43200), ValidateOptions{}, ""},
		{"web_identity 43200 chaining", long(`"mode":"web_identity"`, 43200), chaining, ""},
		{"assume_role 43201", long("", 43201), ValidateOptions{}, "max_duration_seconds"},
		{"assume_role 899", long("", 899), ValidateOptions{}, "max_duration_seconds"},
		{"other providers are not concerned", ghMapping(func(m *Mapping) {
			withTarget("jwt", `{"audience":"https://internal.example.com"}`)(m)
			m.MaxDurationSeconds = 43200
		}), chaining, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateMapping(tt.m, identity.KindGitHub, tt.opts)
			wantField(t, err, tt.wantField)
			if tt.wantField != "" && len(tt.opts.Providers.Names()) > 0 && !strings.Contains(err.Error(), "BRIDGE_AWS_ROLE_CHAINING") {
				t.Errorf("%v does not name the setting", err)
			}
		})
	}
}
