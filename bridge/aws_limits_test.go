package bridge_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// TestAWSTargetLimits sends, through the real router and store, one mapping
// per family of AWS's limits that AWS would refuse at exchange time: each
// is a 400 invalid_request naming the field, on POST and PUT, and changes
// nothing. mapping's TestValidateAWSLimits tests each rule's edges.
func TestAWSTargetLimits(t *testing.T) {
	e := newEnv(t, func(o *bridge.Options) { o.AWSRoleChaining = true })
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	e.must(201, "POST", "/v1/admin/mappings", webMapping)
	before := e.snapshot()
	var base map[string]any
	if err := json.Unmarshal([]byte(webMapping), &base); err != nil {
		t.Fatal(err)
	}
	target := func(extra map[string]any) func(m map[string]any) {
		return func(m map[string]any) {
			tg := map[string]any{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}
			for k, v := range extra {
				tg[k] = v
			}
			m["target"] = tg
		}
	}
	manyTags := map[string]any{}
	for _, k := range strings.Split("a b c d e f g h i j k l m n o p q r s t u v w x y z A1 B1 C1 D1 E1 F1 G1 H1 I1 J1 K1 L1 M1 N1 O1 P1", " ") {
		manyTags[k] = "v"
	}
	policy := func(s string) map[string]any { return map[string]any{"session_policy": s} }
	tests := []struct {
		name  string
		edit  func(m map[string]any)
		field string
	}{
		{"51 session tags with the bridge's", target(map[string]any{"session_tags": manyTags}), "target.session_tags"},
		{"tag key too long", target(map[string]any{"session_tags": map[string]any{strings.Repeat("k", 129): "v"}}), "target.session_tags"},
		{"tag value too long", target(map[string]any{"session_tags": map[string]any{"team": strings.Repeat("v", 257)}}), "target.session_tags.team"},
		{"tag value charset", target(map[string]any{"session_tags": map[string]any{"team": "a;b"}}), "target.session_tags.team"},
		{"tag key aws:", target(map[string]any{"session_tags": map[string]any{"aws:team": "a"}}), "target.session_tags.aws:team"},
		{"tag key of the bridge", target(map[string]any{"session_tags": map[string]any{"Environment": "production"}}), "target.session_tags.Environment"},
		{"tag keys differing in case", target(map[string]any{"session_tags": map[string]any{"team": "a", "TEAM": "b"}}), "target.session_tags.team"},
		{"transitive key not a tag", target(map[string]any{"transitive_tag_keys": []any{"team"}}), "target.transitive_tag_keys[0]"},
		{"transitive key twice", target(map[string]any{"transitive_tag_keys": []any{"ref", "ref"}}), "target.transitive_tag_keys[1]"},
		{"policy too long", target(policy(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::` + strings.Repeat("b", 2000) + `"}}`)), "target.session_policy"},
		{"policy not a document", target(policy(`{"Effect":"Allow"}`)), "target.session_policy"},
		{"packed size", target(map[string]any{
			"session_policy": `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::` + strings.Repeat("b", 1800) + `"}}`,
			"session_tags":   map[string]any{"team": strings.Repeat("v", 250)},
		}), "target.session_tags"},
		{"external id charset", target(map[string]any{"external_id": "acme ci"}), "target.external_id"},
		{"external id too long", target(map[string]any{"external_id": strings.Repeat("e", 1225)}), "target.external_id"},
		{"duration over 12 h", func(m map[string]any) { m["max_duration_seconds"] = 43201 }, "max_duration_seconds"},
		{"duration under 15 min", func(m map[string]any) { m["max_duration_seconds"] = 899 }, "max_duration_seconds"},
		{"assume_role over an hour when chaining", func(m map[string]any) { m["max_duration_seconds"] = 7200 }, "max_duration_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			m := clone(t, base)
			tt.edit(m)
			b, _ := json.Marshal(m)
			for _, call := range [][2]string{{"POST", "/v1/admin/mappings"}, {"PUT", "/v1/admin/mappings/web-prod-deploy"}} {
				body := string(b)
				if call[0] == "POST" {
					body = strings.Replace(body, "web-prod-deploy", "other", 1)
				}
				got := e.wantError(e.do(call[0], call[1], body), 400, api.CodeInvalidRequest, "")
				if got.Field != tt.field {
					t.Errorf("%s: field %q, want %q (message %q)", call[0], got.Field, tt.field, got.Message)
				}
				if tt.field == "max_duration_seconds" && strings.Contains(tt.name, "chaining") && !strings.Contains(got.Message, "BRIDGE_AWS_ROLE_CHAINING") {
					t.Errorf("%s: message %q does not name BRIDGE_AWS_ROLE_CHAINING", call[0], got.Message)
				}
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("refused input changed state:\nbefore %s\nafter  %s", before, after)
	}

	// What AWS accepts passes: static tags, transitive keys, a
	// web_identity mapping of 12 h under role chaining.
	ok := clone(t, base)
	target(map[string]any{"mode": "web_identity", "session_tags": map[string]any{"team": "payments"},
		"transitive_tag_keys": []any{"team", "repository"}})(ok)
	ok["max_duration_seconds"] = 43200
	b, _ := json.Marshal(ok)
	r := e.must(200, "PUT", "/v1/admin/mappings/web-prod-deploy", string(b))
	var got struct {
		Target map[string]any `json:"target"`
	}
	if err := json.Unmarshal(r, &got); err != nil {
		t.Fatal(err)
	}
	if tags, _ := got.Target["session_tags"].(map[string]any); tags["team"] != "payments" {
		t.Errorf("target read back %v", got.Target)
	}
}

// Without role chaining (the bridge runs with an IAM user's keys), an
// assume_role mapping may last 12 h.
func TestAWSAssumeRoleLongWithoutChaining(t *testing.T) {
	e := newEnv(t, func(o *bridge.Options) { o.AWSRoleChaining = false })
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	long := strings.Replace(webMapping, `"max_duration_seconds": 3600`, `"max_duration_seconds": 43200`, 1)
	if long == webMapping {
		t.Fatal("webMapping has no max_duration_seconds to change")
	}
	e.must(201, "POST", "/v1/admin/mappings", long)
}
