package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/moto"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// The AWS account the tests build in moto: a deploy role that trusts the
// bridge's IAM user with an external id, may write one bucket and not the
// other.
const (
	motoRoleName    = "web-deploy"
	motoRole        = "arn:aws:iam::" + moto.Account + ":role/ci/" + motoRoleName
	motoExternalID  = "acme-ci-7f3a"
	motoBridgeUser  = "oidc-bridge"
	artifactsBucket = "acme-artifacts"
	secretsBucket   = "acme-secrets"
	secretKey       = "prod.env"
)

// motoSessionPolicy narrows the role's sessions to the artifacts bucket's
// objects (moto ignores session policies; STS intersects them).
const motoSessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],"Resource":["arn:aws:s3:::acme-artifacts","arn:aws:s3:::acme-artifacts/*"]}]}`

// motoTarget is the assume_role mapping target both STS backends are
// exchanged against: external id, session policy, a static session tag and
// transitive keys (one of the bridge's tags, one static) set.
func motoTarget(region string) string {
	b, _ := json.Marshal(map[string]any{"role_arn": motoRole, "region": region,
		"external_id": motoExternalID, "session_policy": motoSessionPolicy,
		"session_tags":        map[string]string{"cost-center": "ci-4711"},
		"transitive_tag_keys": []string{"repository", "cost-center"}})
	return string(b)
}

// motoAccount is moto with the account's IAM users, role and buckets made,
// and IAM enforced.
type motoAccount struct {
	srv *moto.Server
	// bridgeKey is the bridge's own access key (IAM user oidc-bridge: may
	// assume the role and put its policies); adminKey the test's, allowed
	// everything.
	bridgeKey, adminKey aws.Credentials
}

// newMotoAccount starts moto, builds the account through the SDK with IAM
// not yet enforced, then enforces it.
func newMotoAccount(t *testing.T) *motoAccount {
	t.Helper()
	ctx := context.Background()
	m := &motoAccount{srv: moto.Start(t)}
	setup := aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "moto-setup"}
	iamc := m.iam(setup)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("moto setup: %s: %v", what, err)
		}
	}
	user := func(name, policy string) aws.Credentials {
		t.Helper()
		_, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
		must("CreateUser "+name, err)
		_, err = iamc.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("main"),
			PolicyDocument: aws.String(policy)})
		must("PutUserPolicy "+name, err)
		k, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		must("CreateAccessKey "+name, err)
		return aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	}
	m.adminKey = user("admin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	// What docs/clouds.md and docs/audit.md ask of the bridge's identity.
	m.bridgeKey = user(motoBridgeUser, fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],"Resource":"arn:aws:iam::%[1]s:role/ci/*"},
		{"Effect":"Allow","Action":"iam:PutRolePolicy","Resource":"arn:aws:iam::%[1]s:role/ci/*"}]}`, moto.Account))

	// The role's trust policy, as docs/clouds.md writes it.
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::%s:user/%s"},
		"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],
		"Condition":{"StringEquals":{"sts:ExternalId":%q}}}]}`, moto.Account, motoBridgeUser, motoExternalID)
	_, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(motoRoleName), Path: aws.String("/ci/"),
		AssumeRolePolicyDocument: aws.String(trust)})
	must("CreateRole", err)
	_, err = iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(motoRoleName), PolicyName: aws.String("artifacts"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::acme-artifacts/*"},
			{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::acme-artifacts"}]}`)})
	must("PutRolePolicy", err)

	s3c := m.s3(setup)
	for _, b := range []string{artifactsBucket, secretsBucket} {
		_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		must("CreateBucket "+b, err)
	}
	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(secretsBucket), Key: aws.String(secretKey),
		Body: strings.NewReader("DB_PASSWORD=not-for-ci\n")})
	must("PutObject", err)

	m.srv.EnforceIAM(t)
	// Enforced: a key moto never issued is refused.
	_, err = m.sts(setup, "us-east-1").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if code := apiCode(err); code != "InvalidClientTokenId" {
		t.Fatalf("moto with IAM enforced: GetCallerIdentity with an unknown key: %v (code %q)", err, code)
	}
	return m
}

// bridgeEnv is the bridge's AWS environment: its IAM user's key, every AWS
// endpoint at moto.
func (m *motoAccount) bridgeEnv() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.bridgeKey.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + m.bridgeKey.SecretAccessKey,
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL=" + m.srv.URL,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func static(c aws.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

func (m *motoAccount) iam(c aws.Credentials) *iam.Client {
	return iam.New(iam.Options{Region: "us-east-1", Credentials: static(c), BaseEndpoint: aws.String(m.srv.URL)})
}

func (m *motoAccount) sts(c aws.Credentials, region string) *sts.Client {
	return sts.New(sts.Options{Region: region, Credentials: static(c), BaseEndpoint: aws.String(m.srv.URL)})
}

func (m *motoAccount) s3(c aws.Credentials) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", Credentials: static(c), BaseEndpoint: aws.String(m.srv.URL), UsePathStyle: true})
}

// apiCode is the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wantSessionName is the session name the bridge gives a GitHub token with
// these claims (providers/aws/naming.go: gh-<owner>.<repo>-<run_id>-<run_attempt>,
// for values that need no escaping).
func wantSessionName(claims map[string]any) string {
	return fmt.Sprintf("gh-%s-%s-%s", strings.ReplaceAll(claims["repository"].(string), "/", "."),
		claims["run_id"], claims["run_attempt"])
}

// checkAssumeRoleForm checks the AssumeRole request an STS received from
// the bridge for a token with claims under mapping target motoTarget.
func checkAssumeRoleForm(t *testing.T, form url.Values, claims map[string]any, issuanceID string) {
	t.Helper()
	tags := map[string]string{}
	for i := 1; form.Has(fmt.Sprintf("Tags.member.%d.Key", i)); i++ {
		tags[form.Get(fmt.Sprintf("Tags.member.%d.Key", i))] = form.Get(fmt.Sprintf("Tags.member.%d.Value", i))
	}
	want := map[string]string{"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main",
		"environment": "production", "event_name": "push", "actor": "octocat", "run_id": claims["run_id"].(string),
		"run_attempt": claims["run_attempt"].(string), "issuance_id": issuanceID, "cost-center": "ci-4711"}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Errorf("session tags %v, want %v", tags, want)
	}
	var transitive []string
	for i := 1; form.Has(fmt.Sprintf("TransitiveTagKeys.member.%d", i)); i++ {
		transitive = append(transitive, form.Get(fmt.Sprintf("TransitiveTagKeys.member.%d", i)))
	}
	if fmt.Sprint(transitive) != "[repository cost-center]" {
		t.Errorf("transitive tag keys %v, want [repository cost-center]", transitive)
	}
	for k, v := range map[string]string{"Action": "AssumeRole", "RoleArn": motoRole, "RoleSessionName": wantSessionName(claims),
		"SourceIdentity": "gh-1339936803", "ExternalId": motoExternalID, "Policy": motoSessionPolicy, "DurationSeconds": "900"} {
		if got := form.Get(k); got != v {
			t.Errorf("AssumeRole %s = %q, want %q", k, got, v)
		}
	}
}

// awsCreds decodes an exchange's AWS credentials.
func awsCreds(t *testing.T, r reply) (api.ExchangeResponse, providers.AWSCredentials) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	r.json(t, &resp)
	var c providers.AWSCredentials
	if err := json.Unmarshal(resp.Credentials, &c); err != nil {
		t.Fatal(err)
	}
	return resp, c
}

// motoBridge is a bridge (real binary, real Postgres, an oidctest issuer)
// whose AWS is moto's account, with mapping web-deploy (motoTarget).
func motoBridge(t *testing.T, m *motoAccount) (*server, *oidctest.Issuer, string) {
	t.Helper()
	gh, dbURL := oidctest.New(t), pgtest.NewDatabase(t)
	env := append([]string{"BRIDGE_DATABASE_URL=" + pgtest.RuntimeURL(t, dbURL), "BRIDGE_MIGRATION_DATABASE_URL=" + dbURL,
		"BRIDGE_ADMIN_TOKEN=" + adminToken, "BRIDGE_ALLOW_INSECURE_ISSUERS=true"}, m.bridgeEnv()...)
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-deploy", "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
		"provider": "aws", "target": `+motoTarget("eu-west-1")+`, "max_duration_seconds": 3600}`)
	return s, gh, dbURL
}

// TestAssumeRoleBackends: the same assume_role mapping (external id, static tag, transitive keys,
// session policy; the bridge's session name, tags and source identity)
// exchanges against the project's STS fake and against moto, and each
// receives the same AssumeRole request. Against moto the role's trust
// policy requires the external id and IAM is enforced: the bridge signs
// with its IAM user's key, moto keeps the session under the bridge's
// session name, external id and session policy, GetCallerIdentity with the
// issued credentials names the assumed role and that session, and the
// credentials may write and read the artifacts bucket but neither read the
// secrets bucket nor delete. A mapping with another external id is refused
// by moto's trust policy check.
func TestAssumeRoleBackends(t *testing.T) {
	t.Parallel()
	claims := func(run string) map[string]any {
		return map[string]any{"repository": "acme/web", "run_id": run, "run_attempt": "2"}
	}

	t.Run("ststest", func(t *testing.T) {
		t.Parallel()
		x := newExchangeEnv(t)
		s := startServer(t, x.env)
		s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", x.gh.URL(), "github"))
		s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-deploy", "issuer": "github",
			"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
			"provider": "aws", "target": `+motoTarget("eu-west-1")+`, "max_duration_seconds": 3600}`)
		c := claims("5001")
		resp, creds := awsCreds(t, exchange(s, x.gh.Mint(t, x.gh.GitHubClaims(c)), `{"duration_seconds": 900}`))
		call := lastSTSCall(t, x.sts)
		checkAssumeRoleForm(t, call.Params, c, resp.IssuanceID)
		if call.IssuedAccessKeyID != creds.AccessKeyID || creds.AccountID != moto.Account {
			t.Errorf("credentials %s (account %s), STS issued %s", creds.AccessKeyID, creds.AccountID, call.IssuedAccessKeyID)
		}
		s.stopClean()
	})

	t.Run("moto", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		m := newMotoAccount(t)
		t.Logf("moto started and set up in %v", time.Since(start).Round(time.Millisecond))
		s, gh, _ := motoBridge(t, m)
		ctx := context.Background()

		c := claims("5002")
		var r reply
		recorded := m.srv.Record(t, func() { r = exchange(s, gh.Mint(t, gh.GitHubClaims(c)), `{"duration_seconds": 900}`) })
		resp, creds := awsCreds(t, r)
		var assume []moto.Request
		for _, req := range recorded {
			if req.Form.Get("Action") == "AssumeRole" {
				assume = append(assume, req)
			}
		}
		if len(assume) != 1 {
			t.Fatalf("moto received %d AssumeRole requests, want 1", len(assume))
		}
		checkAssumeRoleForm(t, assume[0].Form, c, resp.IssuanceID)
		if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.Region != "eu-west-1" || creds.AccountID != moto.Account ||
			time.Until(creds.Expiration) < 14*time.Minute || time.Until(creds.Expiration) > 16*time.Minute {
			t.Errorf("credentials %s, region %s, account %s, expiring %v", creds.AccessKeyID, creds.Region, creds.AccountID, creds.Expiration)
		}

		// What moto kept of the session.
		var kept *moto.AssumedRole
		for _, a := range m.srv.AssumedRoles(t) {
			if a.AccessKeyID == creds.AccessKeyID {
				kept = &a
			}
		}
		wantARN := "arn:aws:sts::" + moto.Account + ":assumed-role/" + motoRoleName + "/" + wantSessionName(c)
		if kept == nil || kept.RoleARN != motoRole || kept.SessionName != wantSessionName(c) || kept.ExternalID != motoExternalID ||
			kept.Policy != motoSessionPolicy || kept.ARN != wantARN {
			t.Fatalf("moto's session %+v, want role %s, session %s, external id, session policy", kept, motoRole, wantSessionName(c))
		}

		// The issued credentials, used.
		issued := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
		id, err := m.sts(issued, creds.Region).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Arn) != wantARN || aws.ToString(id.Account) != moto.Account {
			t.Fatalf("GetCallerIdentity with the issued credentials: %v %+v, want %s", err, id, wantARN)
		}
		s3c := m.s3(issued)
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(artifactsBucket), Key: aws.String("build/app.tar"),
			Body: bytes.NewReader([]byte("artifact"))}); err != nil {
			t.Fatalf("PutObject to %s (the role allows): %v", artifactsBucket, err)
		}
		got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(artifactsBucket), Key: aws.String("build/app.tar")})
		if err != nil {
			t.Fatalf("GetObject from %s (the role allows): %v", artifactsBucket, err)
		}
		body, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(body) != "artifact" {
			t.Fatalf("GetObject: %q", body)
		}
		if _, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(secretsBucket), Key: aws.String(secretKey)}); apiCode(err) != "AccessDenied" {
			t.Fatalf("GetObject from %s (the role does not allow): %v, want AccessDenied", secretsBucket, err)
		}
		if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(artifactsBucket), Key: aws.String("build/app.tar")}); apiCode(err) != "AccessDenied" {
			t.Fatalf("DeleteObject in %s (an action the role does not allow): %v, want AccessDenied", artifactsBucket, err)
		}

		// The trust policy's external id is checked: another one is refused.
		s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-wrong-id", "issuer": "github",
			"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
			"provider": "aws", "target": {"role_arn": "`+motoRole+`", "region": "eu-west-1", "external_id": "someone-else"}}`)
		r = exchange(s, gh.Mint(t, gh.GitHubClaims(claims("5003"))), `{"mapping": "web-wrong-id", "duration_seconds": 900}`)
		var e api.Error
		r.json(t, &e)
		if r.status != 502 || e.Error != api.CodeProviderError || !strings.HasSuffix(e.Message, ": AccessDenied") {
			t.Fatalf("exchange with a wrong external id: %d %s", r.status, r.body)
		}
		s.stopClean()
	})
}

// TestMotoRevokeSessions: revoke_aws_sessions puts IAM's
// AWSRevokeOlderSessions policy on the role in moto's IAM, signed with the
// bridge's IAM user (allowed iam:PutRolePolicy on the role); read back with
// GetRolePolicy, it denies everything to sessions issued before the
// revocation, and the revoked session's credentials are refused by S3.
func TestMotoRevokeSessions(t *testing.T) {
	t.Parallel()
	m := newMotoAccount(t)
	s, gh, _ := motoBridge(t, m)
	ctx := context.Background()
	_, creds := awsCreds(t, exchange(s, gh.Mint(t, gh.GitHubClaims(map[string]any{"run_id": "6001"})), `{"duration_seconds": 900}`))
	issued := m.s3(aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken})
	put := func() error {
		_, err := issued.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(artifactsBucket), Key: aws.String("run-6001"),
			Body: strings.NewReader("x")})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("PutObject before the revocation: %v", err)
	}

	sent := time.Now()
	r := s.must(200, "POST", "/v1/admin/issuances/revoke", `{"run_id": "6001", "reason": "runner compromised", "revoke_aws_sessions": true}`)
	var resp struct {
		Revoked     int `json:"revoked"`
		AWSSessions []struct {
			RoleARN string `json:"role_arn"`
			Result  string `json:"result"`
		} `json:"aws_sessions"`
	}
	r.json(t, &resp)
	if resp.Revoked != 1 || len(resp.AWSSessions) != 1 || resp.AWSSessions[0].RoleARN != motoRole || resp.AWSSessions[0].Result != "revoked" {
		t.Fatalf("revoke: %s", r.body)
	}

	out, err := m.iam(m.adminKey).GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(motoRoleName),
		PolicyName: aws.String("AWSRevokeOlderSessions")})
	if err != nil {
		t.Fatalf("GetRolePolicy: %v", err)
	}
	raw, err := url.QueryUnescape(aws.ToString(out.PolicyDocument)) // IAM answers the document URL-encoded
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Effect    string
			Action    []string
			Resource  []string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("policy document %q: %v", raw, err)
	}
	st := doc.Statement
	if doc.Version != "2012-10-17" || len(st) != 1 || st[0].Effect != "Deny" || strings.Join(st[0].Action, ",") != "*" ||
		strings.Join(st[0].Resource, ",") != "*" || len(st[0].Condition) != 1 {
		t.Fatalf("policy %s", raw)
	}
	at, err := time.Parse(time.RFC3339, st[0].Condition["DateLessThan"]["aws:TokenIssueTime"])
	if err != nil || at.Before(sent.Truncate(time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("aws:TokenIssueTime %v (revocation sent %v): %s", at, sent, raw)
	}
	if err := put(); apiCode(err) != "AccessDenied" {
		t.Fatalf("PutObject with the revoked session: %v, want AccessDenied", err)
	}
	s.stopClean()
}

// TestMotoGovCloudPartition: an assume_role mapping of an aws-us-gov role
// in us-gov-west-1, exchanged through the real binary against moto (an
// independent STS that keeps the partitions apart): the bridge signs its
// AssumeRole for the GovCloud region, moto issues the session in the
// aws-us-gov partition, and GetCallerIdentity with the issued credentials
// names the role's assumed-role ARN there, not in the aws partition.
func TestMotoGovCloudPartition(t *testing.T) {
	t.Parallel()
	const (
		region = "us-gov-west-1"
		role   = "arn:aws-us-gov:iam::" + moto.Account + ":role/ci/gov-deploy"
	)
	ctx := context.Background()
	srv := moto.Start(t)
	setup := aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "moto-setup"}
	// The role in the GovCloud partition's IAM (moto picks the partition
	// from the signature's region).
	iamc := iam.New(iam.Options{Region: region, Credentials: static(setup), BaseEndpoint: aws.String(srv.URL)})
	out, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("gov-deploy"), Path: aws.String("/ci/"),
		AssumeRolePolicyDocument: aws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
			"Principal":{"AWS":"arn:aws-us-gov:iam::%s:user/oidc-bridge"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}`,
			moto.Account))})
	if err != nil || aws.ToString(out.Role.Arn) != role {
		t.Fatalf("CreateRole in %s: %v %+v", region, err, out)
	}

	gh, dbURL := oidctest.New(t), pgtest.NewDatabase(t)
	env := []string{"BRIDGE_DATABASE_URL=" + pgtest.RuntimeURL(t, dbURL), "BRIDGE_MIGRATION_DATABASE_URL=" + dbURL,
		"BRIDGE_ADMIN_TOKEN=" + adminToken, "BRIDGE_ALLOW_INSECURE_ISSUERS=true",
		"AWS_ACCESS_KEY_ID=" + setup.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + setup.SecretAccessKey,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + srv.URL,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=", "AWS_EC2_METADATA_DISABLED=true"}
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "gov-deploy", "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
		"provider": "aws", "target": {"role_arn": "`+role+`", "region": "`+region+`"}, "max_duration_seconds": 3600}`)

	claims := map[string]any{"repository": "acme/web", "run_id": "7001", "run_attempt": "1"}
	var r reply
	recorded := srv.Record(t, func() { r = exchange(s, gh.Mint(t, gh.GitHubClaims(claims)), `{"duration_seconds": 900}`) })
	_, creds := awsCreds(t, r)
	var assume []moto.Request
	for _, req := range recorded {
		if req.Form.Get("Action") == "AssumeRole" {
			assume = append(assume, req)
		}
	}
	if len(assume) != 1 || assume[0].Form.Get("RoleArn") != role {
		t.Fatalf("moto's AssumeRole requests %+v, want one for %s", assume, role)
	}
	if creds.Region != region || creds.AccountID != moto.Account {
		t.Errorf("credentials' region %q, account %q", creds.Region, creds.AccountID)
	}

	issued := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	id, err := sts.New(sts.Options{Region: region, Credentials: static(issued), BaseEndpoint: aws.String(srv.URL)}).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantARN := "arn:aws-us-gov:sts::" + moto.Account + ":assumed-role/gov-deploy/" + wantSessionName(claims)
	if err != nil || aws.ToString(id.Arn) != wantARN {
		t.Fatalf("GetCallerIdentity with the issued credentials: %v %+v, want %s", err, id, wantARN)
	}
	s.stopClean()
}
